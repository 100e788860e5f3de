"""A sender's identity on disk: key, enrolments, and a sequence number that survives restarts.

Files beside the identity key PATH:
  PATH         Ed25519 private key, PKCS#8 PEM, 0600
  PATH.pub     public card (JSON): public key, key id, key announcements; safe to share
  PATH.state   key-tree state per network (JSON), 0600: the future message keys

The state is written (fsync'd) before a sealed report is handed out, so a
crash can skip a sequence number but never reuse one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from . import wire
from .errors import SignalfireError
from .keyfiles import (
    PRIVATE_MODE,
    PUBLIC_MODE,
    atomic_write,
    dump_json,
    load_identity,
    locked,
    private_pem,
    read_json,
    refuse_overwrite,
)
from .profile import NetworkProfile

CARD_TYPE = "signalfire-identity"
STATE_TYPE = "signalfire-sender-state"


def _card_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def _state_path(path: Path) -> Path:
    return path.with_name(path.name + ".state")


@dataclass
class Sealed:
    packet: bytes
    seq: int
    announcement: bytes | None  # set when this call created the enrolment: send it first


class Identity:
    def __init__(self, path: Path, key: Ed25519PrivateKey) -> None:
        self.path = Path(path)
        self.key = key
        self.public = wire.ed25519_public_bytes(key)
        self.key_id = wire.key_id(self.public)

    @classmethod
    def create(cls, path: Path, *, force: bool = False) -> Identity:
        path = Path(path)
        if not force:
            refuse_overwrite(path, _state_path(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        atomic_write(path, private_pem(key), PRIVATE_MODE)
        identity = cls(path, key)
        if _state_path(path).exists():
            _state_path(path).unlink()
        identity._write_card({})
        return identity

    @classmethod
    def load(cls, path: Path) -> Identity:
        return cls(Path(path), load_identity(Path(path)))

    @property
    def card_path(self) -> Path:
        return _card_path(self.path)

    # -- state ---------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        path = _state_path(self.path)
        if not path.exists():
            return {"type": STATE_TYPE, "version": 1, "key_id": self.key_id.hex(), "enrolments": {}}
        state = read_json(path, "sender state", "restore it from backup or enrol again")
        if state.get("type") != STATE_TYPE or state.get("key_id") != self.key_id.hex():
            raise SignalfireError(
                f"sender state {path} belongs to another identity; move it away and enrol again"
            )
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        atomic_write(_state_path(self.path), dump_json(state), PRIVATE_MODE)
        self._write_card(state["enrolments"])

    def _write_card(self, enrolments: dict[str, Any]) -> None:
        card = {
            "type": CARD_TYPE,
            "version": 1,
            "public_key": self.public.hex(),
            "key_id": self.key_id.hex(),
            "announcements": [
                a for e in enrolments.values() for a in e.get("announcements", [e["announcement"]])
            ],
        }
        atomic_write(self.card_path, dump_json(card), PUBLIC_MODE)

    @staticmethod
    def _chain(entry: dict[str, Any]) -> wire.ChainState:
        try:
            nodes = tuple(wire.Node(int(d), int(p), bytes.fromhex(k)) for d, p, k in entry["nodes"])
            return wire.ChainState(int(entry["next_seq"]), nodes)
        except (KeyError, TypeError, ValueError):
            raise SignalfireError(
                "sender state is damaged; enrol again (keys enrol --renew)"
            ) from None

    @staticmethod
    def _store_chain(entry: dict[str, Any], chain: wire.ChainState) -> None:
        entry["next_seq"] = chain.next_seq
        entry["nodes"] = [[n.depth, n.prefix, n.key.hex()] for n in chain.nodes]

    def _enrol_entry(
        self,
        profile: NetworkProfile,
        first_seq: int,
        priority: wire.Priority = wire.Priority.ROUTINE,
    ) -> dict[str, Any]:
        enrol_private = X25519PrivateKey.generate()
        announcement, chain = wire.enrol(
            self.key, profile.public_key, enrol_private, first_seq, priority
        )
        del enrol_private  # only the tree state may outlive this call (see docs/security.md)
        entry: dict[str, Any] = {"announcement": announcement.hex(), "first_seq": first_seq}
        self._store_chain(entry, chain)
        return entry

    # -- public operations ---------------------------------------------------

    def enrol(self, profile: NetworkProfile, *, renew: bool = False) -> tuple[bytes, bool]:
        """The announcement for ``profile``'s network, creating the enrolment if needed."""
        state_path = _state_path(self.path)
        with locked(state_path):
            state = self._load_state()
            net = profile.network_id.hex()
            entry = state["enrolments"].get(net)
            if entry is not None and not renew:
                return bytes.fromhex(entry["announcement"]), False
            first_seq = self._chain(entry).next_seq if entry is not None else 0
            new_entry = self._enrol_entry(profile, first_seq)
            # earlier announcements stay on the card: reports below first_seq still need them
            old = entry.get("announcements", [entry["announcement"]]) if entry else []
            new_entry["announcements"] = [*old, new_entry["announcement"]]
            state["enrolments"][net] = new_entry
            self._save_state(state)
            return bytes.fromhex(new_entry["announcement"]), True

    def next_seq(self, profile: NetworkProfile) -> int:
        entry = self._load_state()["enrolments"].get(profile.network_id.hex())
        return self._chain(entry).next_seq if entry else 0

    def seal(self, profile: NetworkProfile, report: wire.Report, seq: int | None = None) -> Sealed:
        """Seal ``report`` with the next (or the given, higher) sequence number."""
        state_path = _state_path(self.path)
        with locked(state_path):
            state = self._load_state()
            net = profile.network_id.hex()
            entry = state["enrolments"].get(net)
            new_announcement = None
            if entry is None:
                # the announcement travels just ahead of this report: same priority
                priority = wire.priority_of(report.status)
                entry = self._enrol_entry(profile, 0 if seq is None else seq, priority)
                entry["announcements"] = [entry["announcement"]]
                new_announcement = bytes.fromhex(entry["announcement"])
            chain = self._chain(entry)
            use = chain.next_seq if seq is None else seq
            packet, chain = wire.seal_report(report, self.key, chain, use)
            self._store_chain(entry, chain)
            state["enrolments"][net] = entry
            self._save_state(state)  # before the packet leaves this function
        return Sealed(packet, use, new_announcement)


def load_sender_keys(path: Path) -> tuple[list[bytes], list[bytes]]:
    """Identity public keys and announcements from a card (JSON) or a file of hex lines."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SignalfireError(f"sender key file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SignalfireError(f"cannot read sender key file {path}: {exc}") from None
    identities: list[bytes] = []
    announcements: list[bytes] = []
    stripped = text.strip()
    if stripped.startswith("{"):
        card = read_json(path, "sender card", "it is the .pub file written by signalfire keys new")
        if card.get("type") != CARD_TYPE:
            raise SignalfireError(f"{path} is not a signalfire identity card")
        items = [str(card.get("public_key", "")), *map(str, card.get("announcements", []))]
    else:
        items = [
            ln.strip() for ln in stripped.splitlines() if ln.strip() and not ln.startswith("#")
        ]
    for item in items:
        try:
            raw = bytes.fromhex(item)
        except ValueError:
            raise SignalfireError(f"{path}: {item[:20]!r}... is not hex") from None
        if len(raw) == 32:
            identities.append(raw)
        elif len(raw) == wire.ANNOUNCEMENT_SIZE:
            announcements.append(raw)
        else:
            raise SignalfireError(
                f"{path}: a {len(raw)}-byte entry is neither a public key (32) "
                f"nor a key announcement ({wire.ANNOUNCEMENT_SIZE})"
            )
    return identities, announcements
