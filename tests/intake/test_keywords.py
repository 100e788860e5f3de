"""Stock-radio keyword parsing: a table of real-looking messages, replies, properties."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalfire.intake import (
    LANGS,
    MAX_PEOPLE,
    MAX_REPLY_BYTES,
    Lang,
    Reply,
    keywords,
    parse_message,
    reply_text,
)
from signalfire.intake.keywords import _one_edit_apart
from signalfire.wire.vocab import Need, Priority, Status, priority_of

SOS, SAFE, MED, TRAPPED = Status.SOS, Status.SAFE, Status.MEDICAL, Status.TRAPPED
EVAC, SUPPLIES, MISSING, CANCEL = (
    Status.EVACUATE,
    Status.NEED_SUPPLIES,
    Status.MISSING_PERSON,
    Status.CANCEL,
)
WATER, FOOD, SHELTER, MEDICINE, POWER, TRANSPORT = (
    Need.WATER,
    Need.FOOD,
    Need.SHELTER,
    Need.MEDICINE,
    Need.POWER,
    Need.TRANSPORT,
)
NONE = Need(0)
LONG_STORY = (
    "we are on the third floor of the blue building behind the school, the stairs are "
    "gone, grandmother cannot walk and the baby has a fever since last night"
)

# message, status, people, needs, leftover text, reply language
CASES: list[tuple[str, Status | None, int, Need, str, Lang]] = [
    # --- English, canned and typed
    ("SOS", SOS, 1, NONE, "", "en"),
    ("SAFE", SAFE, 1, NONE, "", "en"),
    ("MEDICAL", MED, 1, NONE, "", "en"),
    ("TRAPPED", TRAPPED, 1, NONE, "", "en"),
    ("EVACUATE", EVAC, 1, NONE, "", "en"),
    ("WATER", SUPPLIES, 1, WATER, "", "en"),
    ("FOOD", SUPPLIES, 1, FOOD, "", "en"),
    ("CANCEL", CANCEL, 1, NONE, "", "en"),
    ("SOS 3", SOS, 3, NONE, "", "en"),
    ("3 SOS", SOS, 3, NONE, "", "en"),
    ("SOS x3", SOS, 3, NONE, "", "en"),
    ("sos3", SOS, 3, NONE, "", "en"),
    ("SAFE 4", SAFE, 4, NONE, "", "en"),
    ("MED 2 broken leg", MED, 2, NONE, "broken leg", "en"),
    ("WATER 3", SUPPLIES, 3, WATER, "", "en"),
    ("water x2", SUPPLIES, 2, WATER, "", "en"),
    ("sos 3 people", SOS, 3, NONE, "", "en"),
    ("Help! We are trapped, 4 people, water needed", SOS, 4, WATER, "We are trapped", "en"),
    ("need food and water for 6 people", SUPPLIES, 6, FOOD | WATER, "", "en"),
    ("all good here, 3 of us", SAFE, 3, NONE, "", "en"),
    ("We're OK. 5 people. No power", SAFE, 5, POWER, "", "en"),
    ("ok", SAFE, 1, NONE, "", "en"),
    ("Lost connection, all ok", SAFE, 1, NONE, "Lost connection", "en"),
    ("I am fine, house destroyed, 3 people", SAFE, 3, NONE, "house destroyed", "en"),
    ("Mayday mayday 2 injured", SOS, 2, NONE, "injured", "en"),
    ("Medical emergency! 1 person unconscious", MED, 1, NONE, "unconscious", "en"),
    ("doctor needed, pregnant woman", MED, 1, NONE, "pregnant woman", "en"),
    ("stuck in elevator 2 people", TRAPPED, 2, NONE, "in elevator", "en"),
    ("evac needed asap 4 ppl", EVAC, 4, NONE, "needed asap", "en"),
    ("we have no food no water 7 people", SUPPLIES, 7, FOOD | WATER, "", "en"),
    ("TRANSPORT needed 3 elderly", SUPPLIES, 3, TRANSPORT, "", "en"),
    ("SHELTER 12", SUPPLIES, 12, SHELTER, "", "en"),
    ("Need insulin and charger, 2 people, floor 3", SUPPLIES, 2, MEDICINE | POWER, "floor 3", "en"),
    ("missing person: my son Arman, 8 years", MISSING, 1, NONE, "my son Arman, 8 years", "en"),
    ("SOS SAFE", SOS, 1, NONE, "SAFE", "en"),
    ("SOS TRAPPED 3 under the stairs", SOS, 3, NONE, "TRAPPED under the stairs", "en"),
    ("sos sos sos", SOS, 1, NONE, "", "en"),
    ("not safe", SOS, 1, NONE, "", "en"),
    ("CANCEL SOS", CANCEL, 1, NONE, "", "en"),
    ("safe now, cancel sos", CANCEL, 1, NONE, "safe now", "en"),
    ("false alarm sorry", CANCEL, 1, NONE, "sorry", "en"),
    ("SOS, cancel", SOS, 1, NONE, "cancel", "en"),  # unclear, so the call for help stands
    ("cancel water", CANCEL, 1, NONE, "water", "en"),
    ("HELP 2 kids 1 adult building 5 apt 12", SOS, 3, NONE, "building 5 apt 12", "en"),
    ("SOS 2 adults 3 kids", SOS, 5, NONE, "", "en"),
    ("3-4 people SOS", SOS, 4, NONE, "", "en"),
    ("SOS 3 people 2 injured", SOS, 3, NONE, "2 injured", "en"),
    ("SOS!!! 🆘🆘 fire on 2nd floor", SOS, 1, NONE, "on 2nd floor", "en"),
    ("SAFE 4 +374 91 123456", SAFE, 4, NONE, "+374 91 123456", "en"),
    ("S O S", SOS, 1, NONE, "", "en"),
    ("need water, have food, 3 people", SUPPLIES, 3, WATER, "have food", "en"),
    ("SOS 5 people; 2 families", SOS, 5, NONE, "2 families", "en"),
    ("EVAC 2 ppl + dog", EVAC, 2, NONE, "dog", "en"),
    ("SOS 12:30 bridge", SOS, 1, NONE, "12:30 bridge", "en"),
    # --- English typos (one edit on keywords of four letters or more)
    ("SAEF 2", SAFE, 2, NONE, "", "en"),
    ("TRAPED in basement 2 ppl", TRAPPED, 2, NONE, "in basement", "en"),
    ("EVACUTE 5", EVAC, 5, NONE, "", "en"),
    ("HEPL", SOS, 1, NONE, "", "en"),
    ("HEEELP!!!", SOS, 1, NONE, "", "en"),
    ("wter 2", SUPPLIES, 2, WATER, "", "en"),
    ("medicla 1", MED, 1, NONE, "", "en"),
    ("cancle", CANCEL, 1, NONE, "", "en"),
    ("shleter for 3", SUPPLIES, 3, SHELTER, "", "en"),
    # --- emoji
    ("💧💊 2", SUPPLIES, 2, WATER | MEDICINE, "", "en"),
    ("🙏 please help 😭😭", SOS, 1, NONE, "", "en"),
    ("🆘 x3", SOS, 3, NONE, "", "en"),
    # --- Russian
    ("ПОМОГИТЕ", SOS, 1, NONE, "", "ru"),
    ("помогите, нас 5 человек", SOS, 5, NONE, "", "ru"),
    ("SOS 3 чел", SOS, 3, NONE, "", "ru"),
    ("сос 2", SOS, 2, NONE, "", "ru"),
    ("ОПАСНОСТЬ! пожар, 3 этаж", SOS, 1, NONE, "3 этаж", "ru"),
    ("не в безопасности, 2 чел", SOS, 2, NONE, "", "ru"),
    ("В БЕЗОПАСНОСТИ 4", SAFE, 4, NONE, "", "ru"),
    ("Живы, 3 человека", SAFE, 3, NONE, "", "ru"),
    ("все живы все хорошо", SAFE, 1, NONE, "", "ru"),
    ("нужен врач, 2 раненых", MED, 2, NONE, "", "ru"),
    ("МЕД 1 сердце", MED, 1, NONE, "сердце", "ru"),
    ("завал, под обломками 2 человека", TRAPPED, 2, NONE, "", "ru"),
    ("ЗАЖАТ 1", TRAPPED, 1, NONE, "", "ru"),
    ("нас завалило, трое", TRAPPED, 3, NONE, "", "ru"),
    ("ЭВАКУАЦИЯ 12 чел, есть дети", EVAC, 12, NONE, "есть дети", "ru"),
    ("вода 3", SUPPLIES, 3, WATER, "", "ru"),
    ("нет воды и еды, 4 чел", SUPPLIES, 4, WATER | FOOD, "", "ru"),
    ("Нужна еда", SUPPLIES, 1, FOOD, "", "ru"),
    ("нужно укрытие, дом разрушен", SUPPLIES, 1, SHELTER, "дом разрушен", "ru"),
    ("ЛЕКАРСТВА инсулин", SUPPLIES, 1, MEDICINE, "", "ru"),
    ("нет света 3 дня", SUPPLIES, 1, POWER, "3 дня", "ru"),
    ("ТРАНСПОРТ нужен 6 человек", SUPPLIES, 6, TRANSPORT, "", "ru"),
    ("ПРОПАЛ сын 10 лет", MISSING, 1, NONE, "сын 10 лет", "ru"),
    ("Ищем маму, пропала вчера", MISSING, 1, NONE, "маму, вчера", "ru"),
    ("ОТМЕНА", CANCEL, 1, NONE, "", "ru"),
    ("SOS отбой", CANCEL, 1, NONE, "", "ru"),
    ("отбой, все в порядке", CANCEL, 1, NONE, "все в порядке", "ru"),
    ("3 этаж, SOS, газ", SOS, 1, NONE, "3 этаж, газ", "ru"),
    ("SOS, нас трое", SOS, 3, NONE, "", "ru"),
    ("спасите нас 2 взрослых и 3 детей", SOS, 5, NONE, "", "ru"),
    ("у нас есть вода, нет еды", SUPPLIES, 1, FOOD, "у нас есть вода", "ru"),
    ("трое суток без воды", SUPPLIES, 1, WATER, "трое суток без", "ru"),
    ("гуманитарная помощь нужна 10 семей", SUPPLIES, 1, NONE, "нужна 10 семей", "ru"),
    # --- Russian: mixed scripts, typos, transliteration
    ("вoда 2", SUPPLIES, 2, WATER, "", "ru"),  # Latin o
    ("ПOМOГИТЕ", SOS, 1, NONE, "", "ru"),  # Latin O twice
    ("BOДA 4", SUPPLIES, 4, WATER, "", "ru"),  # Latin B, O, A
    ("помогитееее", SOS, 1, NONE, "", "ru"),
    ("эвакуацыя 5", EVAC, 5, NONE, "", "ru"),
    ("лекарсва нужны", SUPPLIES, 1, MEDICINE, "", "ru"),
    ("мы в безопастности", SAFE, 1, NONE, "", "ru"),
    ("pomogite 3", SOS, 3, NONE, "", "ru"),
    ("pomogite 5 chel", SOS, 5, NONE, "", "ru"),
    ("voda 5 chelovek", SUPPLIES, 5, WATER, "", "ru"),
    ("zhivy vse", SAFE, 1, NONE, "", "ru"),
    ("vrach srochno", MED, 1, NONE, "", "ru"),
    ("otmena", CANCEL, 1, NONE, "", "ru"),
    # --- Armenian
    ("ՕԳՆՈՒԹՅՈՒՆ", SOS, 1, NONE, "", "hy"),
    ("Օգնեցե՛ք, 4 հոգի ենք", SOS, 4, NONE, "", "hy"),
    ("3 հոգի ենք, SOS", SOS, 3, NONE, "", "hy"),
    ("SOS 2 հոգի", SOS, 2, NONE, "", "hy"),
    ("ԱՊԱՀՈՎ 3", SAFE, 3, NONE, "", "hy"),
    ("ողջ ենք, 5 հոգի", SAFE, 5, NONE, "", "hy"),
    ("ԲԺԻՇԿ 2 վիրավոր", MED, 2, NONE, "", "hy"),
    ("շտապ օգնություն, 1 հոգի, սիրտ", MED, 1, NONE, "սիրտ", "hy"),
    ("ՓԱԿՎԱԾ ենք նկուղում 3 հոգի", TRAPPED, 3, NONE, "նկուղում", "hy"),
    ("փլատակների տակ ենք, 2 երեխա", TRAPPED, 2, NONE, "", "hy"),
    ("ՏԱՐՀԱՆՈՒՄ 10 հոգի", EVAC, 10, NONE, "", "hy"),
    ("ՋՈՒՐ 3", SUPPLIES, 3, WATER, "", "hy"),
    ("ջուր չկա, սնունդ չկա, 6 հոգի", SUPPLIES, 6, WATER | FOOD, "", "hy"),
    ("ԿԱՑԱՐԱՆ", SUPPLIES, 1, SHELTER, "", "hy"),
    ("ԴԵՂ պետք է, շաքարախտ", SUPPLIES, 1, MEDICINE, "շաքարախտ", "hy"),
    ("ՀՈՍԱՆՔ չկա", SUPPLIES, 1, POWER, "", "hy"),
    ("ՏՐԱՆՍՊՈՐՏ 4 հոգու համար", SUPPLIES, 4, TRANSPORT, "", "hy"),
    ("ԱՆՀԵՏ կորած տղա 12 տարեկան", MISSING, 1, NONE, "տղա 12 տարեկան", "hy"),
    ("ՉԵՂԱՐԿԵԼ", CANCEL, 1, NONE, "", "hy"),
    ("ՍՕՍ 2", SOS, 2, NONE, "", "hy"),  # SOS typed on an Armenian keyboard
    ("Կորել է երեխաս, 7 տարեկան", MISSING, 1, NONE, "երեխաս, 7 տարեկան", "hy"),
    ("ջուր կա, հաց չկա", SUPPLIES, 1, FOOD, "ջուր կա", "hy"),
    ("Օգնեք, հրդեհ է, 2 հոգի", SOS, 2, NONE, "", "hy"),
    ("ԱՊԱՀՈՎ ենք, ջուր պետք է", SAFE, 1, WATER, "", "hy"),
    ("լավ ենք, 4 հոգի", SAFE, 4, NONE, "", "hy"),
    ("ՏՐԱՆՍՊՈՐՏ", SUPPLIES, 1, TRANSPORT, "", "hy"),
    ("դեղեր չկան, 3 հոգի", SUPPLIES, 3, MEDICINE, "", "hy"),
    ("հոսանք չկա 2 օր", SUPPLIES, 1, POWER, "չկա 2 օր", "hy"),
    ("Մեքենա է պետք 3 հոգու համար", SUPPLIES, 3, TRANSPORT, "", "hy"),
    ("Օգնեցե՛ք, փլատակների տակ ենք", SOS, 1, NONE, "փլատակների տակ ենք", "hy"),
    # --- Armenian: mixed scripts, typos, transliteration
    ("OԳՆՈՒԹՅՈՒՆ 2", SOS, 2, NONE, "", "hy"),  # Latin O
    ("ապահվ ենք", SAFE, 1, NONE, "", "hy"),
    ("բժիշ 1", MED, 1, NONE, "", "hy"),
    ("ognutyun 3 hogi", SOS, 3, NONE, "", "hy"),
    ("apahov enq 4", SAFE, 4, NONE, "", "hy"),
    ("jur chka 5 hogi", SUPPLIES, 5, WATER, "", "hy"),
    ("bjishk shtap", MED, 1, NONE, "", "hy"),
    ("voxj enq bolory", SAFE, 1, NONE, "bolory", "hy"),
    ("tarhanum 7", EVAC, 7, NONE, "", "hy"),
    ("vtang 2 hogi", SOS, 2, NONE, "", "hy"),
    ("tarhaneq mez 5 hogi enq", EVAC, 5, NONE, "", "hy"),
    # --- numbers
    ("SOS 999", SOS, 255, NONE, "", "en"),
    ("SAFE 300 people", SAFE, 255, NONE, "", "en"),
    ("SOS 1000", SOS, 1, NONE, "1000", "en"),
    ("SOS 3 этаж", SOS, 1, NONE, "3 этаж", "ru"),
    ("SOS " + LONG_STORY, SOS, 1, NONE, LONG_STORY, "en"),
    # --- not a status: the caller replies with help
    ("hello", None, 0, NONE, "hello", "en"),
    ("test", None, 0, NONE, "test", "en"),
    ("test 1 2 3", None, 0, NONE, "test 1 2 3", "en"),
    ("?", None, 0, NONE, "?", "en"),
    ("", None, 0, NONE, "", "en"),
    ("flood here, 3 people", None, 0, NONE, "flood here, 3 people", "en"),
    ("asdfgh", None, 0, NONE, "asdfgh", "en"),
    ("12345", None, 0, NONE, "12345", "en"),
    ("😀😀", None, 0, NONE, "😀😀", "en"),
    ("привет", None, 0, NONE, "привет", "ru"),
    ("բարև", None, 0, NONE, "բարև", "hy"),
    ("вода есть", None, 0, NONE, "вода есть", "ru"),
]


@pytest.mark.parametrize(
    ("message", "status", "people", "needs", "text", "lang"),
    CASES,
    ids=[f"{i:03d}" for i in range(len(CASES))],
)
def test_message_table(
    message: str, status: Status | None, people: int, needs: Need, text: str, lang: Lang
) -> None:
    parsed = parse_message(message)
    got = (parsed.status, parsed.people, parsed.needs, parsed.text, parsed.lang)
    assert got == (status, people, needs, text, lang), parsed.notes


def test_table_is_big_and_covers_every_language_and_status() -> None:
    assert len(CASES) >= 80
    assert {case[5] for case in CASES} == set(LANGS)
    assert {case[1] for case in CASES} == {*Status, None}
    for need in Need:
        assert any(case[3] & need for case in CASES), need


@pytest.mark.parametrize("canned", ["SAFE", "SOS", "MEDICAL", "TRAPPED", "EVACUATE", "CANCEL"])
def test_canned_status_messages(canned: str) -> None:
    # A button-only device sends exactly these strings, sometimes with the bell character.
    for message in (canned, canned.lower(), f"\a{canned}", f"{canned}\n"):
        parsed = parse_message(message)
        assert parsed.status is Status.from_label(canned.replace("MEDICAL", "medical"))
        assert (parsed.people, parsed.text, parsed.people_stated) == (1, "", False)


@pytest.mark.parametrize(("canned", "need"), [("WATER", Need.WATER), ("FOOD", Need.FOOD)])
def test_canned_need_messages(canned: str, need: Need) -> None:
    parsed = parse_message(canned)
    assert (parsed.status, parsed.needs) == (Status.NEED_SUPPLIES, need)


@pytest.mark.parametrize("lang", LANGS)
def test_every_status_and_need_has_keywords_in_every_language(lang: Lang) -> None:
    for meaning in [*Status, *Need]:
        words = keywords(meaning, lang)
        assert words, (meaning, lang)
        for word in words:
            parsed = parse_message(word)
            if isinstance(meaning, Status):
                assert parsed.status is meaning, (word, parsed)
            else:
                assert parsed.needs == meaning, (word, parsed)
                assert parsed.status is Status.NEED_SUPPLIES


@pytest.mark.parametrize("lang", LANGS)
def test_native_script_keywords_exist_for_russian_and_armenian(lang: Lang) -> None:
    script = {"ru": "CYRILLIC", "hy": "ARMENIAN", "en": "LATIN"}[lang]
    for meaning in [*Status, *Need]:
        words = keywords(meaning, lang)
        assert any(unicodedata.name(w[0]).startswith(script) for w in words), (meaning, lang)


def test_urgency_puts_life_safety_first() -> None:
    parsed = parse_message("safe evacuate missing need supplies medical trapped sos")
    assert parsed.status is Status.SOS
    assert priority_of(Status.TRAPPED) is Priority.LIFE_SAFETY
    assert parse_message("SAFE, EVACUATE").status is Status.EVACUATE
    assert parse_message("water, MISSING 2").status is Status.MISSING_PERSON


def test_notes_explain_surprises() -> None:
    assert "read 'SAEF' as 'safe'" in parse_message("SAEF").notes
    assert any("recorded as 255" in n for n in parse_message("SOS 999").notes)
    assert any("not read as a people count" in n for n in parse_message("SOS 2024").notes)
    assert any("also said trapped" in n for n in parse_message("SOS TRAPPED").notes)
    assert any("withdraws sos" in n for n in parse_message("CANCEL SOS").notes)
    parsed = parse_message("SOS 2 adults 3 kids")
    assert parsed.people_stated and any("added 2 + 3" in n for n in parsed.notes)


@pytest.mark.parametrize(
    "word",
    ["hell", "held", "same", "save", "flood", "test", "text", "cancer", "thirty", "fool"],
)
def test_real_words_next_to_keywords_are_not_typos(word: str) -> None:
    assert parse_message(word).status is None


def test_a_typo_near_two_keywords_is_not_guessed() -> None:
    # "hlep" is one edit from both "help" and "hleb" (bread, transliterated Russian).
    assert parse_message("hlep").status is None


def test_one_edit_apart() -> None:
    assert _one_edit_apart("saef", "safe")  # swap
    assert _one_edit_apart("traped", "trapped")  # drop
    assert _one_edit_apart("wateer", "water")  # insert
    assert _one_edit_apart("wather", "water")
    assert _one_edit_apart("food", "fooa")  # replace
    assert not _one_edit_apart("food", "food")
    assert not _one_edit_apart("safe", "fase")
    assert not _one_edit_apart("help", "hello")


def test_the_examples_in_the_docs_are_true() -> None:
    doc = Path(__file__).parents[2] / "docs" / "stock-radio.md"
    section = doc.read_text(encoding="utf-8").split("## Examples", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) >= 20
    for row in rows:
        message, status, people, needs, text, lang = (c.strip() for c in row.strip("|").split("|"))
        parsed = parse_message(message.split("`")[1])
        want_needs = Need(0)
        for name in needs.split(", ") if needs != "—" else []:
            want_needs |= Need[name.upper()]
        assert (parsed.status.label if parsed.status is not None else "—") == status, row
        assert (str(parsed.people), parsed.needs, parsed.text or "—", parsed.lang) == (
            people,
            want_needs,
            text,
            lang,
        ), row


# --- replies

REFS = ["K7Q2", "ZZZZZZ", "0"]


def _all_replies() -> list[tuple[Lang, str]]:
    out: list[tuple[Lang, str]] = []
    for lang in LANGS:
        out.append((lang, reply_text(Reply.HELP, lang)))
        for ref in REFS:
            out.append((lang, reply_text(Reply.CANCELLED, lang, ref)))
            for status in Status:
                for people in (None, 0, 1, 3, 99, MAX_PEOPLE):
                    out.append(
                        (
                            lang,
                            reply_text(
                                Reply.RECEIVED,
                                lang,
                                ref,
                                status=status,
                                people=people,
                            ),
                        )
                    )
    return out


def test_every_reply_fits_one_text_message() -> None:
    replies = _all_replies()
    assert len(replies) > 400
    for lang, text in replies:
        assert len(text.encode("utf-8")) <= MAX_REPLY_BYTES, (lang, len(text.encode()), text)
        assert "\n" not in text and text == text.strip()


def test_received_reply_wording() -> None:
    assert reply_text("received", "en", "K7Q2", status=Status.SOS, people=3) == (
        "Received: SOS, 3 people. Ref K7Q2. Passed to coordinators when a link is up. "
        "If safe, stay where you are."
    )
    assert reply_text("received", "en", "K7Q2", status=Status.SAFE, people=1) == (
        "Received: SAFE, 1 person. Ref K7Q2. Passed to coordinators when a link is up."
    )
    assert reply_text("received", "ru", "K7Q2", status=Status.SOS, people=3) == (
        "Принято: SOS, 3 чел. Код K7Q2. Передадим в штаб, когда будет связь. "
        "Если безопасно, ждите на месте."
    )
    assert reply_text("received", "hy", "K7Q2", status=Status.SOS) == (
        "Ստացանք՝ SOS։ Կոդ՝ K7Q2։ Կփոխանցենք շտաբին, երբ կապ լինի։ Եթե անվտանգ է, մնացեք տեղում։"
    )


def test_received_for_a_cancel_is_worded_as_cancelled() -> None:
    for lang in LANGS:
        assert reply_text("received", lang, "AB12", status=Status.CANCEL) == reply_text(
            "cancelled",
            lang,
            "AB12",
        )


@pytest.mark.parametrize("lang", LANGS)
def test_replies_are_in_the_senders_language(lang: Lang) -> None:
    script = {"ru": "CYRILLIC", "hy": "ARMENIAN", "en": "LATIN"}[lang]
    for kind in Reply:
        text = reply_text(kind, lang, "AB12", status=Status.MEDICAL, people=2)
        letters = [unicodedata.name(c) for c in text if c.isalpha() and c not in "SOABRef"]
        assert letters and all(name.startswith(script) for name in letters), (kind, text)


@pytest.mark.parametrize("lang", LANGS)
def test_every_keyword_in_the_help_reply_parses(lang: Lang) -> None:
    help_text = reply_text(Reply.HELP, lang)
    words = re.findall(r"\b[^\W\d_]{3,}\b", re.split("[:՝]", help_text)[-1])
    assert len(words) == 12
    seen_status, seen_needs = set(), Need(0)
    for word in words:
        parsed = parse_message(word)
        assert parsed.status is not None, word
        seen_status.add(parsed.status)
        seen_needs |= parsed.needs
    assert parse_message(help_text.split()[1]).status is Status.SOS or "SOS 3" in help_text
    assert seen_status | {Status.SOS} == set(Status)
    assert seen_needs == Need.WATER | Need.FOOD | Need.SHELTER | Need.MEDICINE | Need.POWER | (
        Need.TRANSPORT
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "received", "reference": "K7Q2"}, "needs the status"),
        ({"kind": "received", "reference": "k7q2", "status": Status.SOS}, "reference"),
        ({"kind": "received", "reference": "TOOLONG1", "status": Status.SOS}, "reference"),
        ({"kind": "cancelled", "reference": ""}, "reference"),
        ({"kind": "received", "reference": "A", "status": Status.SOS, "people": 256}, "people"),
        ({"kind": "thanks", "reference": "A"}, "thanks"),
    ],
)
def test_reply_refuses_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        reply_text(lang="en", **kwargs)


def test_reply_refuses_unknown_language() -> None:
    with pytest.raises(ValueError, match="language"):
        reply_text(Reply.HELP, "de")  # type: ignore[arg-type]


# --- properties


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_parse_never_raises_and_stays_in_range(text: str) -> None:
    parsed = parse_message(text)
    assert 0 <= parsed.people <= MAX_PEOPLE
    assert parsed.lang in LANGS
    assert not any(unicodedata.category(c) == "Cc" for c in parsed.text)
    if parsed.status in (None, Status.CANCEL):
        assert parsed.needs == Need(0)  # help has no needs; a cancel only withdraws
    else:
        assert parsed.text == parsed.text.strip()


KEYWORDISH = st.sampled_from(
    ["SOS", "help", "вода", "ջուր", "3", "x", "people", "чел", "հոգի", "cancel", "safe", "!", " "]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(KEYWORDISH | st.text(max_size=5), max_size=30).map(" ".join))
def test_keyword_soup_never_raises(text: str) -> None:
    parsed = parse_message(text)
    assert 0 <= parsed.people <= MAX_PEOPLE
    assert len(parsed.text) <= len(text)
