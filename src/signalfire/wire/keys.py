"""Key ids and the enrolment secret shared between a sender and the network key."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import BadField, EncodeError

KEY_ID_SIZE = 8
NETWORK_ID_SIZE = 8
PUBLIC_KEY_SIZE = 32
_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw


def key_id(identity_public: bytes) -> bytes:
    """The 8-byte id that stands for an Ed25519 identity key on air."""
    _check_len("identity public key", identity_public)
    return hashlib.sha256(b"signalfire/v1 key id\x00" + identity_public).digest()[:KEY_ID_SIZE]


def network_id(network_public: bytes) -> bytes:
    """The 8-byte id of a network's X25519 public key."""
    _check_len("network public key", network_public)
    return hashlib.sha256(b"signalfire/v1 network id\x00" + network_public).digest()[
        :NETWORK_ID_SIZE
    ]


def ed25519_public_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(_RAW, _RAW_PUB)


def x25519_public_bytes(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return pub.public_bytes(_RAW, _RAW_PUB)


def enrolment_root(
    shared_secret: bytes, enrol_public: bytes, network_public: bytes, identity_public: bytes
) -> bytes:
    """Root of a sender's key tree; binds the enrolment, the network and the identity."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"signalfire/v1 enrolment",
        info=enrol_public + network_public + identity_public,
    ).derive(shared_secret)


def sender_root(
    enrol_private: X25519PrivateKey, network_public: bytes, identity_public: bytes
) -> bytes:
    """The sender's side: uses the enrolment private key (to be deleted right after)."""
    _check_len("network public key", network_public)
    try:
        shared = enrol_private.exchange(X25519PublicKey.from_public_bytes(network_public))
    except ValueError:
        raise EncodeError("network public key is not a usable X25519 key") from None
    return enrolment_root(
        shared, x25519_public_bytes(enrol_private), network_public, identity_public
    )


def network_root(
    network_private: X25519PrivateKey, enrol_public: bytes, identity_public: bytes
) -> bytes:
    """The network key holder's side of :func:`sender_root`."""
    _check_len("enrolment public key", enrol_public)
    try:
        shared = network_private.exchange(X25519PublicKey.from_public_bytes(enrol_public))
    except ValueError:
        # cryptography refuses low-order points (an all-zero shared secret)
        raise BadField("enrolment public key is a low-order X25519 point") from None
    return enrolment_root(
        shared, enrol_public, x25519_public_bytes(network_private), identity_public
    )


def _check_len(what: str, data: bytes) -> None:
    if len(data) != PUBLIC_KEY_SIZE:
        raise EncodeError(f"{what} must be {PUBLIC_KEY_SIZE} bytes, got {len(data)}")
