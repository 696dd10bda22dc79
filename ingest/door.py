"""The one way into filing, whichever way a message came: the SMTP listener's spool (drained
by the filing process), an IMAP folder (polled inside the filing process) or a file
(`mailroom ingest`).

`take()` judges and files the message (`Pipeline.process`, idempotent on its origin). When
the judgement cannot be stored for the message's sake (the database refuses the row), the
message is kept `quarantined` with its raw bytes and the traceback, so one bad message never
blocks those behind it. When the database itself is away, that propagates: the caller keeps
the message (in the spool, in the IMAP folder) and tries again later.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from ingest.health import database_unavailable
from ingest.pipeline import Arrival, Outcome, Pipeline
from ledger.models import Intake
from parser.errors import UserError

log = logging.getLogger(__name__)


def take(pipeline: Pipeline, raw: bytes, arrival: Arrival) -> Outcome | None:
    """File one message; its outcome, or None when another instance took this very arrival
    a moment ago (it is filed once, by that instance)."""
    try:
        return pipeline.process(raw, arrival)
    except Exception as exc:
        if database_unavailable(exc):
            raise
        if isinstance(exc, IntegrityError) and pipeline.recorded(arrival):
            log.warning("%s was taken by another instance", arrival.origin)
            return None
        log.exception("%s could not be stored as judged; quarantining it", arrival.origin)
        return pipeline.quarantine(raw, arrival, "processing_error", traceback.format_exc())


def _nothing(_arrival: Arrival) -> None:
    pass


def _conflict(exc: BaseException) -> bool:
    """A deadlock or serialization failure (SQLSTATE class 40): the transaction lost a race
    with another instance's, and the same work done again, smaller, goes through."""
    orig = getattr(exc, "orig", None)
    return str(getattr(orig, "sqlstate", "") or "").startswith("40")


def take_batch(
    pipeline: Pipeline,
    messages: Iterable[tuple[bytes, Arrival]],
    begin: Callable[[Arrival], None] = _nothing,
    end: Callable[[Arrival], None] = _nothing,
) -> list[tuple[Arrival, Outcome | None]]:
    """File several messages in one transaction (group commit); each one's outcome as `take`
    gives it, once all are committed. `begin` and `end` frame each message as it is judged.

    When the batch fails for a message's sake (the database refuses a row, or the
    transaction lost a race with another instance's), nothing of it is kept and every
    message is taken again one by one, so the one at fault is quarantined alone. When the
    database itself is away, that propagates, and the caller keeps them all."""
    kept: list[tuple[bytes, Arrival]] = []

    def framed(arrival: Arrival, outcome: Callable[[], Outcome | None]) -> Outcome | None:
        begin(arrival)
        try:
            return outcome()
        finally:
            end(arrival)

    try:
        with pipeline.batch() as process:
            done = []
            for raw, arrival in messages:
                kept.append((raw, arrival))
                done.append((arrival, framed(arrival, functools.partial(process, raw, arrival))))
        return done
    except Exception as exc:
        if database_unavailable(exc) and not _conflict(exc):
            raise
        log.warning("a batch of %d messages failed (%s); taking them one by one", len(kept), exc)
    return [
        (arrival, framed(arrival, functools.partial(take, pipeline, raw, arrival)))
        for raw, arrival in kept
    ]


RETRY_CHANNEL = "retry"


@dataclass(frozen=True)
class Retried:
    """A quarantined message run again: the row it was, and what became of it."""

    intake_id: int
    outcome: Outcome
    again: bool  # it had been retried before: nothing changed


def retry(pipeline: Pipeline, intake_id: int) -> Retried:
    """Run a quarantined message through the door again (`mailroom intake retry`), as it
    arrived: same mailbox, same receive time. The new run is an arrival of its own, keyed on
    the quarantined row (`retry:<id>`), so retrying twice files it once; the quarantined row
    ends `retried`, pointing at the new one."""
    with pipeline.ledger.reader() as session:
        row = session.get(Intake, intake_id)
        if row is None:
            raise UserError(f"no intake message {intake_id}")
        retried_as = (row.details or {}).get("retried_as")
        if row.state not in ("quarantined", "retried") or (
            row.state == "retried" and retried_as is None
        ):
            raise UserError(f"intake message {intake_id} is {row.state}, not quarantined")
        if row.raw is None:
            raise UserError(f"intake message {intake_id} has no raw message kept to re-run")
        raw, mailbox, received_at = row.raw.data, row.mailbox, row.received_at
        again = row.state == "retried"
    arrival = Arrival(
        mailbox=mailbox,
        channel=RETRY_CHANNEL,
        received_at=received_at,
        spool_id=f"{RETRY_CHANNEL}:{intake_id}",
    )
    outcome = take(pipeline, raw, arrival)
    assert outcome is not None  # no other instance takes a retry's own arrival
    with pipeline.ledger.transaction() as session:
        row = session.get(Intake, intake_id)
        assert row is not None
        if row.state == "quarantined":
            row.state = "retried"
            row.details = {**(row.details or {}), "retried_as": outcome.intake_id}
    return Retried(intake_id, outcome, again)
