"""The one typeface the cards and QR captions use: DejaVu Sans, which has Latin, Cyrillic
and Armenian letters in one font (Debian's fonts-dejavu-core; scripts/setup installs it).

One font for all three languages keeps the pages alike and lets a card mix scripts (the
status words stay in Latin letters on the Armenian card, because the radio's canned
messages are in Latin letters).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import SignalfireError

REGULAR = "DejaVuSans.ttf"
BOLD = "DejaVuSans-Bold.ttf"
_SEARCH = (
    "/usr/share/fonts/truetype/dejavu",  # Debian, Ubuntu: fonts-dejavu-core
    "/usr/share/fonts/dejavu",  # Fedora, Arch
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
    "/opt/homebrew/share/fonts",
    str(Path.home() / ".local/share/fonts"),
)


@cache
def font_path(name: str = REGULAR) -> Path:
    """Where the TrueType file is; SIGNALFIRE_FONT_DIR overrides the search."""
    override = os.environ.get("SIGNALFIRE_FONT_DIR")
    for directory in ([override] if override else []) + list(_SEARCH):
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    raise SignalfireError(
        f"font {name} not found (it draws the Armenian and Cyrillic letters); install it with "
        "`apt-get install fonts-dejavu-core`, or set SIGNALFIRE_FONT_DIR to a folder holding "
        f"{REGULAR} and {BOLD}"
    )


def pil_font(*, size: int, bold: bool = False) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(str(font_path(BOLD if bold else REGULAR)), size)
