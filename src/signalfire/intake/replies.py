"""The short direct-message replies a gateway sends back, in the sender's language."""

from __future__ import annotations

import enum
import re

from signalfire.wire.vocab import Status

from .lang import LANGS, MAX_PEOPLE, MAX_REFERENCE_LEN, Lang


class Reply(enum.StrEnum):
    RECEIVED = "received"
    HELP = "help"
    CANCELLED = "cancelled"


# --------------------------------------------------------------------------------------
# Replies. Each must fit one Meshtastic text message (MAX_REPLY_BYTES of UTF-8), and
# Armenian and Cyrillic letters take two bytes each, so the wording is tight on purpose.

_STATUS_LABELS: dict[Lang, dict[Status, str]] = {
    "en": {
        Status.SAFE: "SAFE",
        Status.SOS: "SOS",
        Status.MEDICAL: "MEDICAL",
        Status.TRAPPED: "TRAPPED",
        Status.EVACUATE: "EVACUATE",
        Status.NEED_SUPPLIES: "SUPPLIES",
        Status.MISSING_PERSON: "MISSING",
        Status.CANCEL: "CANCEL",
    },
    "ru": {
        Status.SAFE: "в безопасности",
        Status.SOS: "SOS",
        Status.MEDICAL: "нужен врач",
        Status.TRAPPED: "заблокированы",
        Status.EVACUATE: "эвакуация",
        Status.NEED_SUPPLIES: "нужны припасы",
        Status.MISSING_PERSON: "пропавшие",
        Status.CANCEL: "отмена",
    },
    "hy": {
        Status.SAFE: "ապահով",
        Status.SOS: "SOS",
        Status.MEDICAL: "բժիշկ",
        Status.TRAPPED: "փակված",
        Status.EVACUATE: "տարհանում",
        Status.NEED_SUPPLIES: "պաշարներ",
        Status.MISSING_PERSON: "անհետ կորած",
        Status.CANCEL: "չեղարկում",
    },
}

# Someone in danger should not walk off to find better signal or meet a rescuer who
# may take hours; the advice goes only with the urgent statuses.
_STAY_PUT = frozenset({Status.SOS, Status.MEDICAL, Status.TRAPPED, Status.EVACUATE})

_RECEIVED: dict[Lang, tuple[str, str]] = {
    "en": (
        "Received: {label}{count}. Ref {ref}. Passed to coordinators when a link is up.",
        " If safe, stay where you are.",
    ),
    "ru": (
        "Принято: {label}{count}. Код {ref}. Передадим в штаб, когда будет связь.",
        " Если безопасно, ждите на месте.",
    ),
    "hy": (
        "Ստացանք՝ {label}{count}։ Կոդ՝ {ref}։ Կփոխանցենք շտաբին, երբ կապ լինի։",
        " Եթե անվտանգ է, մնացեք տեղում։",
    ),
}

_CANCELLED: dict[Lang, str] = {
    "en": "Cancel received. Ref {ref}. Coordinators will see it when a link is up. "
    "Need help? Send SOS again.",
    "ru": "Отмена принята. Код {ref}. Штаб узнает, когда будет связь. "
    "Нужна помощь — снова отправьте SOS.",
    "hy": "Չեղարկումն ընդունվեց։ Կոդ՝ {ref}։ Շտաբը կիմանա, երբ կապ լինի։ "
    "Օգնություն պետք լինի՝ նորից ուղարկեք SOS։",
}

# Every word listed here parses as the keyword it stands for (the tests check it).
_HELP: dict[Lang, str] = {
    "en": "Example: SOS 3 (3 of you). Also: SAFE MED TRAPPED EVAC MISSING CANCEL "
    "WATER FOOD SHELTER MEDICINE POWER TRANSPORT",
    "ru": "Пример: SOS 3 (вас трое). Ещё: ЖИВЫ ВРАЧ ЗАВАЛ ЭВАКУАЦИЯ ПРОПАЛ ОТМЕНА "
    "ВОДА ЕДА УКРЫТИЕ ЛЕКАРСТВА СВЕТ МАШИНА",
    "hy": "Օր.՝ SOS 3 (3 հոգի եք)։ Նաև՝ ԱՊԱՀՈՎ ԲԺԻՇԿ ՓԱԿՎԱԾ ՏԱՐՀԱՆՈՒՄ ԱՆՀԵՏ ՉԵՂԱՐԿԵԼ "
    "ՋՈՒՐ ՍՆՈՒՆԴ ԴԵՂ ՀՈՍԱՆՔ ԿԱՑԱՐԱՆ ՄԵՔԵՆԱ",
}

_REFERENCE_RE = re.compile(rf"[A-Z0-9]{{1,{MAX_REFERENCE_LEN}}}")


def _people_phrase(lang: Lang, people: int | None) -> str:
    if not people:  # not stated, or 0 (unknown on the wire): say nothing rather than guess
        return ""
    if lang == "ru":
        return f", {people} чел"  # the abbreviation's dot is the sentence's full stop
    if lang == "hy":
        return f", {people} հոգի"  # Armenian keeps the noun singular after a numeral
    return f", {people} person" if people == 1 else f", {people} people"


def reply_text(
    kind: Reply | str,
    lang: Lang,
    reference: str = "",
    *,
    status: Status | None = None,
    people: int | None = None,
) -> str:
    """The direct-message reply to a stock-radio sender, in their language.

    ``reference`` is the short code the gateway gives the report (1-6 of A-Z, 0-9), so the
    civilian can quote it; RECEIVED also needs the ``status`` and, if stated, ``people``.
    A RECEIVED for a cancel is worded as CANCELLED.
    """
    kind = Reply(kind)
    if lang not in _HELP:
        raise ValueError(f"no replies in language {lang!r}; have {', '.join(LANGS)}")
    if kind is Reply.HELP:
        return _HELP[lang]
    if not _REFERENCE_RE.fullmatch(reference):
        raise ValueError(
            f"reference must be 1-{MAX_REFERENCE_LEN} characters A-Z or 0-9, got {reference!r}"
        )
    if kind is Reply.RECEIVED and status is not Status.CANCEL:
        if status is None:
            raise ValueError("a received reply needs the status it confirms")
        if people is not None and not 0 <= people <= MAX_PEOPLE:
            raise ValueError(f"people must be 0-{MAX_PEOPLE}, got {people}")
        template, stay_put = _RECEIVED[lang]
        text = template.format(
            label=_STATUS_LABELS[lang][status], count=_people_phrase(lang, people), ref=reference
        )
        return text + stay_put if status in _STAY_PUT else text
    return _CANCELLED[lang].format(ref=reference)
