"""Packets on air: sealed reports and key announcements (format version 1).

A sealed report::

    version     1   0x01
    kind/prio   1   kind << 6 | priority << 4 (low 4 bits reserved, 0)
    key id      8   the sender's identity key id
    seq         4   sender sequence number, big-endian
    ciphertext  n   AES-256-GCM-SIV(body), 16-byte tag at the end
    signature  64   Ed25519 over CONTEXT || everything above

A key announcement::

    version     1   0x01
    kind/prio   1   2 << 6 | priority << 4
    identity   32   Ed25519 public key of the sender
    network     8   network id the sender enrolled with
    enrolment  32   X25519 public half of the enrolment (private half deleted)
    first seq   4   the first sequence number this enrolment seals
    signature  64   Ed25519 by the identity over CONTEXT || everything above

docs/protocol.md is the normative description; this module follows it.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from .body import Report, decode_body, encode_body
from .chain import ChainState, leaf_key, message_key
from .errors import (
    BadField,
    BadSignature,
    EncodeError,
    NotForThisNetwork,
    Oversize,
    TooLarge,
    Truncated,
    UnknownVersion,
)
from .keys import (
    KEY_ID_SIZE,
    NETWORK_ID_SIZE,
    PUBLIC_KEY_SIZE,
    ed25519_public_bytes,
    key_id,
    network_id,
    sender_root,
    x25519_public_bytes,
)
from .vocab import Priority, priority_of

VERSION = 1
MAX_PACKET = 219  # Meshtastic PKI direct-message payload ceiling
SIGNATURE_SIZE = 64
TAG_SIZE = 16
REPORT_HEADER_SIZE = 2 + KEY_ID_SIZE + 4
MIN_BODY_SIZE = 6
MIN_REPORT_SIZE = REPORT_HEADER_SIZE + MIN_BODY_SIZE + TAG_SIZE + SIGNATURE_SIZE
ANNOUNCEMENT_SIZE = 2 + PUBLIC_KEY_SIZE + NETWORK_ID_SIZE + PUBLIC_KEY_SIZE + 4 + SIGNATURE_SIZE
ID_SIZE = 16
SIGN_CONTEXT = b"signalfire/v1 packet\x00"
_ID_CONTEXT = b"signalfire/v1 id\x00"


class Kind(enum.IntEnum):
    REPORT = 0  # signed by the civilian who wrote it
    ATTESTED = 1  # a stock-radio message wrapped and signed by a gateway
    ANNOUNCEMENT = 2  # a sender's public keys

    @property
    def label(self) -> str:
        return self.name.lower()


def packet_id(signed_part: bytes) -> bytes:
    """Stable 16-byte id of a packet: a hash of everything its signature covers."""
    return hashlib.sha256(_ID_CONTEXT + signed_part).digest()[:ID_SIZE]


@dataclass(frozen=True, slots=True)
class SealedReport:
    """A report as it travels: readable header, sealed body; not yet verified."""

    kind: Kind
    priority: Priority
    key_id: bytes
    seq: int
    ciphertext: bytes
    signature: bytes
    raw: bytes

    @property
    def header(self) -> bytes:
        return self.raw[:REPORT_HEADER_SIZE]

    @property
    def signed_part(self) -> bytes:
        return self.raw[:-SIGNATURE_SIZE]

    @property
    def id(self) -> bytes:
        return packet_id(self.signed_part)


@dataclass(frozen=True, slots=True)
class Announcement:
    """A sender's identity key and enrolment for one network; not yet verified."""

    priority: Priority
    identity_public: bytes
    network_id: bytes
    enrol_public: bytes
    first_seq: int
    signature: bytes
    raw: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.identity_public)

    @property
    def signed_part(self) -> bytes:
        return self.raw[:-SIGNATURE_SIZE]

    @property
    def id(self) -> bytes:
        return packet_id(self.signed_part)

    def verify(self, network_public: bytes) -> None:
        """Raise unless the identity signed this and it names ``network_public``."""
        verify_signature(self.identity_public, self.signed_part, self.signature)
        if self.network_id != network_id(network_public):
            raise NotForThisNetwork(
                f"announcement enrols with network {self.network_id.hex()}, "
                f"not this network ({network_id(network_public).hex()})"
            )


def _kind_byte(kind: Kind, priority: Priority) -> int:
    return int(kind) << 6 | int(priority) << 4


def verify_signature(identity_public: bytes, signed_part: bytes, signature: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(identity_public).verify(
            signature, SIGN_CONTEXT + signed_part
        )
    except (InvalidSignature, ValueError):
        raise BadSignature(
            "signature does not verify: the packet was altered, truncated or forged"
        ) from None


def parse(data: bytes | bytearray | memoryview) -> SealedReport | Announcement:
    """Split a packet into its fields; checks structure, not signatures."""
    raw = bytes(data)
    if not raw:
        raise Truncated("empty packet")
    if raw[0] != VERSION:
        raise UnknownVersion(
            f"format version {raw[0]} is not supported (this code speaks version {VERSION})"
        )
    if len(raw) > MAX_PACKET:
        raise Oversize(f"packet is {len(raw)} bytes; version 1 packets are at most {MAX_PACKET}")
    if len(raw) < 2:
        raise Truncated("packet ends after its version byte")
    kb = raw[1]
    if kb & 0x0F:
        raise BadField(f"kind byte 0x{kb:02x} sets reserved bits")
    kind_code, prio_code = kb >> 6, (kb >> 4) & 0x03
    if kind_code > Kind.ANNOUNCEMENT:
        raise BadField(f"packet kind {kind_code} is not defined in version 1")
    if prio_code > Priority.LIFE_SAFETY:
        raise BadField(f"priority {prio_code} is not defined in version 1")
    kind, priority = Kind(kind_code), Priority(prio_code)
    if kind is Kind.ANNOUNCEMENT:
        if len(raw) < ANNOUNCEMENT_SIZE:
            raise Truncated(f"key announcement is {len(raw)} bytes; it must be {ANNOUNCEMENT_SIZE}")
        if len(raw) > ANNOUNCEMENT_SIZE:
            raise BadField(
                f"key announcement is {len(raw)} bytes; it must be exactly {ANNOUNCEMENT_SIZE}"
            )
        pos = 2
        identity = raw[pos : pos + PUBLIC_KEY_SIZE]
        pos += PUBLIC_KEY_SIZE
        net = raw[pos : pos + NETWORK_ID_SIZE]
        pos += NETWORK_ID_SIZE
        enrol = raw[pos : pos + PUBLIC_KEY_SIZE]
        pos += PUBLIC_KEY_SIZE
        first_seq = int.from_bytes(raw[pos : pos + 4], "big")
        return Announcement(priority, identity, net, enrol, first_seq, raw[-SIGNATURE_SIZE:], raw)
    if len(raw) < MIN_REPORT_SIZE:
        raise Truncated(f"report is {len(raw)} bytes; at least {MIN_REPORT_SIZE} are needed")
    return SealedReport(
        kind=kind,
        priority=priority,
        key_id=raw[2 : 2 + KEY_ID_SIZE],
        seq=int.from_bytes(raw[2 + KEY_ID_SIZE : REPORT_HEADER_SIZE], "big"),
        ciphertext=raw[REPORT_HEADER_SIZE:-SIGNATURE_SIZE],
        signature=raw[-SIGNATURE_SIZE:],
        raw=raw,
    )


def report_size(report: Report) -> int:
    """Bytes on air (application payload) that ``report`` seals into."""
    return REPORT_HEADER_SIZE + len(encode_body(report)) + TAG_SIZE + SIGNATURE_SIZE


def check_fits(report: Report) -> int:
    """The sealed size of ``report``; raises TooLarge (saying what to cut) if it cannot fit."""
    size = report_size(report)
    if size > MAX_PACKET:
        raise _too_large(report, size)
    return size


def _too_large(report: Report, size: int) -> TooLarge:
    over = size - MAX_PACKET
    if report.text:
        hint = f"shorten the text by at least {over} bytes"
        if any(ord(c) > 0x7F for c in report.text):
            hint += " (Armenian and Cyrillic letters take 2 bytes each)"
    else:
        hint = "drop optional extensions"
    return TooLarge(
        f"report would be {size} bytes, {over} over the {MAX_PACKET}-byte packet limit: {hint}",
        size,
        MAX_PACKET,
    )


def seal_report(
    report: Report,
    identity: Ed25519PrivateKey,
    chain: ChainState,
    seq: int,
) -> tuple[bytes, ChainState]:
    """Encrypt and sign ``report`` as sequence ``seq``.

    Returns the packet and the chain state that must replace ``chain``
    (persist it before sending: it can no longer derive this message's key).
    """
    body = encode_body(report)
    size = REPORT_HEADER_SIZE + len(body) + TAG_SIZE + SIGNATURE_SIZE
    if size > MAX_PACKET:
        raise _too_large(report, size)
    kind = Kind.ATTESTED if report.attestation is not None else Kind.REPORT
    return seal_body(body, kind, priority_of(report.status), identity, chain, seq)


def seal_body(
    body: bytes,
    kind: Kind,
    priority: Priority,
    identity: Ed25519PrivateKey,
    chain: ChainState,
    seq: int,
) -> tuple[bytes, ChainState]:
    """Seal already-encoded body bytes; :func:`seal_report` is the checked way in.

    Exposed for implementers and test vectors that need packets a correct
    sender would never produce (a wrong priority, an undefined status).
    """
    if kind is Kind.ANNOUNCEMENT:
        raise EncodeError("an announcement is not a sealed report; use enrol()")
    identity_public = ed25519_public_bytes(identity)
    leaf, new_chain = chain.take(seq)
    key, nonce = message_key(leaf)
    header = (
        bytes([VERSION, _kind_byte(kind, priority)])
        + key_id(identity_public)
        + seq.to_bytes(4, "big")
    )
    ciphertext = AESGCMSIV(key).encrypt(nonce, body, header + identity_public)
    signed = header + ciphertext
    return signed + identity.sign(SIGN_CONTEXT + signed), new_chain


def open_sealed(sealed: SealedReport, root: bytes, identity_public: bytes) -> Report:
    """Verify and decrypt with a known enrolment root; the low-level half of Keyring.open."""
    verify_signature(identity_public, sealed.signed_part, sealed.signature)
    return decrypt_verified(sealed, root, identity_public)


def decrypt_verified(
    sealed: SealedReport, root: bytes, identity_public: bytes, leaf: bytes | None = None
) -> Report:
    """Decrypt and check a report whose signature the caller has already verified.

    ``leaf`` is the report's leaf key when the caller derived it already (a
    cache of tree nodes); otherwise it is computed from ``root``.
    """
    key, nonce = message_key(leaf_key(root, sealed.seq) if leaf is None else leaf)
    try:
        body = AESGCMSIV(key).decrypt(nonce, sealed.ciphertext, sealed.header + identity_public)
    except InvalidTag:
        raise NotForThisNetwork(
            "signature is valid but the body does not decrypt: it was sealed to another "
            "network key or under another enrolment of this sender"
        ) from None
    report = decode_body(body)
    if priority_of(report.status) != sealed.priority:
        raise BadField(
            f"header priority {sealed.priority.label} does not match status "
            f"{report.status.label} ({priority_of(report.status).label})"
        )
    if (report.attestation is not None) != (sealed.kind is Kind.ATTESTED):
        raise BadField("attestation present in a plain report, or missing from an attested one")
    return report


def enrol(
    identity: Ed25519PrivateKey,
    network_public: bytes,
    enrol_private: X25519PrivateKey,
    first_seq: int = 0,
    priority: Priority = Priority.ROUTINE,
) -> tuple[bytes, ChainState]:
    """Start a key chain for ``identity`` in a network.

    Returns the key announcement to send and the sender's chain state.  The
    caller must delete ``enrol_private`` afterwards: keeping it would let a
    seized device rebuild every key it ever used.
    """
    if not 0 <= first_seq <= 0xFFFFFFFF:
        raise EncodeError(f"first sequence number must be 0-{0xFFFFFFFF}, got {first_seq}")
    identity_public = ed25519_public_bytes(identity)
    root = sender_root(enrol_private, network_public, identity_public)
    signed = (
        bytes([VERSION, _kind_byte(Kind.ANNOUNCEMENT, priority)])
        + identity_public
        + network_id(network_public)
        + x25519_public_bytes(enrol_private)
        + first_seq.to_bytes(4, "big")
    )
    announcement = signed + identity.sign(SIGN_CONTEXT + signed)
    return announcement, ChainState.start(root, first_seq)


def reannounce(announcement: bytes, identity: Ed25519PrivateKey, priority: Priority) -> bytes:
    """The same announcement at another priority (sent ahead of an urgent first report)."""
    ann = parse(announcement)
    if not isinstance(ann, Announcement):
        raise EncodeError("not a key announcement")
    signed = bytes([VERSION, _kind_byte(Kind.ANNOUNCEMENT, priority)]) + ann.signed_part[2:]
    return signed + identity.sign(SIGN_CONTEXT + signed)
