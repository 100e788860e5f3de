"""The civilian card's words, in English, Russian and Armenian: the one source the PDF and
PNG cards are made from (signalfire.cards.build).

Written for someone frightened, tired and reading by torchlight: short sentences, one
instruction each, no jargon beyond the words printed on the phone app and the radio.
The status words are the ones the gateway's parser reads (tests/test_cards.py parses
every one), each with the Latin word a radio's canned-message list shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from signalfire.intake.lang import Lang
from signalfire.intake.replies import Reply, reply_text
from signalfire.wire.vocab import Status

LANGS = ("en", "hy", "ru")
EXAMPLE_REF = "K7Q2"


@dataclass(frozen=True)
class Word:
    local: str  # what to type in this language
    canned: str  # the word in the radio's canned-message list
    meaning: str
    status: Status


@dataclass(frozen=True)
class CardText:
    lang: Lang
    title: str
    subtitle: str
    join_heading: str
    join: tuple[str, ...]
    qr_placeholder: str
    qr_caption: str  # {channel} is the channel's name
    send_heading: str
    send: tuple[str, ...]
    examples: tuple[str, ...]  # typed messages the card shows, each one must parse
    buttons: str
    words_heading: tuple[str, str]
    words: tuple[Word, ...]
    reply_heading: str
    reply_intro: str
    reply_meaning: tuple[str, ...]
    no_reply_heading: str
    no_reply: tuple[str, ...]
    safety_heading: str
    safety: tuple[str, str, str]

    def example_reply(self) -> str:
        return reply_text(Reply.RECEIVED, self.lang, EXAMPLE_REF, status=Status.SOS, people=3)


CARDS: dict[str, CardText] = {
    "en": CardText(
        lang="en",
        title="Call for help by radio",
        subtitle="For Meshtastic radios on the signalfire network. Keep this card with the radio.",
        join_heading="1. Join the network (once)",
        join=(
            "Open the Meshtastic app on your phone and connect to your radio.",
            "Scan the network's QR code: Channels, then the QR button. "
            "Choose <b>Replace</b>, not Add.",
            "Or ask a volunteer to set up your radio.",
        ),
        qr_placeholder="The network's QR code: a volunteer shows it to you",
        qr_caption="Channel {channel}",
        send_heading="2. Send your status",
        send=(
            "Type one word and how many of you there are. Send it on the channel:",
            "Add a few words if you can:",
        ),
        examples=("SOS 3", "MEDICAL 2 broken leg"),
        buttons="Radio with buttons only: open <b>Canned messages</b>, "
        "choose the word, press to send.",
        words_heading=("Word", "When"),
        words=(
            Word("SOS", "SOS", "a life is in danger", Status.SOS),
            Word("MEDICAL", "MEDICAL", "someone is hurt or ill", Status.MEDICAL),
            Word("TRAPPED", "TRAPPED", "you cannot get out", Status.TRAPPED),
            Word("EVACUATE", "EVACUATE", "you need to be taken away", Status.EVACUATE),
            Word("WATER", "WATER", "you need water", Status.NEED_SUPPLIES),
            Word("FOOD", "FOOD", "you need food", Status.NEED_SUPPLIES),
            Word("SAFE", "SAFE", "you are safe, no help needed", Status.SAFE),
            Word("CANCEL", "CANCEL", "take back your last call", Status.CANCEL),
        ),
        reply_heading="3. The reply",
        reply_intro="A gateway answers within a few minutes, like this:",
        reply_meaning=(
            "It means: your message is saved and goes to the rescue coordinators "
            "when a link is up. It is not yet a promise of rescue.",
            "Write down the code (here {ref}). It names your message.",
        ),
        no_reply_heading="4. No reply?",
        no_reply=(
            "Wait 5 minutes, then send once more.",
            "Go higher, go outside, or stand by a window, and try again.",
            "Do not send again and again: each message uses air time that others need.",
            "Still nothing? Switch off to save the battery and try again in an hour. "
            "Your message may have arrived even without a reply.",
        ),
        safety_heading="Stay safe",
        safety=(
            "Keep messages short: send, then stop.",
            "Your location is encrypted, but while the radio sends, "
            "others can find where the radio is.",
            "If you fear being found, switch the radio off when you do not need it.",
        ),
    ),
    "ru": CardText(
        lang="ru",
        title="Как позвать на помощь по рации",
        subtitle="Для раций Meshtastic в сети signalfire. Храните карточку вместе с рацией.",
        join_heading="1. Подключитесь к сети (один раз)",
        join=(
            "Откройте приложение Meshtastic на телефоне и подключитесь к рации.",
            "Отсканируйте QR-код сети: «Каналы», затем кнопка QR. "
            "Выберите <b>«Заменить»</b>, а не «Добавить».",
            "Или попросите волонтёра настроить рацию.",
        ),
        qr_placeholder="QR-код сети: его покажет волонтёр",
        qr_caption="Канал {channel}",
        send_heading="2. Сообщите, что с вами",
        send=(
            "Напишите одно слово и сколько вас. Отправьте в канал:",
            "Если можете, добавьте пару слов:",
        ),
        examples=("ПОМОГИТЕ 3", "ВРАЧ 2 сломана нога"),
        buttons="Рация только с кнопками: откройте <b>Canned messages</b> "
        "(быстрые сообщения), выберите слово, нажмите «отправить». "
        "На рации слова латиницей.",
        words_heading=("Слово (на рации)", "Когда"),
        words=(
            Word("ПОМОГИТЕ", "SOS", "жизнь в опасности", Status.SOS),
            Word("ВРАЧ", "MEDICAL", "кто-то ранен или болен", Status.MEDICAL),
            Word("ЗАВАЛ", "TRAPPED", "не можете выбраться", Status.TRAPPED),
            Word("ЭВАКУАЦИЯ", "EVACUATE", "вас нужно вывезти", Status.EVACUATE),
            Word("ВОДА", "WATER", "нужна вода", Status.NEED_SUPPLIES),
            Word("ЕДА", "FOOD", "нужна еда", Status.NEED_SUPPLIES),
            Word("ЖИВЫ", "SAFE", "вы в безопасности, помощь не нужна", Status.SAFE),
            Word("ОТМЕНА", "CANCEL", "отменить прошлый вызов", Status.CANCEL),
        ),
        reply_heading="3. Ответ",
        reply_intro="Шлюз ответит в течение нескольких минут, например:",
        reply_meaning=(
            "Это значит: сообщение сохранено и уйдёт в штаб спасателей, "
            "когда будет связь. Это ещё не обещание спасения.",
            "Запишите код (здесь {ref}). По нему найдут ваше сообщение.",
        ),
        no_reply_heading="4. Нет ответа?",
        no_reply=(
            "Подождите 5 минут и отправьте ещё раз.",
            "Поднимитесь выше, выйдите на улицу или встаньте у окна и попробуйте снова.",
            "Не отправляйте снова и снова: каждое сообщение занимает эфир, нужный другим.",
            "Ответа всё нет? Выключите рацию, чтобы сберечь батарею, и попробуйте "
            "через час. Сообщение могло дойти, даже если ответа нет.",
        ),
        safety_heading="Безопасность",
        safety=(
            "Пишите коротко: отправили — и всё.",
            "Ваше место зашифровано, но пока рация передаёт, саму рацию можно найти.",
            "Если боитесь, что вас найдут, выключайте рацию, когда она не нужна.",
        ),
    ),
    "hy": CardText(
        lang="hy",
        title="Ինչպես ռադիոյով օգնություն կանչել",
        subtitle="Meshtastic ռադիոների համար՝ signalfire ցանցում։ Պահեք այս քարտը ռադիոյի հետ։",
        join_heading="1. Միացեք ցանցին (մեկ անգամ)",
        join=(
            "Բացեք Meshtastic հավելվածը հեռախոսում և միացեք ռադիոյին։",
            "Սկանավորեք ցանցի QR կոդը՝ Channels, հետո QR կոճակը։ "
            "Ընտրեք <b>Replace</b> (փոխարինել), ոչ թե Add։",
            "Կամ խնդրեք կամավորին կարգավորել ռադիոն։",
        ),
        qr_placeholder="Ցանցի QR կոդը՝ ցույց կտա կամավորը",
        qr_caption="Ալիք՝ {channel}",
        send_heading="2. Հայտնեք, թե ինչ է ձեզ հետ",
        send=(
            "Գրեք մեկ բառ և քանի հոգի եք։ Ուղարկեք ալիքով՝",
            "Եթե կարող եք, ավելացրեք մի քանի բառ՝",
        ),
        examples=("ՕԳՆՈՒԹՅՈՒՆ 3", "ԲԺԻՇԿ 2 ոտքը կոտրված է"),
        buttons="Միայն կոճակներով ռադիո՝ բացեք <b>Canned messages</b>, "
        "ընտրեք բառը, սեղմեք՝ ուղարկելու համար։ Ռադիոյում բառերը լատինատառ են։",
        words_heading=("Բառ (ռադիոյում)", "Երբ"),
        words=(
            Word("ՕԳՆՈՒԹՅՈՒՆ", "SOS", "կյանքը վտանգի տակ է", Status.SOS),
            Word("ԲԺԻՇԿ", "MEDICAL", "ինչ-որ մեկը վիրավոր է կամ հիվանդ", Status.MEDICAL),
            Word("ՓԱԿՎԱԾ", "TRAPPED", "չեք կարող դուրս գալ", Status.TRAPPED),
            Word("ՏԱՐՀԱՆՈՒՄ", "EVACUATE", "ձեզ պետք է տեղափոխել", Status.EVACUATE),
            Word("ՋՈՒՐ", "WATER", "ջուր է պետք", Status.NEED_SUPPLIES),
            Word("ՍՆՈՒՆԴ", "FOOD", "սնունդ է պետք", Status.NEED_SUPPLIES),
            Word("ԱՊԱՀՈՎ", "SAFE", "ապահով եք, օգնություն պետք չէ", Status.SAFE),
            Word("ՉԵՂԱՐԿԵԼ", "CANCEL", "չեղարկել նախորդ կանչը", Status.CANCEL),
        ),
        reply_heading="3. Պատասխանը",
        reply_intro="Դարպասը (gateway) կպատասխանի մի քանի րոպեում, օրինակ՝",
        reply_meaning=(
            "Սա նշանակում է՝ հաղորդագրությունը պահված է և կհասնի փրկարարների շտաբին, "
            "երբ կապ լինի։ Սա դեռ փրկության խոստում չէ։",
            "Գրի առեք կոդը (այստեղ՝ {ref})։ Դրանով կգտնեն ձեր հաղորդագրությունը։",
        ),
        no_reply_heading="4. Պատասխան չկա՞",
        no_reply=(
            "Սպասեք 5 րոպե և ուղարկեք ևս մեկ անգամ։",
            "Բարձրացեք վեր, դուրս եկեք կամ կանգնեք պատուհանի մոտ և նորից փորձեք։",
            "Մի՛ ուղարկեք անընդհատ՝ ամեն հաղորդագրություն զբաղեցնում է եթերը, "
            "որն ուրիշներին էլ է պետք։",
            "Դեռ պատասխան չկա՞։ Անջատեք ռադիոն՝ մարտկոցը խնայելու համար, և փորձեք "
            "մեկ ժամ հետո։ Հաղորդագրությունը կարող էր հասնել, նույնիսկ եթե պատասխան չկա։",
        ),
        safety_heading="Անվտանգություն",
        safety=(
            "Գրեք կարճ՝ ուղարկեցիք և վերջ։",
            "Ձեր տեղը գաղտնագրված է, բայց երբ ռադիոն հաղորդում է, ռադիոն ինքը կարելի է գտնել։",
            "Եթե վախենում եք, որ ձեզ կգտնեն, անջատեք ռադիոն, երբ այն պետք չէ։",
        ),
    ),
}


def card_text(lang: str) -> CardText:
    try:
        return CARDS[lang]
    except KeyError:
        raise ValueError(f"no card in language {lang!r}; have {', '.join(LANGS)}") from None
