"""The outbox: every mail Mailroom sends waits here until the next hop has taken it.

`enqueue` adds a composed mail inside the caller's transaction (so a receipt exists exactly
when its item does); the sender (`ingest.outbound`) takes one due row at a time with
`claim_due`, then marks it `sent`, puts it back for a later attempt, or marks it `failed`.
A row `sent` becomes `bounced` when a bounce of it comes back (`ledger.bounces`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, Select, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from ledger.compose import base64_length, message_id_of, with_original
from ledger.db import DriverStatement, read_in_pieces
from ledger.models import Base, OutboundMessage, RawMessage

STATES = ("queued", "sent", "failed", "bounced")
_OUTBOX = Base.metadata.tables["outbox"]  # for rows written without a row object


def _shared(
    *,
    kind: str,
    subject: str,
    now: datetime,
    intake_id: int | None,
    first: bool,
    original_tail: int | None = None,
) -> dict[str, Any]:
    """The columns of a row just queued that the copies of one mail to several share."""
    return {
        "kind": kind,
        "subject": subject,
        "intake_id": intake_id,
        "state": "queued",
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
        "priority": 1 if first else 0,
        "original_tail": original_tail,
    }


def _copy(to_address: str, message: bytes) -> dict[str, Any]:
    """The columns of a row just queued that are its own: recipient and wire bytes."""
    return {"to_address": to_address, "message": message, "message_id": message_id_of(message)}


def enqueue(
    session: Session,
    *,
    kind: str,
    to_address: str,
    subject: str,
    message: bytes,
    now: datetime,
    intake_id: int | None = None,
    first: bool = False,
) -> OutboundMessage:
    """Queue one mail (its wire bytes), due now; `first` puts it ahead of every row due."""
    row = OutboundMessage(
        **_shared(kind=kind, subject=subject, now=now, intake_id=intake_id, first=first),
        **_copy(to_address, message),
    )
    session.add(row)
    return row


def enqueue_copies(
    session: Session,
    *,
    kind: str,
    copies: Sequence[tuple[str, bytes]],
    subject: str,
    now: datetime,
    intake_id: int | None = None,
    first: bool = False,
    original_tail: int | None = None,
) -> None:
    """Queue one mail to several recipients, a (recipient, wire bytes) pair each, in one
    statement: the filing path's receipts and desk forwards. With `original_tail`
    (`Mail.original_tail`) the mail attaches by reference the raw message of `intake_id`,
    put in as it is sent (`pieces_of`). No row object is made (nothing
    asks for their ids), and the ORM would insert them one at a time to learn each id; the
    statement is compiled once and run on the driver, what the copies share bound once."""
    if not copies:
        return
    shared = _shared(
        kind=kind,
        subject=subject,
        now=now,
        intake_id=intake_id,
        first=first,
        original_tail=original_tail,
    )
    own = [_copy(to, wire) for to, wire in copies]
    insert_rows = _insert_on(session.get_bind().dialect, (*shared, *own[0]))
    bound = {name: insert_rows.bind(name, value) for name, value in shared.items()}
    insert_rows.executemany(
        session,
        [{**bound, **row, "message": insert_rows.bind("message", row["message"])} for row in own],
    )


@functools.lru_cache(maxsize=8)
def _insert_on(dialect: Dialect, columns: tuple[str, ...]) -> DriverStatement:
    """The insert of a queued row's `columns`, compiled for `dialect`."""
    return DriverStatement(insert(_OUTBOX).values({n: bindparam(n) for n in columns}), dialect)


def _due(session: Session, now: datetime) -> Select[OutboundMessage]:
    """Queued rows whose time has come, oldest first; rows another instance holds are skipped."""
    query = (
        select(OutboundMessage)
        .where(OutboundMessage.state == "queued", OutboundMessage.next_attempt_at <= now)
        .order_by(OutboundMessage.priority.desc(), OutboundMessage.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return query


def claim_due(session: Session, now: datetime) -> OutboundMessage | None:
    """The oldest due row, counted as one more attempt; on PostgreSQL it stays locked until the
    transaction ends, so another sender skips it. None when nothing is due."""
    # The id first, then the row: SQLite sorts the due rows with every column selected, and
    # three desk forwards of a 25 MB item put a hundred megabytes of messages in its sorter.
    row_id = session.scalar(_due(session, now).with_only_columns(OutboundMessage.id).limit(1))
    row = session.get(OutboundMessage, row_id) if row_id is not None else None
    if row is not None:
        row.attempts += 1
    return row


class OriginalMissing(LookupError):
    """A mail attaches by reference an original the ledger no longer holds."""

    def __init__(self, row: OutboundMessage) -> None:
        super().__init__(
            f"outbox {row.id}: the original it attaches (intake {row.intake_id})"
            " is not in the ledger"
        )


def size_of(session: Session, row: OutboundMessage) -> int:
    """How many bytes the row's mail has as it goes out (`pieces_of`), its original not read."""
    if row.original_tail is None:
        return len(row.message)
    original = session.scalar(
        select(func.length(RawMessage.data)).where(RawMessage.intake_id == row.intake_id)
    )
    if original is None:
        raise OriginalMissing(row)
    return len(row.message) + base64_length(int(original))


def pieces_of(session: Session, row: OutboundMessage) -> Iterator[bytes]:
    """The row's mail as it goes on the wire, piece by piece, each ending a line: its message,
    with the original it attaches by reference written in, read from the ledger in pieces
    (a 25 MB original is never held whole on SQLite, nor once per editor)."""
    if row.original_tail is None:
        yield row.message
        return
    try:
        original = read_in_pieces(session, RawMessage.data, row.intake_id)
        yield from with_original(row.message, row.original_tail, original)
    except LookupError as exc:
        raise OriginalMissing(row) from exc


def mark_sent(row: OutboundMessage, now: datetime) -> None:
    row.state, row.sent_at, row.last_error = "sent", now, None


def mark_failed(row: OutboundMessage, error: str) -> None:
    row.state, row.last_error = "failed", error[:2000]


def mark_bounced(row: OutboundMessage, reason: str, now: datetime) -> None:
    row.state, row.bounced_at, row.last_error = "bounced", now, reason[:2000]


def retry_later(row: OutboundMessage, error: str, at: datetime) -> None:
    row.last_error, row.next_attempt_at = error[:2000], at


def postpone_due(session: Session, now: datetime, until: datetime) -> None:
    """Every other due row waits until `until` too (the relay is away for all of them)."""
    others = _due(session, now).with_only_columns(OutboundMessage.id)
    session.execute(
        update(OutboundMessage).where(OutboundMessage.id.in_(others)).values(next_attempt_at=until)
    )


def listing(session: Session) -> list[OutboundMessage]:
    """Every mail in the outbox, oldest first."""
    return list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def requeue_failed(session: Session, outbox_id: int, now: datetime) -> OutboundMessage | None:
    """A `failed` row queued again, due now (the web console's 重新发送); None if the row is
    not failed (sent, bounced, already queued, or unknown)."""
    row = session.get(OutboundMessage, outbox_id)
    if row is None or row.state != "failed":
        return None
    row.state, row.next_attempt_at = "queued", now
    session.flush()
    return row
