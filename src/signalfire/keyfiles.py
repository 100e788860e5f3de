"""Key files on disk: private keys as PKCS#8 PEM with mode 0600, public parts as JSON.

Writes are atomic (temporary file, fsync, rename, fsync of the directory) so
a power cut leaves either the old file or the new one, never half of each.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .errors import SignalfireError

log = logging.getLogger(__name__)

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data``; the file never exists with looser permissions."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except OSError as exc:
        raise SignalfireError(f"cannot write {path}: {exc.strerror}; check the directory") from None
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed or (for 0644) kept it
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SignalfireError(
            f"cannot write {path}: {exc.strerror}; free some space or check permissions"
        ) from None
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def refuse_overwrite(*paths: Path) -> None:
    for path in paths:
        if path.exists():
            raise SignalfireError(
                f"{path} already exists; refusing to overwrite a key (use --force if you mean it)"
            )


def _read(path: Path, what: str, hint: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SignalfireError(f"{what} {path} not found; {hint}") from None
    except OSError as exc:
        raise SignalfireError(f"cannot read {what} {path}: {exc.strerror}") from None


def _warn_if_exposed(path: Path, what: str) -> None:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return
    if mode & 0o077:
        log.warning(
            "%s %s is readable by other users (mode %o); run: chmod 600 %s", what, path, mode, path
        )


def private_pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_identity(path: Path) -> Ed25519PrivateKey:
    data = _read(path, "identity file", f"create one with: signalfire keys new --out {path}")
    _warn_if_exposed(path, "identity file")
    key = _load_pem(data, path, "identity file")
    if not isinstance(key, Ed25519PrivateKey):
        raise SignalfireError(f"{path} holds a {type(key).__name__}, not an Ed25519 identity key")
    return key


def load_network_key(path: Path) -> X25519PrivateKey:
    data = _read(
        path, "network key", "it is network.key in the directory of `signalfire network init`"
    )
    _warn_if_exposed(path, "network key")
    key = _load_pem(data, path, "network key")
    if not isinstance(key, X25519PrivateKey):
        raise SignalfireError(f"{path} holds a {type(key).__name__}, not an X25519 network key")
    return key


def _load_pem(data: bytes, path: Path, what: str) -> object:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SignalfireError(
            f"{what} {path} is passphrase-protected; signalfire cannot use it"
        ) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignalfireError(
            f"{what} {path} is not a PEM private key ({type(exc).__name__})"
        ) from None


def read_json(path: Path, what: str, hint: str) -> dict[str, Any]:
    data = _read(path, what, hint)
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SignalfireError(f"{what} {path} is not valid JSON ({exc}); {hint}") from None
    if not isinstance(obj, dict):
        raise SignalfireError(f"{what} {path} must hold a JSON object; {hint}")
    return obj


def dump_json(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` (two senders must never share a sequence number)."""
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
