"""Editors in the ledger: who is one, their `Approved:` passphrases, and the reply-key secret.

Passphrases are stored as salted scrypt hashes (stdlib `hashlib.scrypt`), one per editor's
address; the reply-key secret, when the config sets none, is made once at random and kept in
the database so every instance sharing it signs and checks the same keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import String, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.models import (
    DeskAction,
    EditorPassphrase,
    Intake,
    Person,
    StoredSecret,
    Submission,
    Unit,
)
from parser.errors import UserError

REPLY_KEY_SECRET = "reply_key_secret"
MIN_PASSPHRASE_CHARS = 10
# scrypt cost: a fraction of a second per check (once per batch message), 16 MB of memory;
# the salt makes each hash unique.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True)
class Editor:
    person_id: int
    name: str
    email: str


def find_editor(session: Session, address: str, day: date) -> Editor | None:
    """The editor (role `editor`) registered with this address and in office on `day`."""
    person = session.scalars(
        select(Person)
        .where(
            func.lower(Person.email) == address.strip().lower(),
            Person.role == "editor",
            Person.active_on(day),
        )
        .order_by(Person.id)
        .limit(1)
    ).first()
    if person is None:
        return None
    return Editor(person.id, person.name, person.email.lower())


def editor_addresses(session: Session, day: date) -> list[str]:
    """Every address of an editor in office on `day`, once each, in registry order."""
    rows = session.scalars(
        select(Person.email)
        .where(Person.role == "editor", Person.active_on(day))
        .order_by(Person.id)
    ).all()
    return list(dict.fromkeys(email.strip().lower() for email in rows))


def unit_officers(session: Session, unit_id: int, day: date) -> list[str]:
    """The addresses of the unit's info officers in office on `day`."""
    rows = session.scalars(
        select(Person.email)
        .where(Person.unit_id == unit_id, Person.role == "officer", Person.active_on(day))
        .order_by(Person.id)
    ).all()
    return list(dict.fromkeys(email.strip().lower() for email in rows))


def find_unit(session: Session, name: str) -> Unit | None:
    """A unit by code, name or mark (the caller folds traditional/full-width forms first)."""
    wanted = name.strip().strip("【】[]()").lower()
    for unit in session.scalars(select(Unit).order_by(Unit.id)):
        names = {unit.code.lower(), unit.name.lower(), unit.mark.strip("【】[]()").lower()}
        if wanted in names:
            return unit
    return None


def _scrypt(passphrase: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        passphrase.encode("utf-8"),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        maxmem=64 * 1024 * 1024,
        dklen=32,
    )


def hash_passphrase(passphrase: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(passphrase, salt)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def passphrase_matches(passphrase: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            passphrase.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def set_passphrase(session: Session, address: str, passphrase: str, now: datetime) -> Editor:
    """Set (or replace) a registered editor's passphrase. UserError for a mistake."""
    editor = find_editor(session, address, now.date())
    if editor is None:
        raise UserError(
            f"{address} is not a registered editor in office (role editor in the registry)"
        )
    if len(passphrase.strip()) < MIN_PASSPHRASE_CHARS:
        raise UserError(f"the passphrase must be at least {MIN_PASSPHRASE_CHARS} characters")
    if passphrase != passphrase.strip() or "\n" in passphrase:
        raise UserError("the passphrase must be one line without leading or trailing spaces")
    row = session.get(EditorPassphrase, editor.email)
    if row is None:
        row = EditorPassphrase(email=editor.email, hash="", set_at=now)
        session.add(row)
    row.hash = hash_passphrase(passphrase)
    row.set_at = now
    return editor


def check_passphrase(session: Session, address: str, passphrase: str) -> bool:
    row = session.get(EditorPassphrase, address.strip().lower())
    return row is not None and passphrase_matches(passphrase.strip(), row.hash)


def passphrase_failures(session: Session, address: str, since: datetime) -> int:
    """Desk commands from `address` refused for a wrong Approved: passphrase since `since`."""
    return (
        session.scalar(
            select(func.count(Intake.id)).where(
                func.lower(Intake.from_address) == address.strip().lower(),
                Intake.state == "command_refused",
                cast(Intake.reasons, String).like('%"bad_passphrase"%'),
                Intake.received_at >= since,
            )
        )
        or 0
    )


def stored_secret(session: Session, name: str, now: datetime) -> str:
    """The named secret from the database, made (at random, 256 bits) on first use.

    Read first: only a missing secret is written, so a transaction that merely needs it (the
    outbound sender's, while the relay takes a message) holds no SQLite write lock for it."""
    found = session.scalars(select(StoredSecret.value).where(StoredSecret.name == name)).first()
    if found is not None:
        return found
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(StoredSecret)
        .values(name=name, value=secrets.token_urlsafe(32), created_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return session.scalars(select(StoredSecret.value).where(StoredSecret.name == name)).one()


DECISION_VERBS = ("decline", "return")  # 不采用, 退回


@dataclass(frozen=True)
class Decision:
    """An editor's 不采用 or 退回 of an item: a line of the office's 退文台账."""

    at: datetime
    tracking_no: str
    unit_code: str
    unit_name: str
    title: str
    verb: str
    reason: str
    editor: str
    undone: bool


def decisions(
    session: Session, start: datetime | None = None, end: datetime | None = None
) -> list[Decision]:
    """The decisions taken in [start, end) (all when None), oldest first."""
    query = (
        select(DeskAction, Submission, Unit)
        .join(Submission, DeskAction.submission_id == Submission.id)
        .join(Unit, DeskAction.unit_id == Unit.id)
        .where(DeskAction.verb.in_(DECISION_VERBS))
        .order_by(DeskAction.at, DeskAction.id)
    )
    if start is not None:
        query = query.where(DeskAction.at >= start)
    if end is not None:
        query = query.where(DeskAction.at < end)
    return [
        Decision(
            at=action.at,
            tracking_no=item.tracking_no,
            unit_code=unit.code,
            unit_name=unit.name,
            title=item.title,
            verb=action.verb,
            reason=_reason(action.text, item.tracking_no),
            editor=action.editor,
            undone=action.undone_at is not None,
        )
        for action, item, unit in session.execute(query)
    ]


def _reason(line: str, tracking_no: str) -> str:
    """The editor's words after the verb (`不采用 与前期重复` → 与前期重复)."""
    words = line.replace(tracking_no, " ").split()
    return " ".join(words[1:]) if words else ""
