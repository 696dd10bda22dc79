"""The pipeline of one message: screen → route → judge → file → answer, in one transaction.

`process()` is idempotent on the spool id and on the IMAP origin (account, folder, UIDVALIDITY,
UID), so a message spooled or polled before a crash is processed exactly once after restart.
The disposition is a chain of small steps (`Pipeline.steps`), read top to bottom: each looks
at the message (a `Case`), and either settles its state or passes it on. Anything that raises
while judging ends `quarantined` with the traceback, the raw message kept for a re-run; so
does a message that takes longer than `[intake] time_budget_seconds` (reason `too_slow`).
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest.budget import WATCHDOG, TooLong, TooSlow, statement_timeout, wall_limit
from ingest.desk import Desk
from ingest.replies import ReplyWriter
from ingest.settings import IntakeSettings
from ledger import intake as intake_log
from ledger import similar
from ledger.bounces import ReturnPaths, record_bounce
from ledger.calendar import parse_period, quarter_of
from ledger.compose import Mail
from ledger.db import Ledger
from ledger.filing import (
    FormerOfficer,
    Sender,
    approver_roles,
    domain_is_known,
    file_submission,
    find_sender,
    former_officer,
    next_tracking_no,
    refusals_since,
    unit_items_of,
)
from ledger.intake import ImapOrigin
from ledger.models import Intake, Submission
from ledger.outbox import enqueue_copies
from ledger.rulebook import Rulebook
from ledger.solicit import match_answer
from ledger.status import answers_since, item_status, unit_status
from parser import Limits, classify, decode_message, validate
from parser.bounce import read_bounce
from parser.classify import BOUNCE
from parser.commands import parse_status_query
from parser.decode import content_hash, identify
from parser.normalize import SIMILAR_TITLE, title_similarity
from parser.similar import Fingerprint
from parser.types import DecodedMessage, Problem, Verdict
from parser.types import Submission as ParsedItem
from parser.validate import REVISION

log = logging.getLogger(__name__)

__all__ = ["Arrival", "ImapOrigin", "Outcome", "Pipeline"]


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


@dataclass
class Case:
    """One message being judged: what the steps of the chain read, and what they found."""

    session: Session
    intake: Intake
    raw: bytes
    arrival: Arrival
    msg: DecodedMessage
    now: datetime
    sender: Sender | None = None
    former: FormerOfficer | None = None  # an officer out of office on the day it arrived
    verdict: Verdict | None = None
    warnings: list[Problem] = field(default_factory=list)
    importance: str = ""  # its grade, under a rulebook that grades items
    filed: Submission | None = None
    similar: tuple[similar.Match, ...] = ()  # other units' near-identical items (撒网式报送)

    def queue(self, kind: str, to: str, mail: Mail) -> None:
        """Put a mail of ours about this message in the outbox, in the message's transaction:
        written at once, one Core statement (no row object: nothing reads it back)."""
        enqueue_copies(
            self.session,
            kind=kind,
            copies=[(to, mail.wire)],
            subject=mail.subject,
            now=self.now,
            intake_id=self.intake.id,
        )

    def settle(self, state: str, reasons: list[str]) -> bool:
        self.intake.state, self.intake.reasons = state, reasons
        return True


Step = Callable[[Case], bool]  # True: the message's state is settled, the chain ends


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Pipeline:
    """Judges and files messages: the one way into the ledger for every door (SMTP's spool,
    IMAP, `mailroom ingest`), through `ingest.door.take`."""

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
            required_signoff=rulebook.required_signoff,
            importance_words=rulebook.importance_words,
        )
        self.replies = replies
        self.own_addresses = (*settings.mailboxes.all_addresses(), settings.office.sender.lower())
        self.return_paths = ReturnPaths(settings.office.sender, settings.reply_key_secret)
        self.desk = desk
        self._unhashed_left = True  # until the ledger says otherwise (`_unhashed_rows_left`)
        # The disposition, in order: screen, route, judge, file, answer.
        self.steps: tuple[Step, ...] = (
            self.postmaster,  # screen: mail to postmaster is the operator's
            self.automatic,  # screen: auto-replies, bounces, lists, our own mail: ignored
            self.duplicate,  # screen: a copy of a message judged before
            self.status_query,  # route: an officer's 查询, answered for their own unit
            self.to_desk,  # route: an editor's command
            self.judge,  # judge: a submission, or a refusal naming every problem
            self.file,  # file: numbered, revisions superseding, 约稿 matched
            self.answer,  # answer: the receipt, and the forward to the desk
        )

    # --- the transaction --------------------------------------------------------------------

    def process(self, raw: bytes, arrival: Arrival) -> Outcome:
        """Judge and file one message in a transaction of its own."""
        with self.batch() as process:
            return process(raw, arrival)

    @contextmanager
    def batch(self) -> Iterator[Callable[[bytes, Arrival], Outcome]]:
        """One transaction for several messages (group commit): the function it gives judges
        and files each, as `process` does, and all of them are committed together when the
        block ends, or none. Each message is judged in a savepoint of its own, so one that
        fails to judge is quarantined without undoing the others."""
        with self.ledger.transaction() as session:
            if session.get_bind().dialect.name == "postgresql":
                ms = int(statement_timeout(self.settings.time_budget_seconds) * 1000)
                session.execute(text(f"SET LOCAL statement_timeout = {ms}"))
            yield functools.partial(self._process_in, session)

    def _process_in(self, session: Session, raw: bytes, arrival: Arrival) -> Outcome:
        budget = self.settings.time_budget_seconds
        done = self._already_processed(session, raw, arrival)
        if done is not None:
            return self._outcome(session, done)
        filed: Submission | None = None
        taken = False  # the intake row was refused: this very arrival is another instance's
        try:
            # The budget ends inside the savepoint: a TooSlow that lands as the block ends
            # rolls the judgement back with it, never after it was kept. The intake row is
            # written in it too, once the message is decoded, so that what the message says
            # of itself goes in with the row instead of a second write of it.
            with session.begin_nested(), WATCHDOG.budget(budget):
                msg = decode_message(raw)
                try:
                    intake = self._new_intake(session, raw, arrival, msg)
                except IntegrityError:
                    taken = True
                    raise
                filed = self._judge(session, intake, raw, arrival, msg)
        except TooSlow as exc:
            # Whatever the savepoint held (the intake row too) is undone: a row of its own.
            filed = None
            intake = self._new_intake(session, raw, arrival)
            if isinstance(exc, TooLong):
                what = f"{wall_limit(budget):g} s on the wall (waiting, or given no CPU)"
            else:
                what = f"{budget} s of CPU time"
            log.warning("message %s took more than %s; quarantined (too_slow)", intake.id, what)
            error = f"filing it took more than {what} ([intake] time_budget_seconds)"
            self._set_aside(intake, raw, "too_slow", error)
        except Exception:
            if taken:
                raise  # for `ingest.door.take`, which tells a taken arrival from a refusal
            filed = None
            error = traceback.format_exc()
            intake = self._new_intake(session, raw, arrival)
            log.exception("message %s quarantined", intake.id)
            self._set_aside(intake, raw, "processing_error", error)
        session.flush()  # what the database refuses of this message is told here, not later
        tracking = filed.tracking_no if filed is not None else None
        return Outcome(intake.id, intake.state, tuple(intake.reasons), tracking)

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
            session.flush()
            return self._outcome(session, intake)

    def recorded(self, arrival: Arrival) -> bool:
        """Whether an intake row holds this very arrival (its spool id or IMAP place)."""
        with self.ledger.reader() as session:
            found = intake_log.same_arrival(session, arrival.spool_id, arrival.imap)
            return found is not None

    @staticmethod
    def _set_aside(intake: Intake, raw: bytes, reason: str, error: str) -> None:
        """Quarantine: the raw message is kept for a person, who finds it in the intake log by
        its Message-ID, sender and subject (read from the header block alone)."""
        intake.state, intake.reasons, intake.error = "quarantined", [reason], error
        try:
            intake.message_id, intake.from_address, intake.subject = identify(raw)
        except Exception:  # a header block the parser cannot take either: the raw bytes stay
            log.exception("message %s: its headers cannot be read either", intake.id)

    def _already_processed(self, session: Session, raw: bytes, arrival: Arrival) -> Intake | None:
        seen = intake_log.same_arrival(session, arrival.spool_id, arrival.imap)
        if seen is not None or arrival.imap is None:
            return seen
        # A renumbered folder: the message filed before is recognised by its content, and
        # only its new place is recorded.
        moved = intake_log.renumbered(session, arrival.imap, content_hash(raw))
        if moved is not None:
            intake_log.record_place(session, moved, arrival.imap, self.clock())
        return moved

    def _new_intake(
        self, session: Session, raw: bytes, arrival: Arrival, msg: DecodedMessage | None = None
    ) -> Intake:
        return intake_log.new_intake(
            session,
            raw,
            spool_id=arrival.spool_id,
            channel=arrival.channel,
            mailbox=arrival.mailbox,
            envelope_from=arrival.mail_from or "",
            envelope_to=arrival.rcpt,
            received_at=arrival.received_at,
            imap=arrival.imap,
            now=self.clock(),
            message=msg,
        )

    @staticmethod
    def _outcome(session: Session, intake: Intake) -> Outcome:
        tracking = intake_log.tracking_no_of(session, intake.id)
        return Outcome(intake.id, intake.state, tuple(intake.reasons), tracking)

    def _judge(
        self, session: Session, intake: Intake, raw: bytes, arrival: Arrival, msg: DecodedMessage
    ) -> Submission | None:
        """The chain of steps; the item filed, if it was."""
        case = Case(session, intake, raw, arrival, msg, self.clock())
        for step in self.steps:
            if step(case):
                break
        return case.filed

    # --- the steps, in order ----------------------------------------------------------------

    def postmaster(self, case: Case) -> bool:
        """Mail to postmaster goes to the operator (`[mailboxes] postmaster`), or stays in the
        intake log when none is set; nothing else is done with it."""
        if case.arrival.mailbox != "postmaster":
            return False
        operator = self.settings.mailboxes.postmaster
        if operator:
            forward = self.replies.postmaster_forward(
                to=operator,
                original=case.msg,
                raw=case.raw,
                envelope_from=case.arrival.mail_from or "",
                recipient=case.arrival.rcpt,
                received_at=case.arrival.received_at,
                now=case.now,
            )
            case.queue("postmaster", operator, forward)
        return case.settle("ignored", ["postmaster"])

    def automatic(self, case: Case) -> bool:
        """No answer ever to an auto-reply, a bounce, a mailing list or our own mail."""
        envelope_from = case.arrival.mail_from
        if envelope_from is None:
            envelope_from = case.msg.return_path
        reason = classify(case.msg, envelope_from, self.own_addresses)
        if not reason:
            return False
        if reason == BOUNCE:
            self._bounced(case)
        return case.settle("ignored", [reason])

    def _bounced(self, case: Case) -> None:
        """A bounce of our own mail marks its outbox row `bounced` (`ledger.bounces`): the row
        its return path names (the MAC checked), or the row whose Message-ID it returns when
        the report names that row's recipient."""
        bounce = read_bounce(case.msg)
        addresses = (case.arrival.rcpt, *case.msg.recipients)
        named = self.return_paths.row_named(case.session, addresses, case.now)
        matched = record_bounce(case.session, bounce, named, case.now)
        case.intake.details = {**case.intake.details, **matched.details()}
        if matched.marked:
            log.warning(
                "outbox %s to %s bounced (%s): %s",
                matched.row_id, matched.recipient, matched.how, matched.reason,
            )  # fmt: skip

    def duplicate(self, case: Case) -> bool:
        """A copy of a message judged before (an SMTP retry, the IMAP copy of a mail that also
        came by SMTP, a forward): the same Message-ID and what the same sender wrote."""
        session, msg = case.session, case.msg
        if session.get_bind().dialect.name == "postgresql":
            # Two copies at once are judged in turn: a transaction lock keyed on the
            # Message-ID makes the second wait for the first's commit and see it.
            key = msg.message_id or msg.content_hash
            session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 4))"), {"key": key}
            )
        if msg.message_id and self._unhashed_rows_left(session):
            # Rows judged before `written_hash` was kept get it now, from their raw bytes.
            for row in intake_log.unhashed_copies(session, msg.message_id):
                row.written_hash = (
                    decode_message(row.raw.data).written_hash if row.raw is not None else "none"
                )
            session.flush()
        earlier = intake_log.find_duplicate(
            session, msg.message_id, msg.content_hash, msg.written_hash
        )
        if earlier is None:
            return False
        case.intake.details = {"duplicate_of": earlier.id}
        return case.settle("duplicate", ["duplicate"])

    def _unhashed_rows_left(self, session: Session) -> bool:
        """Whether the ledger still holds judged rows from before `written_hash` was kept.
        Once it holds none it never will again (every row judged since has its hash), so the
        question is asked of the database until the answer is no, then never again."""
        if self._unhashed_left:
            self._unhashed_left = intake_log.any_unhashed(session)
        return self._unhashed_left

    def status_query(self, case: Case) -> bool:
        """`查询` from a unit's officer in office: their own unit's figures, by return. Anyone
        else gets nothing (mail to the desk then goes on to the editors' commands)."""
        mailbox = case.arrival.mailbox
        if mailbox not in ("daily", "desk"):
            return False
        query = parse_status_query(case.msg.subject or "")
        if query is None:
            return False
        at = case.arrival.received_at
        sender = find_sender(case.session, case.msg.from_address, at.astimezone(self.zone).date())
        if sender is None:
            return False if mailbox == "desk" else case.settle("ignored", ["status_query_stranger"])
        to = case.msg.from_address
        if answers_since(case.session, to, case.now - timedelta(hours=1)) >= (
            self.settings.status_queries_per_hour
        ):
            return case.settle("command_refused", ["status_query", "status_query_rate_limited"])
        unit_name = sender.context.unit_name
        calendar = self.rulebook.calendar
        reasons = ["status_query"]
        if query.tracking_no is not None:
            item = case.session.scalar(
                select(Submission).where(
                    Submission.tracking_no == query.tracking_no,
                    Submission.unit_id == sender.unit_id,
                )
            )
            if item is None:
                # Another unit's number and no number at all read the same: nothing is told.
                reasons.append("status_query_not_own_item")
                answer = self.replies.status(
                    to=to, original=case.msg, unit_name=unit_name, now=case.now,
                    not_own_item=query.tracking_no,
                )  # fmt: skip
            else:
                answer = self.replies.status(
                    to=to, original=case.msg, unit_name=unit_name, now=case.now,
                    item=item_status(case.session, self.rulebook, item),
                )  # fmt: skip
        else:
            label = query.period or quarter_of(at, self.zone, calendar).label
            try:
                period = parse_period(label, self.zone, calendar)
            except ValueError:
                period = None
            if period is None:
                reasons.append("status_query_bad_period")
                answer = self.replies.status(
                    to=to, original=case.msg, unit_name=unit_name, now=case.now,
                    bad_period=label,
                )  # fmt: skip
            else:
                found = unit_status(
                    case.session, self.rulebook, sender.unit_id, period, self.zone, case.now
                )
                sequence = found.standing.sequence if found.standing else ""
                answer = self.replies.status(
                    to=to, original=case.msg, unit_name=unit_name, now=case.now, found=found,
                    sequence_name=self.rulebook.sequence_name(sequence) if sequence else "",
                )  # fmt: skip
        case.queue("status", to, answer)
        state = "command" if len(reasons) == 1 else "command_refused"
        return case.settle(state, reasons)

    def to_desk(self, case: Case) -> bool:
        if case.arrival.mailbox != "desk":
            return False
        self.desk.handle(case.session, case.intake, case.msg, case.raw, case.arrival.rcpt, case.now)
        return True

    def judge(self, case: Case) -> bool:
        """Every element checked (SPEC §3.3–§3.5); a refusal names each problem."""
        day = case.arrival.received_at.astimezone(self.zone).date()
        case.sender = find_sender(case.session, case.msg.from_address, day)
        if case.sender is None:
            former = former_officer(case.session, case.msg.from_address, day)
            if former is not None:
                # Registered once, out of office now: told so, and who holds the post.
                case.former = former
                problem = Problem.of(
                    "inactive_sender",
                    address=case.msg.from_address,
                    until=former.active_to.isoformat() if former.active_to else "",
                    current="、".join(former.current),
                )
                case.settle("rejected", [problem.code])
                self._refuse(case, (problem,))
                return True
        case.verdict = validate(
            case.msg,
            case.sender.context if case.sender else None,
            self.limits,
            case.arrival.received_at,
            self.zone,
            mailbox=case.arrival.mailbox,
        )
        if case.verdict.submission is not None and case.sender is not None:
            signed = self._signed_off(case, case.verdict.submission, case.sender.unit_id)
            if signed is None:
                case.warnings = list(case.verdict.warnings)
                return False
            problems: tuple[Problem, ...] = (signed,)
            case.settle("rejected", [signed.code])
            self._refuse(case, problems)
            return True
        problems = case.verdict.problems
        case.settle("rejected", [p.code for p in problems])
        self._refuse(case, problems)
        return True

    def _signed_off(self, case: Case, item: ParsedItem, unit_id: int) -> Problem | None:
        """Under a rulebook that grades importance, the approver the sign-off names must be a
        registered person of the unit in a role that may sign an item of its grade."""
        grade = self.rulebook.grade_for(item.importance_word)
        if grade is None:
            return None
        case.importance = grade.name
        approver = item.signoff.approver or ""
        roles = approver_roles(case.session, unit_id, approver)
        allowed = ",".join(grade.approvers)
        if not roles:
            return Problem.of(
                "unknown_approver", approver=approver, grade=grade.name, roles=allowed
            )
        if not roles & set(grade.approvers):
            return Problem.of(
                "approver_rank_too_low", approver=approver, grade=grade.name, roles=allowed
            )
        return None

    def file(self, case: Case) -> bool:
        """The item filed under the next tracking number of its assessment year."""
        assert case.verdict is not None and case.sender is not None
        item = case.verdict.submission
        assert item is not None
        received_at = case.arrival.received_at
        quarter = quarter_of(received_at, self.zone, self.rulebook.calendar)
        tracking_no = next_tracking_no(case.session, self.settings.tracking_prefix, quarter.year)
        revised = None
        if REVISION in item.markers:
            year = parse_period(str(quarter.year), self.zone, self.rulebook.calendar)
            revised = self._find_revised(case, item.title, year.start, year.end)
            if revised is None:
                case.warnings.append(Problem.of("revision_without_original"))
            else:
                case.intake.details = {**case.intake.details, "supersedes": revised.tracking_no}
        case.filed = file_submission(
            case.session,
            intake=case.intake,
            sender=case.sender,
            item=item,
            mailbox=case.arrival.mailbox,
            received_at=received_at,
            tracking_no=tracking_no,
            warnings=[w.code for w in case.warnings],
            supersedes=revised,
            importance=case.importance,
        )
        case.settle("filed", [w.code for w in case.warnings])
        self._look_alike(case, case.filed)
        if "solicited" in item.markers or case.arrival.mailbox == "solicited":
            # An answer to a 约稿 (SPEC §5.5); a late first answer records the deduction.
            msg = case.msg
            answer = match_answer(
                case.session,
                self.rulebook,
                case.filed,
                subject=msg.subject,
                references=(*msg.references, *((msg.in_reply_to,) if msg.in_reply_to else ())),
            )
            if answer is not None:
                case.intake.details = {
                    **case.intake.details,
                    "solicitation_id": answer.solicitation_id,
                    "late": answer.late,
                }
        return False

    def answer(self, case: Case) -> bool:
        """The receipt to the officer, and the item forwarded to every editor."""
        assert case.filed is not None and case.sender is not None and case.verdict is not None
        filed, msg, item = case.filed, case.msg, case.verdict.submission
        assert item is not None
        quarter = quarter_of(filed.received_at, self.zone, self.rulebook.calendar)
        receipt = self.replies.receipt(
            to=msg.from_address,
            original=msg,
            unit_name=case.sender.context.unit_name,
            tracking_no=filed.tracking_no,
            title=item.title,
            body_chars=item.body_chars,
            body_limit=self.limits.body_chars,
            attachment_name=item.attachment_name,
            attachment_chars=item.attachment_chars,
            attachment_limit=self.limits.attachment_chars,
            received_at=filed.received_at,
            quarter=quarter.label,
            warnings=tuple(case.warnings),
            now=case.now,
            importance=filed.importance,
            approver=filed.approver,
        )
        case.queue("receipt", msg.from_address, receipt)
        self.desk.forward(
            case.session,
            filed,
            case.sender.unit,
            case.raw,
            tuple(case.warnings),
            case.now,
            case.similar,
        )
        return True

    # --- what the steps share ---------------------------------------------------------------

    def _look_alike(self, case: Case, filed: Submission) -> None:
        """Other units' items of the window near-identical to this one (撒网式报送): recorded
        for the editors, who decide; the item's band keys kept for the items after it. A
        unit's own revision (修改稿) is not looked at: only other units' items are."""
        days = self.settings.similar_window_days
        if not days:
            return
        window = timedelta(days=days)
        fingerprint = Fingerprint.of(filed.body)
        matches = similar.find(
            case.session,
            fingerprint,
            unit_id=filed.unit_id,
            received_at=filed.received_at,
            window=window,
            threshold=self.settings.similar_threshold,
        )
        similar.record(case.session, filed, matches, case.now)
        similar.index(case.session, filed, fingerprint)
        # Relative to the item's receipt, not the clock: an item filed late with its receive
        # time (staff) prunes nothing a current item still needs.
        similar.prune(case.session, filed.received_at - window, filed.id)
        case.similar = tuple(matches)
        if matches:
            numbers = [m.item.tracking_no for m in matches]
            case.intake.details = {**case.intake.details, "similar_to": numbers}

    @staticmethod
    def _find_revised(case: Case, title: str, start: datetime, end: datetime) -> Submission | None:
        """The item a revision (修改稿, SPEC §3.5) supersedes: the unit's filed item of the same
        assessment year with the same or most similar title (the latest among equals)."""
        assert case.sender is not None
        best: tuple[float, Submission] | None = None
        for row in unit_items_of(case.session, case.sender.unit_id, start, end):
            floor = SIMILAR_TITLE if best is None else max(SIMILAR_TITLE, best[0])
            score = title_similarity(title, row.title, at_least=floor)
            if score >= SIMILAR_TITLE and (best is None or score > best[0]):
                best = (score, row)
        return best[1] if best else None

    def _refuse(self, case: Case, problems: tuple[Problem, ...]) -> None:
        """Queue the refusal, unless it would be backscatter: no reply to a foreign domain,
        and at most so many refusals an hour to one mailbox (+tags folded) and one domain.
        Only a registered officer reads the message's own words back (subject, problems);
        an unregistered address gets a fixed text that quotes nothing."""
        intake, msg, sender, now = case.intake, case.msg, case.sender, case.now
        to = msg.from_address
        if not to:
            intake.reasons = [*intake.reasons, "no_reply_address"]
            return
        settings = self.settings
        domain = to.rpartition("@")[2]
        if sender is None and not domain_is_known(case.session, domain, settings.known_domains):
            # No backscatter to forged or foreign senders (SPEC §3.2).
            intake.reasons = [*intake.reasons, "no_reply_unknown_domain"]
            return
        sent = refusals_since(case.session, to, now - timedelta(hours=1))
        if (
            sent.mailbox >= settings.refusals_per_hour
            or sent.domain >= settings.refusals_per_hour_per_domain
        ):
            intake.reasons = [*intake.reasons, "refusal_rate_limited"]
            return
        received_at = case.arrival.received_at
        addressee = (
            sender.context.unit_name if sender else case.former.unit_name if case.former else None
        )
        if addressee is None:
            refusal = self.replies.refusal_unregistered(
                to=to, original=msg, received_at=received_at, now=now
            )
        else:
            refusal = self.replies.refusal(
                to=to,
                original=msg,
                addressee=addressee,
                problems=problems,
                received_at=received_at,
                now=now,
            )
        case.queue("refusal", to, refusal)
