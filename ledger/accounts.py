"""Accounts of the web console (SPEC §11): argon2id password hashes, sessions kept in the
ledger by the hash of their token, and the sign-in throttle.

A session is a random token in an HttpOnly cookie; the ledger keeps its SHA-256, the account and
a CSRF token. Every request looks the session up, so a disabled account or a logout ends it at
once; a session idle longer than the configured minutes is gone. Too many failed sign-ins for one
address, or from one client, in a window refuse further tries until it passes.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ledger.models import WEB_ROLES, WebLoginFailure, WebSession, WebUser
from ledger.registry.checks import normalise_email
from parser.errors import UserError

# argon2-cffi's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes, 4 lanes).
HASHER = PasswordHasher()
MIN_PASSWORD_CHARS = 12


# Checked against when the address has no account, so a wrong address takes as long as a
# wrong password (no one learns which addresses have accounts by timing). Made at the first
# login, not at import: a hash costs 0.17 s, and every command imports this module.
@functools.cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


class AccountError(UserError):
    """A mistake with an account (unknown address, weak password, bad role)."""


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    role: str

    @property
    def can_act(self) -> bool:
        """Editors and staff act on items; leaders read."""
        return self.role in ("staff", "editor")

    @property
    def is_staff(self) -> bool:
        return self.role == "staff"


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password must be at least {MIN_PASSWORD_CHARS} characters")
    if password != password.strip() or "\n" in password:
        raise AccountError("the password must not begin or end with spaces or hold a line break")


def _user(session: Session, email: str) -> WebUser | None:
    return session.scalar(select(WebUser).where(WebUser.email == email.strip().lower()))


def add_user(session: Session, email: str, role: str, password: str, now: datetime) -> Account:
    address = normalise_email(email)
    if address is None:
        raise AccountError(f"{email!r} is not an email address")
    if role not in WEB_ROLES:
        raise AccountError(f"role {role!r}: use {', '.join(WEB_ROLES)}")
    if _user(session, address) is not None:
        raise AccountError(f"{address} already has an account (user passwd changes its password)")
    _check_password(password)
    user = WebUser(
        email=address,
        role=role,
        password_hash=HASHER.hash(password),
        created_at=now,
        password_set_at=now,
    )
    session.add(user)
    session.flush()
    return Account(user.id, user.email, user.role)


def set_password(session: Session, email: str, password: str, now: datetime) -> Account:
    """A new password; every session of the account ends."""
    user = _user(session, email)
    if user is None:
        raise AccountError(f"no account for {email}")
    _check_password(password)
    user.password_hash = HASHER.hash(password)
    user.password_set_at = now
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    return Account(user.id, user.email, user.role)


def disable_user(session: Session, email: str, now: datetime) -> Account:
    """The account can no longer sign in; its sessions end now."""
    user = _user(session, email)
    if user is None:
        raise AccountError(f"no account for {email}")
    if user.disabled_at is None:
        user.disabled_at = now
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    return Account(user.id, user.email, user.role)


@dataclass(frozen=True)
class Throttle:
    failures: int = 10  # failed sign-ins allowed in the window, per address and per client
    window: timedelta = timedelta(minutes=15)


def throttled(session: Session, email: str, client: str, now: datetime, t: Throttle) -> bool:
    since = now - t.window
    by_email = session.scalar(
        select(func.count())
        .select_from(WebLoginFailure)
        .where(WebLoginFailure.email == email.strip().lower()[:320], WebLoginFailure.at >= since)
    )
    by_client = session.scalar(
        select(func.count())
        .select_from(WebLoginFailure)
        .where(WebLoginFailure.client == client[:64], WebLoginFailure.at >= since)
    )
    return (by_email or 0) >= t.failures or (by_client or 0) >= t.failures


def sign_in(
    session: Session, email: str, password: str, client: str, now: datetime, t: Throttle
) -> Account | None:
    """The account, or None (wrong address or password, or disabled); a failure is counted.
    The caller checks `throttled` first and refuses without trying."""
    user = _user(session, email)
    try:
        HASHER.verify(user.password_hash if user else _dummy_hash(), password)
        ok = user is not None and user.disabled_at is None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        session.add(WebLoginFailure(email=email.strip().lower()[:320], client=client[:64], at=now))
        session.execute(delete(WebLoginFailure).where(WebLoginFailure.at < now - 4 * t.window))
        return None
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = HASHER.hash(password)
    return Account(user.id, user.email, user.role)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, account: Account, now: datetime) -> tuple[str, str]:
    """(cookie token, CSRF token) of a new session."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=_digest(token),
            user_id=account.id,
            csrf=csrf,
            created_at=now,
            last_seen_at=now,
        )
    )
    return token, csrf


@dataclass(frozen=True)
class SignedIn:
    account: Account
    csrf: str


def find_session(session: Session, token: str, now: datetime, idle: timedelta) -> SignedIn | None:
    """The live session of this token (touched), or None: unknown, idle too long, or its
    account disabled."""
    if not token or len(token) > 200:
        return None
    row = session.execute(
        select(WebSession, WebUser)
        .join(WebUser, WebSession.user_id == WebUser.id)
        .where(WebSession.token_hash == _digest(token))
    ).first()
    if row is None:
        return None
    web_session, user = row
    if user.disabled_at is not None or now - web_session.last_seen_at > idle:
        session.delete(web_session)
        return None
    if now - web_session.last_seen_at > timedelta(minutes=1):
        web_session.last_seen_at = now  # written at most once a minute
    return SignedIn(Account(user.id, user.email, user.role), web_session.csrf)


def close_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
