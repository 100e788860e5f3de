"""What a receiver knows about senders: verified announcements, and opening reports with them.

A Keyring is a plain in-memory object; the gateway and coordinator load it
from and save it to their own stores.  It never reads a clock or a file.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .body import Report
from .chain import DEPTH, descend
from .errors import BadField, BadSignature, EncodeError, NotForThisNetwork, UnknownSender
from .keys import key_id as _key_id
from .keys import network_root, x25519_public_bytes
from .packet import Announcement, Kind, SealedReport, decrypt_verified, parse, verify_signature
from .vocab import Priority

# Keyring._leaf keeps the tree node this deep (256 sequence numbers below it): a
# sender's next reports cost 8 HMACs instead of 32. 4096 nodes are 128 KiB of keys.
NODE_CACHE_DEPTH = 24
NODE_CACHE_SIZE = 4096

MAX_ENROLMENT_TRIES = 8


@dataclass(frozen=True, slots=True)
class Enrolment:
    identity_public: bytes
    enrol_public: bytes
    first_seq: int


@dataclass(frozen=True, slots=True)
class Opened:
    """A report whose signature verified and whose body decrypted."""

    id: bytes
    kind: Kind
    priority: Priority
    key_id: bytes
    seq: int
    identity_public: bytes
    report: Report
    raw: bytes
    verified: bool = True


class Keyring:
    def __init__(
        self, network_public: bytes, network_private: X25519PrivateKey | None = None
    ) -> None:
        if network_private is not None and x25519_public_bytes(network_private) != network_public:
            raise EncodeError("network private key does not match the network public key")
        self.network_public = network_public
        self._network_private = network_private
        # key id -> identity public key -> enrolments, ascending by first_seq
        self._senders: dict[bytes, dict[bytes, list[Enrolment]]] = {}
        self._roots: dict[tuple[bytes, bytes], bytes] = {}
        self._nodes: dict[tuple[bytes, int], bytes] = {}  # see _leaf

    @property
    def can_open(self) -> bool:
        return self._network_private is not None

    def add(self, announcement: bytes | Announcement) -> tuple[Enrolment, bool]:
        """Verify and remember an announcement; returns the enrolment and whether it was new."""
        ann = parse(announcement) if isinstance(announcement, bytes | bytearray) else announcement
        if not isinstance(ann, Announcement):
            raise BadField("expected a key announcement, got a report")
        ann.verify(self.network_public)
        enrolment = Enrolment(ann.identity_public, ann.enrol_public, ann.first_seq)
        if self._network_private is not None:
            self._root(enrolment)  # refuse an unusable enrolment key now, not at first report
        by_identity = self._senders.setdefault(ann.key_id, {})
        enrolments = by_identity.setdefault(ann.identity_public, [])
        if enrolment in enrolments:
            return enrolment, False
        enrolments.append(enrolment)
        enrolments.sort(key=lambda e: e.first_seq)
        return enrolment, True

    def add_identity(self, identity_public: bytes) -> None:
        """Know a sender's identity key without an enrolment: enough to verify, not to open."""
        self._senders.setdefault(_key_id(identity_public), {}).setdefault(identity_public, [])

    def knows(self, key_id: bytes) -> bool:
        return key_id in self._senders

    def identities(self, key_id: bytes) -> list[bytes]:
        return list(self._senders.get(key_id, {}))

    def verify(self, sealed: SealedReport) -> bytes:
        """Check the sender signature only (for relays without the network key).

        Returns the identity public key that signed it.
        """
        candidates = self._senders.get(sealed.key_id)
        if not candidates:
            raise _unknown(sealed)
        for identity in candidates:
            try:
                verify_signature(identity, sealed.signed_part, sealed.signature)
            except BadSignature:
                continue
            return identity
        raise BadSignature(
            f"signature does not verify under the key of sender {sealed.key_id.hex()}: "
            "the report was altered, truncated or forged"
        )

    def open(self, packet: bytes | SealedReport) -> Opened:
        sealed = parse(packet) if isinstance(packet, bytes | bytearray) else packet
        if not isinstance(sealed, SealedReport):
            raise BadField("expected a report, got a key announcement")
        if self._network_private is None:
            raise NotForThisNetwork("this keyring has no network private key; it can only verify")
        identity = self.verify(sealed)
        candidates = [
            e for e in self._senders[sealed.key_id][identity] if e.first_seq <= sealed.seq
        ]
        if not candidates:
            raise _unknown(sealed)
        # Newest enrolment first; older ones still cover this number when a sender
        # re-enrolled from a stale state (a restored backup). Bounded: the
        # identity's owner (or its thief) could announce any number of them.
        failure: NotForThisNetwork | None = None
        for enrolment in reversed(candidates[-MAX_ENROLMENT_TRIES:]):
            try:
                root = self._root(enrolment)
                leaf = self._leaf(root, sealed.seq)
                report = decrypt_verified(sealed, root, identity, leaf)
            except NotForThisNetwork as exc:
                failure = exc
                continue
            break
        else:
            assert failure is not None
            raise failure
        return Opened(
            id=sealed.id,
            kind=sealed.kind,
            priority=sealed.priority,
            key_id=sealed.key_id,
            seq=sealed.seq,
            identity_public=identity,
            report=report,
            raw=sealed.raw,
        )

    def _leaf(self, root: bytes, seq: int) -> bytes:
        """The leaf key, through a node NODE_CACHE_DEPTH deep kept per block of numbers.

        Only reached after the signature verified, so a forger cannot fill the
        cache; its size is bounded anyway (oldest entries go first).
        """
        key = (root, seq >> (DEPTH - NODE_CACHE_DEPTH))
        node = self._nodes.get(key)
        if node is None:
            node = descend(root, 0, seq, NODE_CACHE_DEPTH)
            if len(self._nodes) >= NODE_CACHE_SIZE:
                del self._nodes[next(iter(self._nodes))]
            self._nodes[key] = node
        return descend(node, NODE_CACHE_DEPTH, seq)

    def _root(self, enrolment: Enrolment) -> bytes:
        cache_key = (enrolment.identity_public, enrolment.enrol_public)
        root = self._roots.get(cache_key)
        if root is None:
            assert self._network_private is not None
            root = network_root(
                self._network_private, enrolment.enrol_public, enrolment.identity_public
            )
            self._roots[cache_key] = root
        return root


def _unknown(sealed: SealedReport) -> UnknownSender:
    return UnknownSender(
        f"no key announcement known for sender {sealed.key_id.hex()} at sequence {sealed.seq}; "
        "keep the report and open it when the announcement arrives",
        sealed.key_id,
    )
