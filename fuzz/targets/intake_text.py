"""Stock-radio text: ``parse_message`` on anything a Meshtastic app can send, then the report.

Any text reaches the gateway from any radio on the channel. ``parse_message`` is
documented never to raise. The report the gateway makes of it must always seal
(``stock._fit`` cleans and cuts the text to fit) and the receipt must fit one message.
"""

from __future__ import annotations

from signalfire import wire
from signalfire.intake import MAX_PEOPLE, MAX_REPLY_BYTES, Reply, parse_message, reply_text
from signalfire.intake.stock import _fit

from ..common import NOW, Finding

ALLOWED: tuple[type[BaseException], ...] = ()  # nothing: it never raises


def test_one_input(data: bytes) -> None:
    # Meshtastic text is a protobuf string: valid UTF-8 by the time Python sees it.
    text = data.decode("utf-8", "replace")
    parsed = parse_message(text)
    if not 0 <= parsed.people <= MAX_PEOPLE:
        raise Finding(f"people {parsed.people} out of range")
    if parsed.status is None:
        reply = reply_text(Reply.HELP, parsed.lang, "")
    else:
        report = _fit(
            wire.Report(
                parsed.status, NOW, parsed.people, parsed.needs,
                wire.Location.from_degrees(40.18, 44.51, accuracy_m=30), parsed.text or None,
                wire.Attestation(0xFFFFFFFF, 0xFFFFFFFF, NOW, True, True, 7, 65_535),
            )
        )  # fmt: skip
        wire.check_fits(report)  # raises TooLarge (a finding: _fit must prevent it)
        wire.encode_body(report)
        people = parsed.people if parsed.people_stated else None
        reply = reply_text(
            Reply.RECEIVED, parsed.lang, "ABCDE", status=parsed.status, people=people
        )
    if len(reply.encode()) > MAX_REPLY_BYTES:
        raise Finding(f"reply of {len(reply.encode())} bytes")


def seeds() -> list[bytes]:
    texts = [
        "SOS 3 people trapped, no water",
        "sos",
        "help",
        "Օգնություն, 4 հոգի, ջուր չկա",
        "помогите, нас 5 человек, нужна вода и лекарства",
        "safe 2",
        "cancel",
        "trapped 3-4 people near school 12:30 +37491234567",
        "MEDICAL!! mother sick, need medicine 🙏",
        "evacuate 1200 people",
        "missing person: Ani, 7 years old",
        "\x07sos\r\n" + "x" * 300,
    ]
    return [t.encode() for t in texts]
