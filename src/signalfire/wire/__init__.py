"""signalfire wire format, version 1: pure encode/decode, no I/O, no clock, no globals.

Senders: :func:`enrol` once per network, then :func:`seal_report` per report.
Receivers: a :class:`Keyring` fed with key announcements opens reports.
"""

from .body import Attestation, Report, decode_body, encode_body
from .chain import ChainState, Node
from .errors import (
    BadField,
    BadSignature,
    EncodeError,
    NotForThisNetwork,
    Oversize,
    SequenceUsed,
    TooLarge,
    Truncated,
    UnknownSender,
    UnknownVersion,
    WireError,
)
from .keyring import Enrolment, Keyring, Opened
from .keys import ed25519_public_bytes, key_id, network_id, x25519_public_bytes
from .location import Location
from .packet import (
    ANNOUNCEMENT_SIZE,
    MAX_PACKET,
    MIN_REPORT_SIZE,
    VERSION,
    Announcement,
    Kind,
    SealedReport,
    check_fits,
    enrol,
    packet_id,
    parse,
    reannounce,
    report_size,
    seal_body,
    seal_report,
)
from .vocab import (
    Need,
    Priority,
    Status,
    accuracy_bound,
    accuracy_class_for,
    need_labels,
    needs_from_labels,
    priority_of,
)

__all__ = [
    "ANNOUNCEMENT_SIZE",
    "MAX_PACKET",
    "MIN_REPORT_SIZE",
    "VERSION",
    "Announcement",
    "Attestation",
    "BadField",
    "BadSignature",
    "ChainState",
    "EncodeError",
    "Enrolment",
    "Keyring",
    "Kind",
    "Location",
    "Need",
    "Node",
    "NotForThisNetwork",
    "Opened",
    "Oversize",
    "Priority",
    "Report",
    "SealedReport",
    "SequenceUsed",
    "Status",
    "TooLarge",
    "Truncated",
    "UnknownSender",
    "UnknownVersion",
    "WireError",
    "accuracy_bound",
    "accuracy_class_for",
    "check_fits",
    "decode_body",
    "ed25519_public_bytes",
    "encode_body",
    "enrol",
    "key_id",
    "need_labels",
    "needs_from_labels",
    "network_id",
    "packet_id",
    "parse",
    "priority_of",
    "reannounce",
    "report_size",
    "seal_body",
    "seal_report",
    "x25519_public_bytes",
]
