"""The word lists stock-radio intake reads: statuses, needs, counts, glue, in three languages.

Data only; :mod:`signalfire.intake.keywords` compiles and reads it.
"""

from __future__ import annotations

from signalfire.wire.vocab import Need, Status

from .lang import Lang

# --------------------------------------------------------------------------------------
# The lexicon.
#
# A written form is a word, a phrase ("ողջ ենք"), or a stem with endings split by "|":
# "вод|а|ы|у" is вода, воды, воду, and an empty ending keeps the bare stem ("завал||ы" is
# завал, завалы). Russian and Armenian inflect, and listing the endings that occur beats a
# bare prefix, which would also catch водитель (driver) or водка for вод-.
# Latin spellings under "ru" and "hy" are the transliterations people type on phones
# without a Cyrillic or Armenian keyboard; they make the reply come back in that language.

# The tables are laid out by hand, a few words a line, so they read as word lists.
# fmt: off
STATUS_WORDS: dict[Status, dict[Lang, tuple[str, ...]]] = {
    Status.SOS: {
        "en": (
            "sos", "s o s", "help", "emergency", "mayday", "danger", "fire", "unsafe", "not safe",
            "not ok", "save us", "dying",
        ),
        "ru": (
            "сос", "помог|ите|и", "помощ|ь|и", "спас|ите|и", "опасност|ь|и", "пожар||а",
            "погибаем", "умираем", "не в безопасности", "небезопасно", "не безопасно",
            "не ок", "не в порядке",
            "sos", "pomog|ite|i", "pomosh||ch|chi|i", "spas|ite|i", "opasnost||i", "pozhar",
        ),
        "hy": (
            "սօս", "սոս", "օգնություն", "օգնության", "օգնութիւն", "օգն|եք|եցեք|իր", "փրկ|եք|եցեք",
            "վտանգ||ի|ում", "հրդեհ", "ապահով չենք", "ապահով չեմ", "ապահով չէ",
            "sos", "ognutyun", "ognutyan", "ognutiun", "oknutyun",
            "ogn|eq|ek|ecek|eceq|etsek|etseq|ir", "prk|eq|ek|ecek|eceq", "vtang", "hrdeh",
            "apahov chenq", "apahov chenk",
        ),
    },
    Status.SAFE: {
        "en": ("safe", "ok", "okay", "fine", "alive", "unhurt", "all good", "all well"),
        "ru": (
            "безопасност|и|ь", "безопасно", "жив||а|ы|ой|ые", "ок", "окей", "норм",
            "нормально", "порядке", "все хорошо",
            "bezopasnost||i", "bezopasno", "zhiv||a|y|i|oy", "jiv|y|i", "normalno",
            "poryadke", "vse horosho",
        ),
        "hy": (
            "ապահով", "անվտանգ", "ողջ ենք", "ողջ եմ", "ողջ է", "ողջ-առողջ", "լավ ենք",
            "լավ եմ", "կենդանի ենք", "կենդանի եմ", "նորմալ ենք",
            "apahov", "anvtang", "voxj enq", "voghj enq", "voxj em", "voghj em", "lav enq",
            "lav enk", "lav em", "normal enq",
        ),
    },
    Status.MEDICAL: {
        "en": (
            "med", "medical", "medic", "paramedic", "doctor", "doc", "injured", "injury",
            "injuries", "hurt", "wounded", "bleeding", "ambulance", "medical help",
            "medical emergency",
        ),
        "ru": (
            "мед", "медик||и", "врач||а|и|у|ей", "доктор||а", "скорая", "скорую",
            "медпомощь", "медицинская помощь", "скорая помощь", "ранен||а|ы|ый|ая|ые|ых",
            "травм|а|ы", "кровотечение",
            "med", "medik", "vrach||a|i", "skoraya", "ranen||a|y|ye|yh|iy",
        ),
        "hy": (
            "բժիշկ||ներ", "բժշկի", "բժշկական", "բժշկական օգնություն", "շտապ օգնություն",
            "շտապօգնություն", "վիրավոր||ներ|ված|վել", "արյունահոսություն",
            "bjishk", "bzhishk", "bjshki", "bjshkakan", "viravor||ner", "shtap ognutyun",
        ),
    },
    Status.TRAPPED: {
        "en": (
            "trapped", "trap", "stuck", "buried", "rubble", "debris", "cant get out",
            "cannot get out", "locked in",
        ),
        "ru": (
            "завал||а|ом|ами|е|ы|ило", "засыпало", "зажат||а|ы", "застрял||а|и",
            "заблокирован||а|ы", "обломк|ами|и|ах", "не можем выбраться",
            "не могу выбраться", "не можем выйти", "не могу выйти",
            "zaval||om|ami|e|y|ilo", "zazhat||a|y", "zajat||a|y", "zastryal||a|i",
        ),
        "hy": (
            "փակված", "փակվել", "փլատակ||ներ|ների|ի|ում|ներում", "չենք կարող դուրս գալ",
            "չեմ կարող դուրս գալ",
            "pakvac", "pakvats", "pakvel", "platak||ner|neri|i",
        ),
    },
    Status.EVACUATE: {
        "en": ("evacuate", "evacuation", "evac", "get us out"),
        "ru": (
            "эвакуаци|я|и|ю", "эвакуир|уйте|овать|оваться|уемся|уйтесь", "эвак",
            "вывезите", "вывезти",
            "evakuaci|ya|ia|ja|yu", "evakuatsi|ya|ia", "evak", "evakuirovat",
        ),
        "hy": (
            # տարհանում is the standard spelling; տարահանում is common enough to accept.
            "տարհան|ում|ման|ել|եք|եցեք|վել", "տարահան|ում|ել",
            "tarhan|um|el|eq|ek", "tarahan|um|el",
        ),
    },
    Status.NEED_SUPPLIES: {
        "en": ("supplies", "supply", "provisions", "humanitarian aid"),
        "ru": (
            "припас|ы|ов", "гуманитарк|а|у|и", "гуманитарн|ая|ую|ой", "гуманитарная помощь",
            "pripas|y|ov", "gumanitark|a|u",
        ),
        "hy": (
            "պաշար||ներ", "հումանիտար", "հումանիտար օգնություն",
            "pashar||ner", "humanitar",
        ),
    },
    Status.MISSING_PERSON: {
        "en": ("missing", "missing person", "disappeared", "cant find", "cannot find"),
        "ru": (
            "пропал||а|и|о", "пропавш|ий|ая|ие|их", "без вести", "потерял|ся|ась|ись",
            "ищем", "не можем найти",
            "propal||a|i", "bez vesti", "poteryal|sya|as|is",
        ),
        "hy": (
            "անհետ", "անհետացել", "կորել", "կորած", "չենք գտնում",
            "anhet", "anhetacel", "korel", "korac", "korats", "chenq gtnum",
        ),
    },
    Status.CANCEL: {
        "en": ("cancel", "cancelled", "canceled", "false alarm", "disregard"),
        "ru": (
            "отмен|а|ить|яю|яем|ите|ено", "отбой", "ложная тревога",
            "otmen|a|it|yayu", "otboi", "otboy",
        ),
        "hy": (
            "չեղարկ|ել|ում|եք|ված|իր", "չեղյալ", "սխալ ահազանգ",
            "chegharg|el|um", "cheghark|el|um", "chexark|el|um", "chexarg|el|um",
        ),
    },
}

NEED_WORDS: dict[Need, dict[Lang, tuple[str, ...]]] = {
    Need.WATER: {
        "en": ("water", "thirsty"),
        "ru": ("вод|а|ы|у|ой|е", "водичк|а|и|у", "vod|a|y|u|i"),
        "hy": ("ջուր||ը|ն", "ջրի", "ջրից", "jur||y", "djur", "jri"),
    },
    Need.FOOD: {
        "en": ("food", "hungry", "starving", "eat"),
        "ru": (
            "ед|а|ы|у|ой", "пищ|а|и|у", "продукт|ы|ов", "питани|е|я", "хлеб||а",
            "голодаем", "голодн|ые|ый",
            "ed|a|y", "yed|a|y", "produkty", "hleb", "khleb",
        ),
        "hy": (
            "սնունդ||ը", "սննդի", "ուտելիք||ներ", "ուտելու", "հաց", "սոված", "մթերք||ներ",
            "snund", "utelik", "uteliq", "hac", "sovac", "sovats",
        ),
    },
    Need.SHELTER: {
        "en": ("shelter", "tent", "tents", "homeless"),
        "ru": (
            "укрыти|е|я|и", "убежищ|е|а", "жиль|е|я", "палатк|а|и|у", "палаток", "ночлег",
            "ukryti|e|ya", "ukriti|e|ya", "ubezhishch|e|a", "palatk|a|i|u",
        ),
        "hy": (
            "կացարան||ի", "ապաստան", "ապաստարան", "վրաններ",
            "kacaran", "katsaran", "apastan", "apastaran",
        ),
    },
    Need.MEDICINE: {
        "en": ("medicine", "medicines", "meds", "medication", "medications", "insulin", "pills"),
        "ru": (
            "лекарств|а|о|", "медикамент|ы|ов", "таблет|ки|ок", "инсулин||а",
            "lekarstv|a|o", "tabletki", "insulin",
        ),
        "hy": (
            "դեղ||եր|երի|որայք|ամիջոց|ամիջոցներ", "ինսուլին", "հաբ|եր",
            "degh||er", "dex||er", "deger", "deghorayq", "haber", "insulin",
        ),
    },
    Need.POWER: {
        "en": ("power", "electricity", "charger", "battery", "batteries", "generator"),
        "ru": (
            "электричеств|о|а", "свет||а", "электроэнерги|я|и", "зарядк|а|и|у",
            "генератор||а",
            "elektrichestv|o|a", "svet||a", "zaryadk|a|i|u", "generator",
        ),
        "hy": (
            "հոսանք||ը", "էլեկտրականություն", "էլեկտրաէներգիա", "լույս||ը", "լիցքավորիչ",
            "գեներատոր",
            "hosanq", "hosank", "luys", "generator",
        ),
    },
    Need.TRANSPORT: {
        "en": ("transport", "transportation", "vehicle"),
        "ru": ("транспорт||а", "машин|а|у|ы", "автобус||а", "transport", "mashin|a|u|y", "avtobus"),
        "hy": (
            "տրանսպորտ", "մեքենա||յի", "ավտոբուս", "փոխադրամիջոց",
            "transport", "meqena", "mekena", "avtobus",
        ),
    },
}

SYMBOL_MEANINGS: dict[str, Status | Need] = {
    "🆘": Status.SOS,
    "🚑": Status.MEDICAL,
    "💧": Need.WATER,
    "🍞": Need.FOOD,
    "⛺": Need.SHELTER,
    "💊": Need.MEDICINE,
    "🔋": Need.POWER,
    "🚗": Need.TRANSPORT,
}

# Words that make a number beside them a headcount ("3 people", "3 чел", "3 հոգի").
PEOPLE_AFTER: dict[Lang, tuple[str, ...]] = {
    "en": ("people", "persons", "person", "ppl", "pax", "pers", "of us", "souls"),
    "ru": (
        "чел", "человек||а", "людей", "люди", "chel", "chelovek||a", "lyudey", "lyudei",
    ),
    "hy": ("հոգի", "հոգու", "հոգով", "մարդ", "անձ", "hogi", "hogu", "hogov", "mard", "andz"),
}
# Subgroups: "2 adults 3 kids" adds up to 5, unless a total is also given.
PEOPLE_PART: dict[Lang, tuple[str, ...]] = {
    "en": ("adults", "adult", "kids", "kid", "children", "child", "babies", "baby", "elderly"),
    "ru": (
        "взросл|ых|ые|ый", "дет|ей|и", "ребенок", "ребенка", "стари|ков|к",
        "vzroslyh", "detey", "deti",
    ),
    "hy": (
        "երեխա||ներ", "մեծահասակ||ներ", "տարեց||ներ",
        "erexa||ner", "erekha||ner", "yerexa||ner",
    ),
}
# Words that come before the count: "нас 3", "we are 3".
PEOPLE_BEFORE: dict[Lang, tuple[str, ...]] = {
    "en": ("we are", "were"),  # "we're" folds to "were"
    "ru": ("нас", "nas"),
    "hy": (),
}
# A number beside one of these is a floor, an address, a time or a quantity, not people.
UNITS: dict[Lang, tuple[str, ...]] = {
    "en": (
        "floor", "fl", "building", "bldg", "house", "apt", "apartment", "flat", "street", "st",
        "road", "rd", "nd", "th", "km", "m", "meters", "metres", "mi", "miles", "l", "liter",
        "liters", "litre", "litres", "bottle", "bottles", "kg", "min", "mins", "minutes", "h",
        "hr", "hrs", "hour", "hours", "day", "days", "year", "years", "yo", "yrs", "room",
        "entrance", "block", "percent", "school", "family", "families",
    ),
    "ru": (
        "этаж||е|а|ного|ном|ный", "эт", "сем|ей|ьи|ья", "дом||е|а", "д", "кв", "квартир|а|е",
        "подъезд||е", "ул", "улиц|а|е", "км", "м", "л", "литр||а|ов", "бутыл|ки|ок", "кг", "мин",
        "минут", "час||а|ов", "ч", "лет", "год||а", "дн|ей|я", "день", "сут|ок|ки", "корпус",
        "школ|а|е", "й", "го", "ий", "ой", "ем", "ом",
        "etazh", "dom", "kv", "ul",
    ),
    "hy": (
        "հարկ||ում|ի", "շենք||ի|ում", "տուն", "տան", "բնակարան", "բն", "փողոց", "փող", "կմ",
        "մ", "լ", "լիտր", "կգ", "րոպե", "ժամ", "տարեկան", "տարի", "օր", "թաղամաս", "դպրոց",
        "րդ", "ին", "ընտանիք||ներ",
        "hark||um", "shenq", "shenk", "tun", "tarekan",
    ),
}
# "x3", "3x", "×3": a count.
TIMES: dict[Lang, tuple[str, ...]] = {"en": ("x",), "ru": ("х",), "hy": ()}
# Armenian "to be" after a word: "փակված ենք" (we are trapped), "կորել է" (is lost).
AUX: dict[Lang, tuple[str, ...]] = {
    "en": (),
    "ru": (),
    "hy": ("է", "ենք", "եմ", "են", "եք", "e", "enq", "enk", "em"),
}
# "вода есть", "ջուր կա", "have food": right beside a need word, it is had, not asked for.
HAVE: dict[Lang, tuple[str, ...]] = {
    "en": ("have", "got"),
    "ru": ("есть", "est"),
    "hy": ("կա", "կան", "ունենք", "ka", "unenq"),
}
# Counts written as words. Collective numerals (двое, трое) only ever count people.
NUMBER_WORDS: dict[Lang, tuple[tuple[str, int], ...]] = {
    "en": (
        ("one", 1), ("two", 2), ("three", 3), ("four", 4), ("five", 5), ("six", 6),
        ("seven", 7), ("eight", 8), ("nine", 9), ("ten", 10),
    ),
    "ru": (
        ("один", 1), ("одна", 1), ("одно", 1), ("два", 2), ("две", 2), ("три", 3),
        ("четыре", 4), ("пять", 5), ("шесть", 6), ("семь", 7), ("восемь", 8),
        ("девять", 9), ("десять", 10),
    ),
    "hy": (
        ("մեկ", 1), ("երկու", 2), ("երեք", 3), ("չորս", 4), ("հինգ", 5), ("վեց", 6),
        ("յոթ", 7), ("յոթը", 7), ("ութ", 8), ("ութը", 8), ("ինը", 9), ("տաս", 10),
        ("տասը", 10),
        ("mek", 1), ("erku", 2), ("yerku", 2), ("ereq", 3), ("yereq", 3), ("erek", 3),
        ("yerek", 3), ("chors", 4), ("hing", 5), ("vec", 6), ("vets", 6), ("yot", 7),
        ("tas", 10),
    ),
}
COLLECTIVE_NUMBERS: tuple[tuple[str, int], ...] = (
    ("двое", 2), ("трое", 3), ("четверо", 4), ("пятеро", 5), ("шестеро", 6), ("семеро", 7),
    ("восьмеро", 8), ("девятеро", 9), ("десятеро", 10),
    ("dvoe", 2), ("troe", 3), ("chetvero", 4), ("pyatero", 5),
)
# Glue words. They are dropped from the leftover text only when they sit between
# keywords (or a keyword and the message's edge), so "нет воды" leaves nothing but
# "mom is trapped" keeps "mom is". Negations are never glue: "не" stays meaningful.
FILLERS: dict[Lang, tuple[str, ...]] = {
    "en": (
        "i", "im", "we", "are", "am", "is", "all", "us", "my", "our", "me", "need", "needs",
        "needed", "no", "please", "pls", "plz", "and", "a", "an", "the", "some", "hello", "hi",
        "now", "here", "send", "urgent", "urgently", "for", "total",
    ),
    "ru": (
        "я", "мы", "все", "нужн|а|о|ы", "нужен", "надо", "нет", "без", "у", "и", "нам", "меня",
        "пожалуйста", "мой", "моя", "мои", "наш||а|и", "в", "под", "срочно", "привет", "всего",
        "ya", "my", "vse", "nuzhn|a|o|y", "nado", "net", "bez", "u", "i", "nam", "srochno",
        "pozhaluysta", "pozhalujsta", "privet",
    ),
    "hy": (
        "ես", "մենք", "չկա", "չկան", "չունենք", "պետք",
        "կարիք", "մեզ", "ինձ", "խնդրում", "եւ", "ու", "մեր", "իմ", "տակ", "շտապ", "բարեւ", "համար",
        "es", "menq", "menk", "chka", "chunenq",
        "petq", "petk", "karik", "kariq", "mez", "xndrum", "khndrum", "u", "mer", "im", "tak",
        "shtap", "barev",
    ),
}
# Real words one letter away from a keyword, with the same first letter. Reading them as
# typos would turn "flood" into FOOD, "test" into a shelter request, "cancer" into CANCEL.
NOT_TYPOS = frozenset(
    (
        *("hell", "held", "helm", "hemp", "heap", "helo"),  # help
        *("same", "sale", "sake", "sage", "save", "sane", "safer"),  # safe
        *("find", "five", "fined", "fins"),  # fine
        *("fool", "foot", "fold", "ford", "fond", "flood", "floods"),  # food
        *("test", "tests", "text", "tend", "tens", "teen", "tint", "tenth"),  # tent, tents
        *("mess", "mead", "media", "medal", "pulls", "polls"),  # meds, medic, pills
        *("poker", "powder", "poser"),  # power
        *("stock", "stack", "stick", "struck", "hunt", "hurl", "tram", "trip", "tray"),
        *("alike", "rumble", "dancer", "cancer", "thirty", "hungary", "starting"),
        *("wafer", "waver", "wader", "wager", "waiter", "blending", "breeding"),
        *("ранее", "врал", "враг", "живу", "живо", "совет", "свят", "сват", "водка"),
        *("палата", "палату", "палате", "скорей", "медиа", "голос", "город", "vodka"),
        "փակել",  # to close (a door), one letter from փակվել
    )
)

# fmt: on

# Life-safety first (by the wire's own priority), then this order. CANCEL outranks the
# routine statuses: "отбой, все в порядке" is a withdrawal more than a status.
URGENCY: tuple[Status, ...] = (
    Status.SOS,
    Status.TRAPPED,
    Status.MEDICAL,
    Status.CANCEL,
    Status.EVACUATE,
    Status.MISSING_PERSON,
    Status.NEED_SUPPLIES,
    Status.SAFE,
)
