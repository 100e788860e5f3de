"""Stock-radio intake: what civilians type on an unmodified Meshtastic radio, read as a report.

:mod:`~signalfire.intake.keywords` reads the text (keywords in English, Armenian and
Russian from :mod:`~signalfire.intake.lexicon`, people counts), :mod:`~signalfire.intake.replies`
words the short answers; the gateway adds the radio, the clock and the
rate limit around it.
"""

from .keywords import ParsedMessage, keywords, parse_message
from .lang import LANGS, MAX_PEOPLE, MAX_REFERENCE_LEN, MAX_REPLY_BYTES, Lang
from .replies import Reply, reply_text

__all__ = [
    "LANGS",
    "MAX_PEOPLE",
    "MAX_REFERENCE_LEN",
    "MAX_REPLY_BYTES",
    "Lang",
    "ParsedMessage",
    "Reply",
    "keywords",
    "parse_message",
    "reply_text",
]
