"""约稿 (SPEC §5.5): open, list and close solicitations; match answers; lateness; reminders.

Each target unit has its own state: `answered` (first answer by the deadline), `late` (first
answer after it), `missing` (no answer and the deadline has passed) or `pending`. The first
late answer records the rulebook's late deduction, keyed `solicit-late:<id>:<unit>` so that a
second late answer (or a re-run) never deducts again; a target with no answer at the deadline
records the rulebook's missing deduction (`deduct_missing`) under the same key, so a unit that
answers late after that is not deducted twice for the one 约稿. Notices and reminders are
claimed per (solicitation, unit, kind) with a unique key, so each goes out once whatever the
timing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.models import (
    Person,
    Solicitation,
    SolicitationAnswer,
    SolicitationMail,
    SolicitationTarget,
    Submission,
    Unit,
)
from ledger.rulebook import Rulebook, name_key
from ledger.scoring import record_deduction
from parser.errors import UserError

SYSTEM = "mailroom"


class SolicitError(UserError):
    """A 约稿 command that cannot be carried out; the message names the code or unit."""


@dataclass(frozen=True)
class TargetState:
    unit_code: str
    unit_name: str
    state: str  # answered, late, missing, pending
    answered_at: datetime | None
    tracking_no: str | None


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise SolicitError("times of a 约稿 must carry their time zone")
    return at


def get_solicitation(session: Session, code: str) -> Solicitation:
    row = session.scalars(select(Solicitation).where(Solicitation.code == code.strip())).first()
    if row is None:
        raise SolicitError(f"no 约稿 with code {code}")
    return row


def open_solicitation(
    session: Session,
    code: str,
    topic: str,
    deadline: datetime,
    *,
    units: Sequence[str] | None,
    by: str,
    at: datetime,
    mailbox: str = "solicited",
) -> Solicitation:
    """A new 约稿 for the given unit codes (None: every ranked unit active now)."""
    code, topic = code.strip(), topic.strip()
    if not code or any(c.isspace() for c in code):
        raise SolicitError(f"约稿 code {code!r} must be one word")
    if not topic:
        raise SolicitError(f"约稿 {code} needs a topic")
    if _aware(deadline) <= _aware(at):
        raise SolicitError(f"约稿 {code}: the deadline must be in the future")
    if session.scalar(select(Solicitation.id).where(Solicitation.code == code)):
        raise SolicitError(f"约稿 {code} already exists")
    if units is None:
        targets = list(
            session.scalars(select(Unit).where(Unit.sequence != "office").order_by(Unit.code))
        )
        today = at.date()
        targets = [u for u in targets if u.active_to is None or u.active_to >= today]
    else:
        wanted = [u.strip() for u in units if u.strip()]
        found = {u.code: u for u in session.scalars(select(Unit).where(Unit.code.in_(wanted)))}
        unknown = [c for c in wanted if c not in found]
        if unknown:
            raise SolicitError(f"约稿 {code}: no unit with code {unknown[0]}")
        targets = [found[c] for c in dict.fromkeys(wanted)]
    if not targets:
        raise SolicitError(f"约稿 {code} has no target units")
    row = Solicitation(
        code=code,
        topic=topic,
        deadline=deadline,
        mailbox=mailbox,
        all_units=units is None,
        opened_at=at,
        opened_by=by,
    )
    row.targets = [SolicitationTarget(unit_id=u.id) for u in targets]
    session.add(row)
    session.flush()
    return row


def close_solicitation(session: Session, code: str, *, by: str, at: datetime) -> Solicitation:
    """No more answers are matched to a closed 约稿."""
    row = get_solicitation(session, code)
    if row.closed_at is not None:
        raise SolicitError(f"约稿 {code} is already closed")
    row.closed_at = _aware(at)
    row.closed_by = by
    session.flush()
    return row


def list_solicitations(session: Session) -> list[Solicitation]:
    return list(session.scalars(select(Solicitation).order_by(Solicitation.deadline)))


def target_states(session: Session, solicitation: Solicitation, now: datetime) -> list[TargetState]:
    """Each target unit's state, by unit code."""
    first: dict[int, tuple[SolicitationAnswer, str]] = {}
    for answer, tracking in session.execute(
        select(SolicitationAnswer, Submission.tracking_no)
        .join(Submission, SolicitationAnswer.submission_id == Submission.id)
        .where(SolicitationAnswer.solicitation_id == solicitation.id)
        .order_by(SolicitationAnswer.received_at, SolicitationAnswer.id)
    ):
        first.setdefault(answer.unit_id, (answer, tracking))
    states = []
    for target in sorted(solicitation.targets, key=lambda t: t.unit.code):
        hit = first.get(target.unit_id)
        if hit is not None:
            answer, tracking = hit
            state = "late" if answer.late else "answered"
            states.append(
                TargetState(target.unit.code, target.unit.name, state, answer.received_at, tracking)
            )
        else:
            state = "missing" if now >= solicitation.deadline else "pending"
            states.append(TargetState(target.unit.code, target.unit.name, state, None, None))
    return states


def _find_for_answer(
    session: Session, unit_id: int, subject: str, references: Sequence[str]
) -> Solicitation | None:
    open_ones = list(
        session.scalars(
            select(Solicitation)
            .join(SolicitationTarget, SolicitationTarget.solicitation_id == Solicitation.id)
            .where(Solicitation.closed_at.is_(None), SolicitationTarget.unit_id == unit_id)
            .order_by(Solicitation.deadline, Solicitation.id)
        )
    )
    if not open_ones:
        return None
    # 1. its code in the subject; 2. a reply to its notice or reminder; 3. the unit is a target.
    folded = name_key(subject)
    by_code = [s for s in open_ones if name_key(s.code) in folded]
    if by_code:
        return max(by_code, key=lambda s: len(s.code))
    if references:
        replied = session.scalar(
            select(SolicitationMail.solicitation_id).where(
                SolicitationMail.unit_id == unit_id,
                SolicitationMail.message_id.in_(list(references)),
            )
        )
        for s in open_ones:
            if s.id == replied:
                return s
    answered = set(
        session.scalars(
            select(SolicitationAnswer.solicitation_id).where(SolicitationAnswer.unit_id == unit_id)
        )
    )
    unanswered = [s for s in open_ones if s.id not in answered]
    # The earliest unanswered one; a unit that answered them all is answering the latest again.
    return unanswered[0] if unanswered else open_ones[-1]


def match_answer(
    session: Session,
    rulebook: Rulebook,
    item: Submission,
    *,
    subject: str,
    references: Sequence[str] = (),
) -> SolicitationAnswer | None:
    """File `item` as an answer to the open 约稿 it answers, if any; deduct a first late answer.

    The item must be flushed (it needs its id). Returns None when no open 约稿 targets its unit.
    """
    found = _find_for_answer(session, item.unit_id, subject, references)
    if found is None:
        return None
    late = item.received_at > found.deadline
    answer = SolicitationAnswer(
        solicitation_id=found.id,
        unit_id=item.unit_id,
        submission_id=item.id,
        received_at=item.received_at,
        late=late,
    )
    earlier = session.scalar(
        select(SolicitationAnswer.id).where(
            SolicitationAnswer.solicitation_id == found.id,
            SolicitationAnswer.unit_id == item.unit_id,
        )
    )
    session.add(answer)
    session.flush()
    if late and earlier is None and rulebook.late_deduction is not None:
        unit = session.get(Unit, item.unit_id)
        assert unit is not None
        record_deduction(
            session,
            rulebook,
            unit.code,
            rulebook.late_deduction,
            by=SYSTEM,
            at=item.received_at,
            source=f"solicit:{found.code}:{item.tracking_no}",
            note=f"约稿 {found.code} 逾期报送",
            dedupe_key=f"solicit-late:{found.id}:{item.unit_id}",
        )
    return answer


def deduct_missing(session: Session, rulebook: Rulebook, now: datetime) -> int:
    """Record the missing deduction for every target unit with no answer to a 约稿 whose
    deadline has passed (open or closed); each once. Returns how many were recorded."""
    if rulebook.missing_deduction is None:
        return 0
    answered = select(SolicitationAnswer.id).where(
        SolicitationAnswer.solicitation_id == SolicitationTarget.solicitation_id,
        SolicitationAnswer.unit_id == SolicitationTarget.unit_id,
    )
    rows = session.execute(
        select(Solicitation, Unit)
        .join(SolicitationTarget, SolicitationTarget.solicitation_id == Solicitation.id)
        .join(Unit, SolicitationTarget.unit_id == Unit.id)
        .where(Solicitation.deadline <= _aware(now), Unit.sequence != "office", ~answered.exists())
        .order_by(Solicitation.deadline, Solicitation.id, Unit.code)
    ).all()
    recorded = 0
    for sol, unit in rows:
        done = record_deduction(
            session,
            rulebook,
            unit.code,
            rulebook.missing_deduction,
            by=SYSTEM,
            at=sol.deadline,
            source=f"solicit:{sol.code}",
            note=f"约稿 {sol.code} 截止时未报送",
            dedupe_key=f"solicit-late:{sol.id}:{unit.id}",
        )
        recorded += done is not None
    return recorded


def officers_of(session: Session, unit_id: int, day: date) -> list[Person]:
    """The unit's info officers in office on `day`."""
    return list(
        session.scalars(
            select(Person)
            .where(Person.unit_id == unit_id, Person.role == "officer", Person.active_on(day))
            .order_by(Person.id)
        )
    )


def claim_mail(
    session: Session,
    solicitation_id: int,
    unit_id: int,
    kind: str,
    message_id: str,
    now: datetime,
) -> bool:
    """Claim the one notice or reminder of (solicitation, unit); False if it was claimed."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(SolicitationMail)
        .values(
            solicitation_id=solicitation_id,
            unit_id=unit_id,
            kind=kind,
            message_id=message_id,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["solicitation_id", "unit_id", "kind"])
        .returning(SolicitationMail.id)
    )
    return session.execute(stmt).scalar() is not None


def due_reminders(
    session: Session, now: datetime, before: timedelta
) -> list[tuple[Solicitation, Unit]]:
    """(约稿, unit) pairs that should get their reminder now: open, the deadline within
    `before` and not passed, no answer from the unit, no reminder claimed yet."""
    _aware(now)
    rows = session.execute(
        select(Solicitation, Unit)
        .join(SolicitationTarget, SolicitationTarget.solicitation_id == Solicitation.id)
        .join(Unit, SolicitationTarget.unit_id == Unit.id)
        .where(
            Solicitation.closed_at.is_(None),
            Solicitation.deadline > now,
            Solicitation.deadline <= now + before,
        )
        .order_by(Solicitation.id, Unit.code)
    ).all()
    due = []
    for sol, unit in rows:
        answered = session.scalar(
            select(SolicitationAnswer.id).where(
                SolicitationAnswer.solicitation_id == sol.id,
                SolicitationAnswer.unit_id == unit.id,
            )
        )
        reminded = session.scalar(
            select(SolicitationMail.id).where(
                SolicitationMail.solicitation_id == sol.id,
                SolicitationMail.unit_id == unit.id,
                SolicitationMail.kind == "reminder",
            )
        )
        if answered is None and reminded is None:
            due.append((sol, unit))
    return due
