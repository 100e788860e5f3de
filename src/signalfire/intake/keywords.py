"""Read a stock-radio text message into a report's fields.

A civilian with the unmodified Meshtastic app, or a button-only device sending canned
messages, can only send text. :func:`parse_message` turns that text into a status, a
people count, needs, the words left over and the language to answer in;
:func:`~signalfire.intake.replies.reply_text` words the answers. Pure: no I/O, no clock, and the
tables below are built once at import and never change.

How a message is read
---------------------
1. The text is split into words, numbers and a few symbols (emoji such as 🆘 count as
   words). Each word is folded: NFKC, casefold (Armenian has case too), ``ё`` read as
   ``е``, stress and Armenian emphasis marks dropped, runs of three or more equal letters
   squeezed ("HEEELP"). A word that mixes Latin, Cyrillic and Armenian letters is also
   tried with its look-alike letters swapped into each script, so "вoда" with a Latin
   ``o`` still reads as water.
2. Words are looked up in the lexicon, longest phrase first ("не в безопасности" before
   "безопасности"). A word that is not found is tried once more allowing one typo (a
   letter inserted, dropped, replaced, or two neighbours swapped) against the status and
   need keywords of four letters or more, keeping the first letter: typos rarely hit the
   first letter, and insisting on it keeps "hell" from reading as "help". Real words that
   are one letter from a keyword ("flood"/"food", "test"/"tent") are never read as typos.
3. The people count is the number tied most closely to the message: one with a people
   word ("3 people", "3 чел", "3 հոգի", "нас 3", "x3") beats one beside a status keyword
   ("SOS 3", "3 SOS"), which beats one beside a need keyword ("WATER 3"). Numbers next to
   units or addresses ("3 этаж", "floor 3", "3rd", "20 l"), phone numbers and times are
   never counts and stay in the text. Subgroups add up ("2 adults 3 kids" is 5) unless a
   total is given. Missing means 1.
4. The most urgent status wins (:data:`URGENCY`); the other status words stay in the
   text so the coordinator still reads them. Need words alone mean need-supplies; a need
   word right beside "have", "есть" or "կա" ("вода есть") is had, not asked for. CANCEL
   only withdraws: it carries no needs, and a status word right beside it ("CANCEL SOS")
   is what is being withdrawn, not a new call.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from signalfire.wire.vocab import Need, Status

from .lang import MAX_PEOPLE, Lang
from .lexicon import (
    AUX,
    COLLECTIVE_NUMBERS,
    FILLERS,
    HAVE,
    NEED_WORDS,
    NOT_TYPOS,
    NUMBER_WORDS,
    PEOPLE_AFTER,
    PEOPLE_BEFORE,
    PEOPLE_PART,
    STATUS_WORDS,
    SYMBOL_MEANINGS,
    TIMES,
    UNITS,
    URGENCY,
)

# A number this long written beside a keyword is a phone number, a year or an address,
# not a headcount, unless a people word says otherwise ("1200 people").
_MAX_PLAIN_COUNT_DIGITS = 3
# Longer digit runs are never counts; int() of thousands of digits is also slow.
_MAX_NUMBER_DIGITS = 6


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What a stock-radio text says. ``status`` None means it is not a report: reply with help.

    ``text`` is what the sender wrote beyond keywords and the count, for the report's text
    field; it is not shortened here, so the caller must fit it to the report's size limit.
    ``notes`` explain readings the sender might not expect (a clamped count, a typo taken
    for a keyword, a second status kept as text), in English, for the gateway's log.
    """

    status: Status | None
    people: int
    needs: Need
    text: str
    lang: Lang
    people_stated: bool = False
    notes: tuple[str, ...] = ()

    @property
    def is_report(self) -> bool:
        return self.status is not None


# --------------------------------------------------------------------------------------
# Folding and tokens.

_LATIN_CYRILLIC = dict(zip("AaBCcEeHKkMOoPpTXxYy", "АаВСсЕеНКкМОоРрТХхУу", strict=True))
_LATIN_ARMENIAN = dict(zip("OoUunhqgL", "ՕօՍսոհզցԼ", strict=True))


def _invert(mapping: Mapping[str, str]) -> dict[str, str]:
    return {v: k for k, v in mapping.items()}


def _via_latin(to_latin: Mapping[str, str], from_latin: Mapping[str, str]) -> dict[str, str]:
    """Look-alikes between two non-Latin scripts go through their Latin twin (Օ, O, О)."""
    return {src: from_latin[lat] for src, lat in to_latin.items() if lat in from_latin}


_CYRILLIC_LATIN = _invert(_LATIN_CYRILLIC)
_ARMENIAN_LATIN = _invert(_LATIN_ARMENIAN)
_TO_CYRILLIC = str.maketrans(_LATIN_CYRILLIC | _via_latin(_ARMENIAN_LATIN, _LATIN_CYRILLIC))
_TO_LATIN = str.maketrans(_CYRILLIC_LATIN | _ARMENIAN_LATIN)
_TO_ARMENIAN = str.maketrans(_LATIN_ARMENIAN | _via_latin(_CYRILLIC_LATIN, _LATIN_ARMENIAN))
_TO_SCRIPT = {"cyrl": _TO_CYRILLIC, "latn": _TO_LATIN, "armn": _TO_ARMENIAN}

# Marks that sit inside a word and mean nothing to a lookup: Armenian emphasis, exclamation
# and question marks go over the stressed vowel ("օգնեցե՛ք"); apostrophes ("we're",
# "opasnost'"); soft hyphens and zero-width characters from copy and paste.
_INNER_MARKS = "\u055a\u055b\u055c\u055e\u00ad\u200b\u200c\u200d\u2060\ufeff'\u2019\u02bc"
_DROP_INNER = dict.fromkeys(map(ord, _INNER_MARKS))
_SYMBOLS = "×#№" + "".join(SYMBOL_MEANINGS)
_TOKEN_RE = re.compile(
    r"(?P<num>\+?\d+(?:[.,:/\-\u2013]\d+)*)"
    rf"|(?P<word>[^\W\d_](?:[^\W\d_]|[\u0300-\u036f]|[{_INNER_MARKS}](?=[^\W\d_]))*)"
    rf"|(?P<sym>[{_SYMBOLS}])\ufe0f?"
)
_SQUEEZE_RE = re.compile(r"(.)\1{2,}")
_NUMBER_SEP_RE = re.compile(r"[.,:/\-\u2013]")


def _fold(word: str) -> str:
    folded = unicodedata.normalize("NFKC", word.translate(_DROP_INNER)).casefold()
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return folded.replace("ё", "е")


def _script(ch: str) -> str | None:
    code = ord(ch)
    if ch.isascii():
        return "latn" if ch.isalpha() else None
    if 0x00C0 <= code <= 0x024F:
        return "latn"
    if 0x0400 <= code <= 0x052F:
        return "cyrl"
    if 0x0531 <= code <= 0x058F or 0xFB13 <= code <= 0xFB17:
        return "armn"
    return None


def _spellings(raw: str) -> tuple[str, ...]:
    """The folded forms to look a word up by, the likeliest first."""
    counts: dict[str, int] = {}
    for ch in raw:
        if (script := _script(ch)) is not None:
            counts[script] = counts.get(script, 0) + 1
    variants = [raw]
    if len(counts) > 1:
        # Mixed scripts in one word are look-alikes typed by accident or on purpose;
        # try the word in the script most of its letters are in first.
        for script in sorted(counts, key=lambda s: -counts[s]):
            variants.append(raw.translate(_TO_SCRIPT[script]))
    out: list[str] = []
    for variant in variants:
        folded = _fold(variant)
        for form in (folded, _SQUEEZE_RE.sub(r"\1", folded)):
            if form and form not in out:
                out.append(form)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["num", "word", "sym"]
    start: int
    end: int
    raw: str
    spellings: tuple[str, ...]


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    for m in _TOKEN_RE.finditer(text):
        if m.lastgroup == "num":
            out.append(_Token("num", m.start(), m.end(), m.group(), ()))
        elif m.lastgroup == "word":
            out.append(_Token("word", m.start(), m.end(), m.group(), _spellings(m.group())))
        else:
            sym = m.group("sym")
            out.append(_Token("sym", m.start(), m.end(), m.group(), (sym,)))
    return out


def _read_number(raw: str) -> int | None:
    """The count a digit group can be, or None for phone numbers, times, decimals, ids."""
    if raw.startswith("+"):
        return None
    parts = _NUMBER_SEP_RE.split(raw)
    if any(len(p) > _MAX_NUMBER_DIGITS or (len(p) > 1 and int(p[0]) == 0) for p in parts):
        return None
    if len(parts) == 1:
        return int(parts[0])
    # "3-4 people": plan for the larger group. Anything else with separators (12:30, 40.18,
    # 091-12-34) is not a headcount.
    ranged = len(parts) == 2 and raw[len(parts[0])] in "-\u2013"
    if ranged and all(len(p) <= _MAX_PLAIN_COUNT_DIGITS for p in parts):
        return max(int(p) for p in parts)
    return None


# --------------------------------------------------------------------------------------
# The compiled lexicon.


class _Role(enum.Enum):
    STATUS = "status"
    NEED = "need"
    NUMBER = "number"
    PEOPLE_AFTER = "people after"
    PEOPLE_PART = "people part"
    PEOPLE_BEFORE = "people before"
    UNIT = "unit"
    TIMES = "times"
    FILLER = "filler"
    AUX = "auxiliary"
    HAVE = "have"


@dataclass(frozen=True, slots=True)
class _Entry:
    role: _Role
    status: Status | None = None
    need: Need | None = None
    number: int = 0
    people: bool = False  # a number word that only ever counts people
    lang: Lang | None = None  # None when the same spelling means the same in two languages

    def same_meaning(self, other: _Entry) -> bool:
        return (self.role, self.status, self.need, self.number, self.people) == (
            other.role,
            other.status,
            other.need,
            other.number,
            other.people,
        )


# Soft words may sit between a count and its keyword without breaking the link, and are
# dropped from the text when they only glue keywords together.
_SOFT_ROLES = frozenset({_Role.FILLER, _Role.AUX, _Role.PEOPLE_BEFORE, _Role.HAVE})


def _expand(written: str) -> list[str]:
    if "|" not in written:
        return [written]
    stem, *endings = written.split("|")
    return [stem + ending for ending in endings]


def _key(form: str) -> tuple[str, ...]:
    return tuple(_fold(m.group()) for m in _TOKEN_RE.finditer(form) if m.lastgroup == "word")


@dataclass(frozen=True, slots=True)
class _Lexicon:
    phrases: Mapping[str, tuple[tuple[tuple[str, ...], _Entry], ...]]  # by first word
    symbols: Mapping[str, _Entry]
    fuzzy: Mapping[tuple[str, int], tuple[tuple[str, _Entry], ...]]  # by first letter, length
    # Status and Need are both int enums, so Status.SOS == Need.WATER: keep them apart.
    status_words: Mapping[tuple[Status, Lang], tuple[str, ...]] = field(repr=False)
    need_words: Mapping[tuple[Need, Lang], tuple[str, ...]] = field(repr=False)


def _build() -> _Lexicon:
    entries: dict[tuple[str, ...], _Entry] = {}

    def add(form: str, entry: _Entry) -> None:
        key = _key(form)
        if not key:
            raise ValueError(f"keyword {form!r} has no letters")
        old = entries.get(key)
        if old is None:
            entries[key] = entry
        elif not old.same_meaning(entry):
            raise ValueError(f"keyword {form!r} means both {old} and {entry}")
        elif old.lang != entry.lang:
            entries[key] = _Entry(old.role, old.status, old.need, old.number, old.people, None)

    def add_all(table: Mapping[Lang, Iterable[str]], make: _Entry) -> None:
        for lang, forms in table.items():
            for written in forms:
                for form in _expand(written):
                    add(form, _Entry(make.role, make.status, make.need, lang=lang))

    status_words: dict[tuple[Status, Lang], tuple[str, ...]] = {}
    for status, by_lang in STATUS_WORDS.items():
        add_all(by_lang, _Entry(_Role.STATUS, status=status))
        for lang, forms in by_lang.items():
            status_words[(status, lang)] = tuple(f for w in forms for f in _expand(w))
    need_words: dict[tuple[Need, Lang], tuple[str, ...]] = {}
    for need, by_lang in NEED_WORDS.items():
        add_all(by_lang, _Entry(_Role.NEED, need=need))
        for lang, forms in by_lang.items():
            need_words[(need, lang)] = tuple(f for w in forms for f in _expand(w))
    add_all(PEOPLE_AFTER, _Entry(_Role.PEOPLE_AFTER))
    add_all(PEOPLE_PART, _Entry(_Role.PEOPLE_PART))
    add_all(PEOPLE_BEFORE, _Entry(_Role.PEOPLE_BEFORE))
    add_all(UNITS, _Entry(_Role.UNIT))
    add_all(TIMES, _Entry(_Role.TIMES))
    add_all(FILLERS, _Entry(_Role.FILLER))
    add_all(HAVE, _Entry(_Role.HAVE))
    add_all(AUX, _Entry(_Role.AUX))
    for lang, numbers in NUMBER_WORDS.items():
        for form, value in numbers:
            add(form, _Entry(_Role.NUMBER, number=value, lang=lang))
    for form, value in COLLECTIVE_NUMBERS:
        add(form, _Entry(_Role.NUMBER, number=value, people=True, lang="ru"))

    phrases: dict[str, list[tuple[tuple[str, ...], _Entry]]] = {}
    fuzzy: dict[tuple[str, int], list[tuple[str, _Entry]]] = {}
    for key, entry in entries.items():
        phrases.setdefault(key[0], []).append((key, entry))
        word = key[0]
        if len(key) == 1 and entry.role in (_Role.STATUS, _Role.NEED) and len(word) >= 4:
            fuzzy.setdefault((word[0], len(word)), []).append((word, entry))
    symbols: dict[str, _Entry] = {"×": _Entry(_Role.TIMES), "#": _Entry(_Role.UNIT)}
    symbols["№"] = _Entry(_Role.UNIT)
    for sym, meaning in SYMBOL_MEANINGS.items():
        if isinstance(meaning, Status):
            symbols[sym] = _Entry(_Role.STATUS, status=meaning)
        else:
            symbols[sym] = _Entry(_Role.NEED, need=meaning)
    return _Lexicon(
        phrases={
            first: tuple(sorted(group, key=lambda kv: -len(kv[0])))
            for first, group in phrases.items()
        },
        symbols=symbols,
        fuzzy={k: tuple(v) for k, v in fuzzy.items()},
        status_words=status_words,
        need_words=need_words,
    )


_LEXICON = _build()


def keywords(meaning: Status | Need, lang: Lang) -> tuple[str, ...]:
    """Every spelling the parser knows for a status or need in one language (not typos)."""
    if isinstance(meaning, Status):
        return _LEXICON.status_words.get((meaning, lang), ())
    return _LEXICON.need_words.get((meaning, lang), ())


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether b is a with one letter inserted, dropped or replaced, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1 :]


def _typo_of(spellings: tuple[str, ...]) -> tuple[str, _Entry] | None:
    for word in spellings:
        if len(word) < 4 or word in NOT_TYPOS:
            continue
        found: dict[str, _Entry] = {}
        for length in (len(word) - 1, len(word), len(word) + 1):
            for form, entry in _LEXICON.fuzzy.get((word[0], length), ()):
                if _one_edit_apart(word, form):
                    found[form] = entry
        entries = list(found.values())
        # A typo close to two different keywords is a guess; leave it as text.
        if entries and all(e.same_meaning(entries[0]) for e in entries):
            form = min(found)
            return form, found[form]
    return None


# --------------------------------------------------------------------------------------
# Reading a message.


@dataclass(slots=True, eq=False)  # items are compared by identity: two "SOS" are two items
class _Item:
    start: int
    end: int
    raw: str
    entry: _Entry | None  # None: a word or number the lexicon does not know
    value: int | None = None  # a number that could be a count
    digits: bool = False
    consumed: bool = False

    @property
    def role(self) -> _Role | None:
        return self.entry.role if self.entry is not None else None

    @property
    def status(self) -> Status | None:
        return self.entry.status if self.entry is not None else None

    @property
    def need(self) -> Need | None:
        return self.entry.need if self.entry is not None else None


_DIGITS_ENTRY = _Entry(_Role.NUMBER)


def _items(tokens: list[_Token], notes: list[str]) -> list[_Item]:
    items: list[_Item] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "num":
            value = _read_number(tok.raw)
            entry = _DIGITS_ENTRY if value is not None else None
            items.append(_Item(tok.start, tok.end, tok.raw, entry, value, digits=True))
            i += 1
            continue
        if tok.kind == "sym":
            items.append(_Item(tok.start, tok.end, tok.raw, _LEXICON.symbols[tok.spellings[0]]))
            i += 1
            continue
        matched = _phrase_at(tokens, i)
        if matched is not None:
            length, entry = matched
            last = tokens[i + length - 1]
            value = entry.number if entry.role is _Role.NUMBER else None
            raw = "".join(t.raw for t in tokens[i : i + length])
            items.append(_Item(tok.start, last.end, raw, entry, value))
            i += length
            continue
        typo = _typo_of(tok.spellings)
        if typo is not None:
            form, entry = typo
            notes.append(f"read {tok.raw!r} as {form!r}")
            items.append(_Item(tok.start, tok.end, tok.raw, entry))
        else:
            items.append(_Item(tok.start, tok.end, tok.raw, None))
        i += 1
    return items


def _phrase_at(tokens: list[_Token], i: int) -> tuple[int, _Entry] | None:
    best: tuple[int, _Entry] | None = None
    for first in tokens[i].spellings:
        for key, entry in _LEXICON.phrases.get(first, ()):
            n = len(key)
            if best is not None and n <= best[0]:
                break
            window = tokens[i : i + n]
            if len(window) == n and all(
                t.kind == "word" and word in t.spellings
                for t, word in zip(window[1:], key[1:], strict=True)
            ):
                best = (n, entry)
                break
    return best


def _neighbour(items: list[_Item], k: int, step: int) -> _Item | None:
    """The nearest item from k in direction step, looking past glue words."""
    j = k + step
    while 0 <= j < len(items):
        if items[j].role not in _SOFT_ROLES:
            return items[j]
        j += step
    return None


def _next_to(items: list[_Item], k: int, step: int) -> _Item | None:
    j = k + step
    return items[j] if 0 <= j < len(items) else None


@dataclass(slots=True)
class _Count:
    strength: int  # 4 total stated with a people word, 3 subgroup, 2 beside a status, 1 a need
    value: int
    uses: list[_Item]


def _in_digit_group(text: str, items: list[_Item], k: int) -> bool:
    """Whether the number at k is one group of a phone number ("091 12 34 56", "+374 91")."""
    item = items[k]
    before, after = _next_to(items, k, -1), _next_to(items, k, 1)
    joined_left = (
        before is not None
        and before.digits
        and not item.raw.startswith("+")
        and not text[before.end : item.start].strip()
    )
    # "SAFE 4 +374 91 ...": a plus starts a new number, so 4 stays a count.
    joined_right = (
        after is not None
        and after.digits
        and not after.raw.startswith("+")
        and not text[item.end : after.start].strip()
    )
    return joined_left or joined_right


def _count_candidates(text: str, items: list[_Item], notes: list[str]) -> list[_Count]:
    out: list[_Count] = []
    for k, item in enumerate(items):
        if item.role is not _Role.NUMBER or item.value is None:
            continue
        before, after = _next_to(items, k, -1), _next_to(items, k, 1)
        if any(n is not None and n.role is _Role.UNIT for n in (before, after)):
            continue
        if item.digits and _in_digit_group(text, items, k):
            continue
        uses = [item]
        strength = 0
        if after is not None and after.role is _Role.PEOPLE_AFTER:
            strength, uses = 4, [item, after]
        elif after is not None and after.role is _Role.PEOPLE_PART:
            # Ahead of "нас 2": in "нас 2 взрослых и 3 детей" the 2 is one part of the group.
            strength, uses = 3, [item, after]
        elif before is not None and before.role is _Role.PEOPLE_BEFORE:
            strength, uses = 4, [before, item]
        elif item.entry is not None and item.entry.people:
            strength = 4
        elif times := next((n for n in (before, after) if n and n.role is _Role.TIMES), None):
            strength, uses = 4, [item, times]
        else:
            near = [_neighbour(items, k, -1), _neighbour(items, k, 1)]
            roles = {n.role for n in near if n is not None}
            if _Role.STATUS in roles:
                strength = 2
            elif _Role.NEED in roles:
                strength = 1
        if not strength:
            continue
        value = item.value
        if strength < 3 and item.digits and len(item.raw) > _MAX_PLAIN_COUNT_DIGITS:
            notes.append(f"{item.raw} is not read as a people count")
            continue
        out.append(_Count(strength, value, uses))
    return out


def _people(text: str, items: list[_Item], notes: list[str]) -> int | None:
    counts = _count_candidates(text, items, notes)
    if not counts:
        return None
    best = max(c.strength for c in counts)
    chosen = [c for c in counts if c.strength == best]
    if best == 3:
        total = sum(c.value for c in chosen)
        if len(chosen) > 1:
            notes.append("added " + " + ".join(str(c.value) for c in chosen) + " people")
    else:
        chosen = chosen[:1]
        total = chosen[0].value
    for count in chosen:
        for used in count.uses:
            used.consumed = True
    if total > MAX_PEOPLE:
        notes.append(f"{total} people is more than a report holds; recorded as {MAX_PEOPLE}")
        total = MAX_PEOPLE
    return total


def _labels(items: Iterable[_Item]) -> str:
    statuses = {it.status for it in items if it.status is not None}
    return ", ".join(s.label for s in sorted(statuses, key=URGENCY.index))


_CLAUSE_MARKS = frozenset(",.;:!?()\n")


def _clause_break(text: str, a: _Item, b: _Item) -> bool:
    return any(ch in _CLAUSE_MARKS for ch in text[a.end : b.start])


def _had(text: str, items: list[_Item], k: int) -> bool:
    # Only the very next word in the same clause counts: "we have no food" asks for food,
    # and in "need water, have food" the water is still needed.
    for step in (-1, 1):
        n = _next_to(items, k, step)
        if n is not None and n.role is _Role.HAVE:
            a, b = (n, items[k]) if step < 0 else (items[k], n)
            if not _clause_break(text, a, b):
                return True
    return False


def _withdrawn(text: str, items: list[_Item], k: int) -> bool:
    """Whether the status at k is what a cancel beside it withdraws ("CANCEL SOS", "SOS отбой")."""
    item = items[k]
    # Nobody withdraws being safe: "safe now, cancel sos" is a cancel said by someone safe.
    if item.status in (None, Status.CANCEL, Status.SAFE):
        return False
    for step in (-1, 1):
        n = _neighbour(items, k, step)
        if n is not None and n.status is Status.CANCEL:
            a, b = (n, item) if step < 0 else (item, n)
            # Across a clause break ("SOS, cancel trapped") it is unclear what is withdrawn,
            # and a call for help that is read as one is the safer mistake.
            if not _clause_break(text, a, b):
                return True
    return False


def _status(text: str, items: list[_Item], notes: list[str]) -> tuple[Status | None, Need]:
    said = [it for it in items if it.status is not None]
    objects = [it for k, it in enumerate(items) if _withdrawn(text, items, k)]
    competing = [it.status for it in said if it not in objects and it.status is not None]
    had = [it for k, it in enumerate(items) if it.need is not None and _had(text, items, k)]
    needs_items = [it for it in items if it.need is not None and it not in had]
    if had:
        notes.append("has " + ", ".join(it.raw for it in had) + "; not asked for")
    needs = Need(0)
    for it in needs_items:
        needs |= it.need or Need(0)
    if competing:
        status = min(competing, key=URGENCY.index)
    elif needs:
        status = Status.NEED_SUPPLIES
    else:
        return None, Need(0)
    for it in said:
        if it.status is status and it not in objects:
            it.consumed = True
    if status is Status.CANCEL and objects:
        for it in objects:
            it.consumed = True
        notes.append("withdraws " + _labels(objects))
    others = [it for it in said if not it.consumed]
    if others:
        notes.append("also said " + _labels(others) + "; kept in the text")
    if status is Status.CANCEL:
        if needs:
            notes.append("a cancel carries no needs; need words kept in the text")
        return status, Need(0)
    for it in needs_items:
        it.consumed = True
    return status, needs


def _drop_glue(text: str, items: list[_Item]) -> None:
    """Drop glue words that only join keywords: "we need water and food" leaves nothing."""
    k = 0
    while k < len(items):
        if items[k].role not in _SOFT_ROLES:
            k += 1
            continue
        end = k
        while end < len(items) and items[end].role in _SOFT_ROLES:
            end += 1
        # A side is fine if it is a removed keyword, the message's edge, or a clause break
        # ("ԴԵՂ պետք է, շաքարախտ"); glue next to a kept word ("mom is trapped") stays.
        first, last = items[k], items[end - 1]
        left = items[k - 1] if k else None
        right = items[end] if end < len(items) else None
        left_ok = left is None or left.consumed or _clause_break(text, left, first)
        right_ok = right is None or right.consumed or _clause_break(text, last, right)
        touches = (left is not None and left.consumed) or (right is not None and right.consumed)
        if left_ok and right_ok and touches:
            for it in items[k:end]:
                it.consumed = True
        elif left is not None and left.consumed and not _clause_break(text, left, first):
            # Armenian auxiliaries lean on the word before them: in "ՓԱԿՎԱԾ ենք նկուղում"
            # the ենք goes with the keyword, whatever follows.
            for it in items[k:end]:
                if it.role is not _Role.AUX:
                    break
                it.consumed = True
        k = end


_LEADING_JUNK = " ,.;:!?-\u2013\u2014/|"
_TRAILING_JUNK = " ,;:-\u2013\u2014/|"


def _leftover(text: str, items: Iterable[_Item]) -> str:
    pieces: list[str] = []
    pos = 0
    for it in items:
        if it.consumed:
            pieces.append(text[pos : it.start])
            pos = it.end
    pieces.append(text[pos:])
    # Punctuation and emoji orphaned by the removed keywords ("SOS!!!", "(3 people)") say
    # nothing and cost report bytes.
    chunks = [c for c in " ".join(pieces).split() if any(ch.isalnum() for ch in c)]
    return " ".join(chunks).lstrip(_LEADING_JUNK).rstrip(_TRAILING_JUNK)


def _language(tokens: list[_Token], items: list[_Item], status: Status | None) -> Lang:
    letters = {"cyrl": 0, "armn": 0}
    for tok in tokens:
        if tok.kind == "word":
            for ch in tok.raw:
                script = _script(ch)
                if script in letters:
                    letters[script] += 1
    if letters["armn"] or letters["cyrl"]:
        return "hy" if letters["armn"] > letters["cyrl"] else "ru"
    # All Latin: transliterated keywords ("pomogite", "apahov") say which language it is.
    votes: dict[Lang, int] = {}
    for it in items:
        if it.entry is not None and it.entry.lang is not None:
            votes[it.entry.lang] = votes.get(it.entry.lang, 0) + 1
    if not votes:
        return "en"
    top = max(votes.values())
    leaders = [lang for lang, n in votes.items() if n == top]
    if len(leaders) > 1:
        for it in items:
            entry = it.entry
            if entry is not None and entry.status is status and entry.lang in leaders:
                return entry.lang
        return "en" if "en" in leaders else leaders[0]
    return leaders[0]


def parse_message(text: str) -> ParsedMessage:
    """Read one stock-radio text message. Never raises; ``status`` None means "reply with help"."""
    # Control characters (a canned message's bell, stray escapes) are not text a report
    # may carry; spaces keep the words apart.
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    text = unicodedata.normalize("NFC", text)
    notes: list[str] = []
    tokens = _tokens(text)
    items = _items(tokens, notes)
    status, needs = _status(text, items, notes)
    if status is None:
        lang = _language(tokens, items, None)
        plain = " ".join(text.split())
        return ParsedMessage(None, 0, Need(0), plain, lang, notes=(*notes, "no status keyword"))
    people = _people(text, items, notes)
    _drop_glue(text, items)
    return ParsedMessage(
        status=status,
        people=1 if people is None else people,
        needs=needs,
        text=_leftover(text, items),
        lang=_language(tokens, items, status),
        people_stated=people is not None,
        notes=tuple(notes),
    )
