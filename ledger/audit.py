"""The audit log (SPEC §5.6): who changed points or a desk decision, when, from which message.

Each row carries the SHA-256 of its own canonical content and of the row before it, so a row
edited, inserted or deleted behind the service's back breaks the chain, and `verify_chain`
names the first row that does not fit. Appends are serialised (an advisory lock on
PostgreSQL, the write lock on SQLite) so two service instances never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ledger.models import AuditEntry

GENESIS = "0" * 64
# An arbitrary constant naming Mailroom's audit-chain lock among PostgreSQL advisory locks.
_PG_LOCK_KEY = 0x4D41494C524F4F4D & 0x7FFFFFFFFFFFFFFF


def _canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    source: str,
    subject: str,
    details: Mapping[str, Any],
) -> str:
    """The hash of one row: its content in a canonical JSON form, after the previous hash."""
    content = json.dumps(
        {
            "prev": prev_hash,
            "at": _canonical_time(at),
            "actor": actor,
            "action": action,
            "source": source,
            "subject": subject,
            "details": details,
        },
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    else:
        # Any write statement takes SQLite's write lock for the rest of the transaction.
        session.execute(text("UPDATE audit_log SET id = id WHERE 0 = 1"))


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    source: str = "",
    subject: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one audit row to the chain, in the caller's transaction."""
    _lock_chain(session)
    details = dict(details or {})
    # Round-trip through JSON so the hash is of exactly what the database will give back.
    details = json.loads(json.dumps(details, ensure_ascii=False))
    prev = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    prev_hash = prev or GENESIS
    at = at.astimezone(UTC)
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        source=source,
        subject=subject,
        details=details,
        prev_hash=prev_hash,
        hash=entry_hash(prev_hash, at, actor, action, source, subject, details),
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class ChainReport:
    rows: int
    head: str
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_chain(session: Session) -> ChainReport:
    """Recompute every row's hash in order; report the first row that does not fit."""
    prev_hash = GENESIS
    count = 0
    for row in session.scalars(select(AuditEntry).order_by(AuditEntry.id)).yield_per(500):
        count += 1
        if row.prev_hash != prev_hash:
            return ChainReport(
                count, prev_hash, row.id, "does not follow the row before it (row missing?)"
            )
        expected = entry_hash(
            row.prev_hash, row.at, row.actor, row.action, row.source, row.subject, row.details
        )
        if row.hash != expected:
            return ChainReport(count, prev_hash, row.id, "was changed after it was written")
        prev_hash = row.hash
    return ChainReport(count, prev_hash)
