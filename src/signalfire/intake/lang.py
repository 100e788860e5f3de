"""Languages intake speaks and the limits every part of it keeps."""

from __future__ import annotations

from typing import Literal

Lang = Literal["en", "hy", "ru"]
LANGS: tuple[Lang, ...] = ("en", "hy", "ru")

MAX_PEOPLE = 255  # the body's people field is one byte
MAX_REPLY_BYTES = 200  # one Meshtastic text message, as the apps enforce it
MAX_REFERENCE_LEN = 6  # keeps every reply inside MAX_REPLY_BYTES, in every language
