"""Typed errors for everything that can go wrong with signalfire bytes.

Every decoder failure is a subclass of :class:`WireError`; each carries a
stable ``code`` (used in test vectors, logs and the CLI) and a message that
says what is wrong in plain words.  Nothing in :mod:`signalfire.wire` lets
any other exception escape for malformed input.
"""

from __future__ import annotations


class WireError(Exception):
    """Base class: the bytes or values are not a valid signalfire v1 packet."""

    code = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Truncated(WireError):
    """Fewer bytes than the layout needs."""

    code = "truncated"


class Oversize(WireError):
    """More bytes than one Meshtastic packet can carry."""

    code = "oversize"


class UnknownVersion(WireError):
    """The first byte names a format version this code does not speak."""

    code = "unknown-version"


class BadField(WireError):
    """A field holds a value the spec does not allow."""

    code = "bad-field"


class BadSignature(WireError):
    """The Ed25519 signature does not verify: forged, altered or corrupted."""

    code = "bad-signature"


class NotForThisNetwork(WireError):
    """Sealed to, or enrolled with, a different network key."""

    code = "not-for-this-network"


class UnknownSender(WireError):
    """No key announcement is known for the sender key id.

    The packet is well-formed; keep it and open it once the sender's
    announcement arrives.
    """

    code = "unknown-sender"

    def __init__(self, message: str, key_id: bytes) -> None:
        super().__init__(message)
        self.key_id = key_id


class SequenceUsed(WireError):
    """A sender tried to seal under a sequence number its key chain has passed."""

    code = "sequence-used"


class EncodeError(WireError):
    """A report cannot be encoded as asked (a value out of range)."""

    code = "encode"


class TooLarge(EncodeError):
    """The encoded packet would exceed the hard ceiling."""

    code = "too-large"

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit
