"""The pipeline of one message: classify → parse/validate → file in the ledger → queue replies.

`process()` runs in one transaction and is idempotent on the spool id, so a message spooled
before a crash is processed exactly once after restart. Anything that raises while judging a
message ends `quarantined` with the traceback, the raw message kept for a re-run.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.replies import ReplyWriter, wire_bytes
from ledger.calendar import quarter_of
from ledger.db import Ledger
from ledger.filing import (
    domain_is_known,
    find_duplicate,
    find_sender,
    next_tracking_no,
    queue_mail,
    refusals_since,
)
from ledger.models import Intake, RawMessage, Submission
from ledger.rulebook import Rulebook
from ledger.solicit import match_answer
from mailroom.config import Config
from parser import Limits, classify, decode_message, validate
from parser.types import DecodedMessage, Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arrival:
    """How a message arrived: the envelope, the mailbox, and when."""

    mailbox: str
    channel: str
    received_at: datetime
    mail_from: str | None = None
    rcpt: str = ""
    spool_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    intake_id: int
    state: str
    reasons: tuple[str, ...]
    tracking_no: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Pipeline:
    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        rulebook: Rulebook,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.rulebook = rulebook
        self.clock = clock
        self.zone = config.reports.zone
        self.limits = Limits(
            body_chars=rulebook.body_chars,
            attachment_chars=rulebook.attachment_chars,
            clock_skew=timedelta(minutes=config.intake.clock_skew_minutes),
            late_report_days=config.intake.late_report_days,
        )
        self.replies = ReplyWriter(
            sender=config.sender_address, sender_name=config.outbound.from_name, zone=self.zone
        )
        self.own_addresses = (*config.mailboxes.all_addresses(), config.sender_address.lower())

    def process(self, raw: bytes, arrival: Arrival) -> Outcome:
        with self.ledger.transaction() as session:
            if arrival.spool_id:
                done = session.scalars(
                    select(Intake).where(Intake.spool_id == arrival.spool_id)
                ).first()
                if done is not None:
                    return self._outcome(session, done)
            intake = Intake(
                spool_id=arrival.spool_id,
                channel=arrival.channel,
                mailbox=arrival.mailbox,
                envelope_from=arrival.mail_from or "",
                envelope_to=arrival.rcpt,
                received_at=arrival.received_at,
                state="received",
                reasons=[],
                details={},
                size=len(raw),
            )
            intake.raw = RawMessage(data=raw)
            session.add(intake)
            session.flush()
            try:
                with session.begin_nested():
                    self._judge(session, intake, raw, arrival)
            except Exception:
                log.exception("message %s quarantined", intake.id)
                intake.state = "quarantined"
                intake.reasons = ["processing_error"]
                intake.error = traceback.format_exc()
            intake.processed_at = self.clock()
            session.flush()
            return self._outcome(session, intake)

    def _outcome(self, session: Session, intake: Intake) -> Outcome:
        tracking = session.scalar(
            select(Submission.tracking_no).where(Submission.intake_id == intake.id)
        )
        return Outcome(intake.id, intake.state, tuple(intake.reasons), tracking)

    def _judge(self, session: Session, intake: Intake, raw: bytes, arrival: Arrival) -> None:
        msg = decode_message(raw)
        intake.message_id = msg.message_id
        intake.from_address = msg.from_address
        intake.subject = msg.subject
        intake.content_hash = msg.content_hash

        not_to_answer = classify(msg, arrival.mail_from, self.own_addresses)
        if not_to_answer:
            intake.state, intake.reasons = "ignored", [not_to_answer]
            return
        earlier = find_duplicate(session, msg.message_id, msg.content_hash)
        if earlier is not None and earlier.id != intake.id:
            intake.state, intake.reasons = "duplicate", ["duplicate"]
            intake.details = {"duplicate_of": earlier.id}
            return
        if arrival.mailbox == "desk":
            # Editors' commands arrive with the editors' desk (a later stage of the product).
            intake.state, intake.reasons = "command_refused", ["commands_not_enabled"]
            return

        sender = find_sender(session, msg.from_address)
        verdict = validate(
            msg,
            sender.context if sender else None,
            self.limits,
            arrival.received_at,
            self.zone,
        )
        now = self.clock()
        if verdict.submission is None or sender is None:
            intake.state = "rejected"
            intake.reasons = [p.code for p in verdict.problems]
            self._refuse(session, intake, msg, verdict.problems, arrival, now)
            return

        item = verdict.submission
        quarter = quarter_of(arrival.received_at, self.zone, self.rulebook.calendar)
        tracking_no = next_tracking_no(session, self.config.intake.tracking_prefix, quarter.year)
        filed = Submission(
            tracking_no=tracking_no,
            intake_id=intake.id,
            unit_id=sender.unit_id,
            author_id=sender.person_id,
            mailbox=arrival.mailbox,
            received_at=arrival.received_at,
            title=item.title,
            body=item.body,
            body_chars=item.body_chars,
            attachment_name=item.attachment_name,
            attachment_chars=item.attachment_chars,
            signoff_unit=item.signoff.unit or "",
            signoff_author=item.signoff.author or "",
            signoff_phone=item.signoff.phone or "",
            signoff_date=item.signoff.date,
            status="filed",
            warnings=[w.code for w in verdict.warnings],
        )
        session.add(filed)
        session.flush()
        intake.state = "filed"
        intake.reasons = [w.code for w in verdict.warnings]
        if "solicited" in item.markers or arrival.mailbox == "solicited":
            # An answer to a 约稿 (SPEC §5.5); a late first answer records the deduction.
            answer = match_answer(
                session,
                self.rulebook,
                filed,
                subject=msg.subject,
                references=(*msg.references, *((msg.in_reply_to,) if msg.in_reply_to else ())),
            )
            if answer is not None:
                intake.details = {
                    **intake.details,
                    "solicitation_id": answer.solicitation_id,
                    "late": answer.late,
                }
        receipt = self.replies.receipt(
            to=msg.from_address,
            original=msg,
            unit_name=sender.context.unit_name,
            tracking_no=tracking_no,
            title=item.title,
            body_chars=item.body_chars,
            body_limit=self.limits.body_chars,
            attachment_name=item.attachment_name,
            attachment_chars=item.attachment_chars,
            attachment_limit=self.limits.attachment_chars,
            received_at=arrival.received_at,
            quarter=quarter.label,
            warnings=verdict.warnings,
            now=now,
        )
        queue_mail(
            session,
            kind="receipt",
            to_address=msg.from_address,
            subject=str(receipt["Subject"]),
            message=wire_bytes(receipt),
            now=now,
            intake_id=intake.id,
        )

    def _refuse(
        self,
        session: Session,
        intake: Intake,
        msg: DecodedMessage,
        problems: tuple[Problem, ...],
        arrival: Arrival,
        now: datetime,
    ) -> None:
        to = msg.from_address
        if not to:
            intake.reasons = [*intake.reasons, "no_reply_address"]
            return
        codes = {p.code for p in problems}
        domain = to.rpartition("@")[2]
        if "unknown_sender" in codes and not domain_is_known(
            session, domain, self.config.security.known_domains
        ):
            # No backscatter to forged or foreign senders (SPEC §3.2).
            intake.reasons = [*intake.reasons, "no_reply_unknown_domain"]
            return
        limit = self.config.security.refusals_per_hour
        if refusals_since(session, to, now - timedelta(hours=1)) >= limit:
            intake.reasons = [*intake.reasons, "refusal_rate_limited"]
            return
        refusal = self.replies.refusal(
            to=to,
            original=msg,
            addressee=msg.from_name or to,
            problems=problems,
            received_at=arrival.received_at,
            now=now,
        )
        queue_mail(
            session,
            kind="refusal",
            to_address=to,
            subject=str(refusal["Subject"]),
            message=wire_bytes(refusal),
            now=now,
            intake_id=intake.id,
        )
