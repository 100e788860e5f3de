"""People who use the coordinator: users, roles, passwords, browser sessions and API tokens.

Roles are ordered: a ``viewer`` sees the feed with positions coarsened to a
grid cell; a ``responder`` sees exact positions and marks reports seen,
assigned or resolved; an ``admin`` also manages users and gateways.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's
low-memory profile). Session and token secrets are random 256-bit strings
shown once; the database keeps only their SHA-256, so a stolen copy of the
database (or of a backup) logs nobody in. Secrets carry a prefix (``sfs_``
for browser sessions, ``sft_`` for API tokens) so that secret scanners and
our own log tests can recognise one that leaked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from signalfire.errors import SignalfireError

from .store import CoordinatorStore, StoreTx, sessions, users

ROLES = ("viewer", "responder", "admin")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024  # hashing a megabyte "password" is a cheap denial of service
DEFAULT_SESSION_S = 12 * 3600.0
DEFAULT_TOKEN_DAYS = 90
_TOUCH_EVERY_S = 60.0  # last_used_at is for people, not a write per request
_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
SESSION_PREFIX = "sfs_"
TOKEN_PREFIX = "sft_"  # noqa: S105 -- a prefix, not a secret


class AccountError(SignalfireError):
    """A user, password or token request that cannot be done as asked."""


class UserExists(AccountError):
    """A user of that name exists already."""


class NoSuchUser(AccountError):
    """No user has that name."""


class LoginFailed(AccountError):
    """Wrong username or password; deliberately does not say which."""

    def __init__(self) -> None:
        super().__init__("wrong username or password")


def role_rank(role: str) -> int:
    return ROLES.index(role)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    return role


def check_username(name: str) -> str:
    if not isinstance(name, str) or not _USERNAME_RE.match(name):
        raise AccountError(
            "a username is 1-64 characters of letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(
            f"a password needs at least {MIN_PASSWORD_CHARS} characters; "
            "a few unrelated words are easiest to remember"
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"a password may be at most {MAX_PASSWORD_CHARS} characters")
    return password


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    created_at: float
    disabled_at: float | None
    last_login_at: float | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def at_least(self, role: str) -> bool:
        return role_rank(self.role) >= role_rank(role)

    def to_json(self) -> dict[str, object]:
        return {
            "username": self.username,
            "role": self.role,
            "created_at": self.created_at,
            "disabled": self.disabled_at is not None,
            "last_login_at": self.last_login_at,
        }


@dataclass(frozen=True)
class Principal:
    """Who is making a request, and how they proved it."""

    user: User
    kind: str  # "session" (browser cookie) or "token" (Authorization: Bearer)
    token_hash: str
    csrf_hash: str | None = None

    @property
    def actor(self) -> str:
        return f"user:{self.user.username}"

    def csrf_ok(self, presented: str | None) -> bool:
        if self.kind != "session":
            return True  # a bearer token is not sent by a browser on its own: no CSRF
        if not presented or self.csrf_hash is None:
            return False
        return hmac.compare_digest(_digest(presented), self.csrf_hash)


@dataclass(frozen=True)
class NewSession:
    principal: Principal
    secret: str  # the cookie value; never stored, never logged
    csrf_token: str
    expires_at: float


def _user(row: sa.Row[tuple[object, ...]]) -> User:
    m = row._mapping
    return User(
        id=int(m["id"]),
        username=str(m["username"]),
        role=str(m["role"]),
        created_at=float(m["created_at"]),
        disabled_at=None if m["disabled_at"] is None else float(m["disabled_at"]),
        last_login_at=None if m["last_login_at"] is None else float(m["last_login_at"]),
    )


class Accounts:
    """Users and their sessions in the coordinator's database."""

    def __init__(
        self,
        store: CoordinatorStore,
        *,
        hasher: PasswordHasher | None = None,
        session_s: float = DEFAULT_SESSION_S,
    ) -> None:
        self.store = store
        self.hasher = hasher or PasswordHasher()
        self.session_s = session_s
        # Verified against when the username does not exist, so that a wrong
        # username takes as long as a wrong password.
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))

    # users

    @staticmethod
    def _get(tx: StoreTx, username: str) -> User | None:
        row = tx.conn.execute(sa.select(users).where(users.c.username == username)).first()
        return None if row is None else _user(row)

    def user(self, username: str) -> User | None:
        with self.store.transaction(write=False) as tx:
            return self._get(tx, username)

    def users(self) -> list[User]:
        with self.store.transaction(write=False) as tx:
            rows = tx.conn.execute(sa.select(users).order_by(users.c.username))
            return [_user(r) for r in rows]

    def add_user(self, username: str, password: str, role: str, now: float, *, actor: str) -> User:
        check_username(username)
        check_password(password)
        check_role(role)
        hashed = self.hasher.hash(password)
        with self.store.transaction() as tx:
            if self._get(tx, username) is not None:
                raise UserExists(f"user {username!r} exists; change it with `user set`")
            tx.conn.execute(
                sa.insert(users).values(
                    username=username,
                    password_hash=hashed,
                    role=role,
                    created_at=now,
                    disabled_at=None,
                    last_login_at=None,
                )
            )
            tx.audit(actor, "user.add", {"username": username, "role": role}, now)
            user = self._get(tx, username)
            assert user is not None
            return user

    def update_user(
        self,
        username: str,
        now: float,
        *,
        actor: str,
        role: str | None = None,
        password: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a user's role, password or disabled state.

        A new password or disabling ends every session and token of the user:
        that is what someone changing a leaked password expects.
        """
        values: dict[str, object] = {}
        detail: dict[str, object] = {"username": username}
        if role is not None:
            values["role"] = check_role(role)
            detail["role"] = role
        if password is not None:
            values["password_hash"] = self.hasher.hash(check_password(password))
            detail["password"] = "changed"  # noqa: S105 -- the audit says that, not what
        if disabled is not None:
            values["disabled_at"] = now if disabled else None
            detail["disabled"] = disabled
        with self.store.transaction() as tx:
            user = self._get(tx, username)
            if user is None:
                raise NoSuchUser(f"no user {username!r}; list them with `user list`")
            if not values:
                return user  # an empty change is no change (as an empty JSON merge patch)
            if user.role == "admin" and (values.get("role", "admin") != "admin" or disabled):
                others = tx.conn.execute(
                    sa.select(sa.func.count())
                    .select_from(users)
                    .where(
                        users.c.role == "admin",
                        users.c.disabled_at.is_(None),
                        users.c.id != user.id,
                    )
                ).scalar_one()
                if not others:
                    raise AccountError(
                        f"{username!r} is the last active admin; make another admin first"
                    )
            tx.conn.execute(sa.update(users).where(users.c.id == user.id).values(**values))
            if password is not None or disabled:
                tx.conn.execute(sa.delete(sessions).where(sessions.c.user_id == user.id))
            tx.audit(actor, "user.update", detail, now)
            updated = self._get(tx, username)
            assert updated is not None
            return updated

    # sessions and tokens

    def login(self, username: str, password: str, now: float, *, source: str) -> NewSession:
        """Check a password and open a browser session; LoginFailed otherwise (audited)."""
        user = self.user(username) if _USERNAME_RE.match(username or "") else None
        ok = False
        stored_hash = self._dummy_hash
        if user is not None:
            with self.store.transaction(write=False) as tx:
                stored_hash = tx.conn.execute(
                    sa.select(users.c.password_hash).where(users.c.id == user.id)
                ).scalar_one()
        try:
            ok = self.hasher.verify(stored_hash, password[:MAX_PASSWORD_CHARS])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if user is None or not ok or not user.active:
            # The attempted name, never the password; truncated so a log is not a dump.
            self.store.audit(
                f"anon:{source}", "login.fail", {"username": (username or "")[:64]}, now
            )
            raise LoginFailed
        secret = SESSION_PREFIX + secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        expires = now + self.session_s
        rehash = self.hasher.check_needs_rehash(stored_hash)
        with self.store.transaction() as tx:
            values: dict[str, object] = {"last_login_at": now}
            if rehash:
                values["password_hash"] = self.hasher.hash(password)
            tx.conn.execute(sa.update(users).where(users.c.id == user.id).values(**values))
            tx.conn.execute(
                sa.insert(sessions).values(
                    token_hash=_digest(secret),
                    user_id=user.id,
                    kind="session",
                    label=source[:64],
                    csrf_hash=_digest(csrf),
                    created_at=now,
                    expires_at=expires,
                    last_used_at=now,
                )
            )
            # Old sessions of everyone are swept here: logins are rare, requests are not.
            tx.conn.execute(sa.delete(sessions).where(sessions.c.expires_at < now))
            tx.audit(f"user:{user.username}", "login.ok", {"source": source}, now)
        principal = Principal(user, "session", _digest(secret), _digest(csrf))
        return NewSession(principal, secret, csrf, expires)

    def create_token(
        self, username: str, label: str, now: float, *, days: float = DEFAULT_TOKEN_DAYS, actor: str
    ) -> str:
        """A new API token for ``username`` (for scripts and GIS tools); shown once."""
        if not 0 < days <= 3650:
            raise AccountError("a token lives 1 day to 10 years; give --days in that range")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.transaction() as tx:
            user = self._get(tx, username)
            if user is None or not user.active:
                raise AccountError(f"no active user {username!r}")
            tx.conn.execute(
                sa.insert(sessions).values(
                    token_hash=_digest(secret),
                    user_id=user.id,
                    kind="token",
                    label=label[:64],
                    csrf_hash=None,
                    created_at=now,
                    expires_at=now + days * 86_400.0,
                    last_used_at=now,
                )
            )
            tx.audit(actor, "token.create", {"username": username, "label": label[:64]}, now)
        return secret

    def authenticate(self, secret: str, now: float) -> Principal | None:
        """The principal a session cookie or bearer token belongs to; None if it is not valid."""
        if not secret.startswith((SESSION_PREFIX, TOKEN_PREFIX)) or len(secret) > 128:
            return None
        return self.authenticate_hash(_digest(secret), now)

    def authenticate_hash(self, token_hash: str, now: float) -> Principal | None:
        """As authenticate, for a principal already known (a long-lived event stream)."""
        with self.store.transaction(write=False) as tx:
            row = tx.conn.execute(
                sa.select(
                    sessions.c.kind,
                    sessions.c.expires_at,
                    sessions.c.last_used_at,
                    sessions.c.csrf_hash,
                    users,
                )
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.token_hash == token_hash)
            ).first()
        if row is None:
            return None
        m = row._mapping
        if m["expires_at"] <= now or m["disabled_at"] is not None:
            return None
        user = _user(row)
        if now - float(m["last_used_at"]) > _TOUCH_EVERY_S:
            with self.store.transaction() as tx:
                tx.conn.execute(
                    sa.update(sessions)
                    .where(sessions.c.token_hash == token_hash)
                    .values(last_used_at=now)
                )
        return Principal(user, str(m["kind"]), token_hash, m["csrf_hash"])

    def logout(self, principal: Principal, now: float) -> None:
        with self.store.transaction() as tx:
            tx.conn.execute(
                sa.delete(sessions).where(sessions.c.token_hash == principal.token_hash)
            )
            tx.audit(principal.actor, "logout", {"kind": principal.kind}, now)
