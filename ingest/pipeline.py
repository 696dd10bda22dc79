"""The pipeline of one message: classify → parse/validate → file in the ledger → queue replies.

`process()` runs in one transaction and is idempotent on the spool id and on the IMAP origin
(account, folder, UIDVALIDITY, UID), so a message spooled or polled before a crash is processed
exactly once after restart. Anything that raises while judging a message ends `quarantined`
with the traceback, the raw message kept for a re-run; so does a message that takes longer
than `[intake] time_budget_seconds` (reason `too_slow`).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ingest.budget import WATCHDOG, TooSlow, statement_timeout
from ingest.desk import Desk
from ingest.replies import ReplyWriter, wire_bytes
from ingest.settings import IntakeSettings
from ledger.calendar import parse_period, quarter_of
from ledger.db import Ledger
from ledger.filing import (
    Sender,
    domain_is_known,
    find_duplicate,
    find_sender,
    next_tracking_no,
    queue_mail,
    refusals_since,
    unhashed_copies,
)
from ledger.models import ImapMessage, Intake, RawMessage, Submission, Unit
from ledger.rulebook import Rulebook
from ledger.solicit import match_answer
from parser import Limits, classify, decode_message, validate
from parser.decode import content_hash, identify
from parser.normalize import SIMILAR_TITLE, title_similarity
from parser.types import DecodedMessage, Problem
from parser.validate import REVISION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImapOrigin:
    """Where a polled message sits on the IMAP server: the key of its `ImapMessage` row."""

    account: str  # user@host
    folder: str
    uidvalidity: int
    uid: int


@dataclass(frozen=True)
class Arrival:
    """How a message arrived: the envelope, the mailbox, and when.

    `mail_from` is the SMTP envelope sender ("" for the null sender of bounces), or None when
    unknown (IMAP, files): then the message's `Return-Path:` stands in for it.
    """

    mailbox: str
    channel: str
    received_at: datetime
    mail_from: str | None = None
    rcpt: str = ""
    spool_id: str | None = None
    imap: ImapOrigin | None = None

    @property
    def origin(self) -> str:
        """Where the message is, in words for the log."""
        if self.imap is not None:
            return f"imap {self.imap.account}/{self.imap.folder} UID {self.imap.uid}"
        if self.spool_id is not None:
            return f"spool message {self.spool_id}"
        return f"a message by {self.channel}"


@dataclass(frozen=True)
class Outcome:
    intake_id: int
    state: str
    reasons: tuple[str, ...]
    tracking_no: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Pipeline:
    """Judges and files messages: the one way into the ledger for every door (SMTP's spool,
    IMAP, `mailroom ingest`)."""

    def __init__(
        self,
        settings: IntakeSettings,
        ledger: Ledger,
        rulebook: Rulebook,
        replies: ReplyWriter,
        desk: Desk,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.rulebook = rulebook
        self.clock = clock
        self.zone = settings.office.zone
        self.limits = Limits(
            body_chars=rulebook.body_chars,
            attachment_chars=rulebook.attachment_chars,
            clock_skew=timedelta(minutes=settings.clock_skew_minutes),
            late_report_days=settings.late_report_days,
        )
        self.replies = replies
        self.own_addresses = (*settings.mailboxes.all_addresses(), settings.office.sender.lower())
        self.desk = desk

    def process(self, raw: bytes, arrival: Arrival) -> Outcome:
        budget = self.settings.time_budget_seconds
        with self.ledger.transaction() as session:
            if session.get_bind().dialect.name == "postgresql":
                ms = int(statement_timeout(budget) * 1000)
                session.execute(text(f"SET LOCAL statement_timeout = {ms}"))
            done = self._already_processed(session, raw, arrival)
            if done is not None:
                return self._outcome(session, done)
            intake = self._new_intake(session, raw, arrival)
            try:
                with WATCHDOG.budget(budget), session.begin_nested():
                    self._judge(session, intake, raw, arrival)
            except TooSlow:
                log.warning(
                    "message %s took more than %d s; quarantined (too_slow)", intake.id, budget
                )
                error = f"filing it took more than {budget} s ([intake] time_budget_seconds)"
                self._set_aside(intake, raw, "too_slow", error)
            except Exception:
                log.exception("message %s quarantined", intake.id)
                self._set_aside(intake, raw, "processing_error", traceback.format_exc())
            intake.processed_at = self.clock()
            session.flush()
            return self._outcome(session, intake)

    def quarantine(self, raw: bytes, arrival: Arrival, reason: str, error: str) -> Outcome:
        """Record a message that could not be processed at all, raw bytes kept for a person.

        For what `process()` itself could not store (the database refused the row), or what
        the IMAP poller could not fetch whole. Idempotent like `process()`.
        """
        with self.ledger.transaction() as session:
            done = self._already_processed(session, raw, arrival)
            if done is not None:
                return self._outcome(session, done)
            intake = self._new_intake(session, raw, arrival)
            # Only the raw bytes: the row as judged was refused, perhaps for what it said.
            intake.state, intake.reasons, intake.error = "quarantined", [reason], error
            intake.processed_at = self.clock()
            session.flush()
            return self._outcome(session, intake)

    @staticmethod
    def _set_aside(intake: Intake, raw: bytes, reason: str, error: str) -> None:
        """Quarantine: the raw message is kept for a person, who finds it in the intake log by
        its Message-ID, sender and subject (read from the header block alone)."""
        intake.state, intake.reasons, intake.error = "quarantined", [reason], error
        try:
            intake.message_id, intake.from_address, intake.subject = identify(raw)
        except Exception:  # a header block the parser cannot take either: the raw bytes stay
            log.exception("message %s: its headers cannot be read either", intake.id)

    def recorded(self, arrival: Arrival) -> bool:
        """Whether an intake row holds this very arrival (its spool id or IMAP place)."""
        with self.ledger.reader() as session:
            return self._same_arrival(session, arrival) is not None

    def _same_arrival(self, session: Session, arrival: Arrival) -> Intake | None:
        if arrival.spool_id:
            done = session.scalars(
                select(Intake).where(Intake.spool_id == arrival.spool_id)
            ).first()
            if done is not None:
                return done
        origin = arrival.imap
        if origin is None:
            return None
        return session.scalars(
            select(Intake)
            .join(ImapMessage, ImapMessage.intake_id == Intake.id)
            .where(
                ImapMessage.account == origin.account,
                ImapMessage.folder == origin.folder,
                ImapMessage.uidvalidity == origin.uidvalidity,
                ImapMessage.uid == origin.uid,
            )
        ).first()

    def _already_processed(self, session: Session, raw: bytes, arrival: Arrival) -> Intake | None:
        seen = self._same_arrival(session, arrival)
        origin = arrival.imap
        if seen is not None or origin is None:
            return seen
        # After a UIDVALIDITY change the server numbers its messages afresh: one filed from
        # this folder before is recognised by its content, and only its new place is recorded.
        renumbered = session.scalars(
            select(Intake)
            .join(ImapMessage, ImapMessage.intake_id == Intake.id)
            .where(
                ImapMessage.account == origin.account,
                ImapMessage.folder == origin.folder,
                ImapMessage.uidvalidity != origin.uidvalidity,
                Intake.content_hash == content_hash(raw),
            )
            .order_by(Intake.id)
            .limit(1)
        ).first()
        if renumbered is not None:
            self._record_origin(session, renumbered, origin)
        return renumbered

    def _record_origin(self, session: Session, intake: Intake, origin: ImapOrigin) -> None:
        session.add(
            ImapMessage(
                account=origin.account,
                folder=origin.folder,
                uidvalidity=origin.uidvalidity,
                uid=origin.uid,
                intake_id=intake.id,
                seen_at=self.clock(),
            )
        )
        session.flush()

    def _new_intake(self, session: Session, raw: bytes, arrival: Arrival) -> Intake:
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
        if arrival.imap is not None:
            self._record_origin(session, intake, arrival.imap)
        return intake

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
        intake.written_hash = msg.written_hash

        if arrival.mailbox == "postmaster":
            self._to_postmaster(session, intake, msg, raw, arrival)
            return
        envelope_from = arrival.mail_from
        if envelope_from is None:
            envelope_from = msg.return_path
        not_to_answer = classify(msg, envelope_from, self.own_addresses)
        if not_to_answer:
            intake.state, intake.reasons = "ignored", [not_to_answer]
            return
        self._serialise_copies(session, msg)
        if msg.message_id:
            self._hash_older_copies(session, msg.message_id)
        earlier = find_duplicate(session, msg.message_id, msg.content_hash, msg.written_hash)
        if earlier is not None:
            intake.state, intake.reasons = "duplicate", ["duplicate"]
            intake.details = {"duplicate_of": earlier.id}
            return
        if arrival.mailbox == "desk":
            self.desk.handle(session, intake, msg, raw, arrival.rcpt, self.clock())
            return

        sender = find_sender(session, msg.from_address)
        verdict = validate(
            msg,
            sender.context if sender else None,
            self.limits,
            arrival.received_at,
            self.zone,
            mailbox=arrival.mailbox,
        )
        now = self.clock()
        if verdict.submission is None or sender is None:
            intake.state = "rejected"
            intake.reasons = [p.code for p in verdict.problems]
            self._refuse(session, intake, msg, verdict.problems, sender, arrival, now)
            return

        item = verdict.submission
        quarter = quarter_of(arrival.received_at, self.zone, self.rulebook.calendar)
        tracking_no = next_tracking_no(session, self.settings.tracking_prefix, quarter.year)
        warnings = list(verdict.warnings)
        revised: Submission | None = None
        if REVISION in item.markers:
            year = parse_period(str(quarter.year), self.zone, self.rulebook.calendar)
            revised = self._find_revised(session, sender.unit_id, item.title, year.start, year.end)
            if revised is None:
                warnings.append(Problem.of("revision_without_original"))
            else:
                revised.status = "superseded"
                intake.details = {**intake.details, "supersedes": revised.tracking_no}
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
            approver=item.signoff.approver or "",
            status="filed",
            warnings=[w.code for w in warnings],
            supersedes_id=revised.id if revised else None,
        )
        session.add(filed)
        session.flush()
        intake.state = "filed"
        intake.reasons = [w.code for w in warnings]
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
            warnings=tuple(warnings),
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
        session.flush()
        unit = session.get(Unit, sender.unit_id)
        assert unit is not None
        self.desk.forward(session, filed, unit, raw, tuple(warnings), now)

    def _to_postmaster(
        self, session: Session, intake: Intake, msg: DecodedMessage, raw: bytes, arrival: Arrival
    ) -> None:
        """Mail to postmaster goes to the operator (`[mailboxes] postmaster`), or stays in the
        intake log when none is set; nothing else is done with it."""
        intake.state, intake.reasons = "ignored", ["postmaster"]
        operator = self.settings.mailboxes.postmaster
        if not operator:
            return
        now = self.clock()
        forward = self.replies.postmaster_forward(
            to=operator,
            original=msg,
            raw=raw,
            envelope_from=arrival.mail_from or "",
            recipient=arrival.rcpt,
            received_at=arrival.received_at,
            now=now,
        )
        queue_mail(
            session,
            kind="postmaster",
            to_address=operator,
            subject=str(forward["Subject"]),
            message=wire_bytes(forward),
            now=now,
            intake_id=intake.id,
        )

    def _serialise_copies(self, session: Session, msg: DecodedMessage) -> None:
        """On PostgreSQL, two copies of one message (SMTP and IMAP at once) are judged in turn.

        A transaction lock keyed on the Message-ID makes the second wait for the first to
        commit, so it sees the first and ends `duplicate`. (SQLite already runs one writer.)
        """
        if session.get_bind().dialect.name != "postgresql":
            return
        key = msg.message_id or msg.content_hash
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 4))"), {"key": key}
        )

    @staticmethod
    def _hash_older_copies(session: Session, message_id: str) -> None:
        """Rows judged before `written_hash` was kept get it now, from their raw message,
        so that one rule (`find_duplicate`) judges copies of old and new messages alike."""
        for row in unhashed_copies(session, message_id):
            row.written_hash = (
                decode_message(row.raw.data).written_hash if row.raw is not None else "none"
            )
        session.flush()

    @staticmethod
    def _find_revised(
        session: Session, unit_id: int, title: str, start: datetime, end: datetime
    ) -> Submission | None:
        """The item a revision (修改稿, SPEC §3.5) supersedes: the unit's filed item of the same
        assessment year with the same or most similar title (the latest among equals)."""
        rows = session.scalars(
            select(Submission)
            .where(
                Submission.unit_id == unit_id,
                Submission.status == "filed",
                Submission.received_at >= start,
                Submission.received_at < end,
            )
            .order_by(Submission.received_at.desc(), Submission.id.desc())
        ).all()
        best: tuple[float, Submission] | None = None
        for row in rows:
            floor = SIMILAR_TITLE if best is None else max(SIMILAR_TITLE, best[0])
            score = title_similarity(title, row.title, at_least=floor)
            if score >= SIMILAR_TITLE and (best is None or score > best[0]):
                best = (score, row)
        return best[1] if best else None

    def _refuse(
        self,
        session: Session,
        intake: Intake,
        msg: DecodedMessage,
        problems: tuple[Problem, ...],
        sender: Sender | None,
        arrival: Arrival,
        now: datetime,
    ) -> None:
        """Queue the refusal, unless it would be backscatter: no reply to a foreign domain,
        and at most so many refusals an hour to one mailbox (+tags folded) and one domain.
        Only a registered officer reads the message's own words back (subject, problems);
        an unregistered address gets a fixed text that quotes nothing."""
        to = msg.from_address
        if not to:
            intake.reasons = [*intake.reasons, "no_reply_address"]
            return
        settings = self.settings
        domain = to.rpartition("@")[2]
        if sender is None and not domain_is_known(session, domain, settings.known_domains):
            # No backscatter to forged or foreign senders (SPEC §3.2).
            intake.reasons = [*intake.reasons, "no_reply_unknown_domain"]
            return
        sent = refusals_since(session, to, now - timedelta(hours=1))
        if (
            sent.mailbox >= settings.refusals_per_hour
            or sent.domain >= settings.refusals_per_hour_per_domain
        ):
            intake.reasons = [*intake.reasons, "refusal_rate_limited"]
            return
        if sender is None:
            refusal = self.replies.refusal_unregistered(
                to=to, original=msg, received_at=arrival.received_at, now=now
            )
        else:
            refusal = self.replies.refusal(
                to=to,
                original=msg,
                addressee=sender.context.unit_name,
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
