"""Scoring events (SPEC §4.2, §4.5, §5.2): adoptions, bonuses, clues, deductions, undo.

Each function records one event with who (`by`), when (`at`) and from where (`source`: `cli`,
a message id, `solicit:CODE` …) and checks it against the rulebook; none of them stores points.
Points are read back through `item_points`/`event_points`, under whatever rulebook is in force,
so a rule change or an undo recomputes cleanly. The editors' email commands call these same
functions. A mistake raises a `ScoringError` with one line that names the item, unit or rule;
its class says what kind of mistake it is, for callers that answer in their own words.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.models import ScoreEvent, Submission, Unit
from ledger.rulebook import Rulebook, name_key
from parser.errors import UserError

ITEM_KINDS = ("adoption", "bonus", "clue")


class ScoringError(UserError):
    """An event that cannot be recorded (unknown item, rule or level; a duplicate)."""


class AlreadyRecorded(ScoringError):
    """The same adoption, bonus level or clue is already live on the item (or already undone)."""


class NeedsAdoption(ScoringError):
    """A bonus that counts only on an adopted item, asked for an item not adopted."""


class NotCurrent(ScoringError):
    """The item is withdrawn (superseded by a revision) and scores no more."""


class NotScored(ScoringError):
    """The unit named is the office itself, which is not scored."""


@dataclass(frozen=True)
class Recorded:
    """What was recorded: the event id (for an undo) and the points it is worth now."""

    event_id: int
    unit_code: str
    points: int


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ScoringError("the time of an event must carry its time zone")
    return at


def _item(session: Session, tracking_no: str) -> Submission:
    item = session.scalars(
        select(Submission).where(Submission.tracking_no == tracking_no.strip())
    ).first()
    if item is None:
        raise ScoringError(f"no item with tracking number {tracking_no}")
    if item.status == "withdrawn":
        raise NotCurrent(f"item {tracking_no} is withdrawn and cannot score")
    return item


def live_events(session: Session, submission_id: int) -> list[ScoreEvent]:
    """The item's events that have not been undone, oldest first."""
    return list(
        session.scalars(
            select(ScoreEvent)
            .where(ScoreEvent.submission_id == submission_id, ScoreEvent.undone_at.is_(None))
            .order_by(ScoreEvent.id)
        )
    )


def _audit(session: Session, ev: ScoreEvent, action: str, by: str, source: str) -> None:
    """Every change of points is an audit row (SPEC §5.6): who, when, from where, what."""
    audit.record(
        session,
        at=datetime.now(UTC),
        actor=by,
        action=action,
        source=source,
        subject=ev.submission.tracking_no if ev.submission is not None else ev.unit.code,
        details={
            "event": ev.id,
            "kind": ev.kind,
            "unit": ev.unit.code,
            "rule": ev.rule,
            "level": ev.level,
            "occurred_at": ev.occurred_at.astimezone(UTC).isoformat(),
            "note": ev.note,
        },
    )


def _add(session: Session, event: ScoreEvent) -> ScoreEvent:
    session.add(event)
    session.flush()
    _audit(session, event, event.kind, event.recorded_by, event.source)
    return event


def record_adoption(
    session: Session,
    rulebook: Rulebook,
    tracking_no: str,
    publication: str,
    grade: str | None = None,
    *,
    by: str,
    at: datetime,
    source: str,
    note: str = "",
    zone: tzinfo = UTC,
) -> Recorded:
    """An item adopted in a publication (采用 穗府信息 标题); once per publication per item.
    Names are checked against the rulebook in force when the item was received (`zone`: the
    office's, for the day)."""
    item = _item(session, tracking_no)
    rulebook = rulebook.in_force_at(item.received_at, zone)
    try:
        pub = rulebook.publication(publication)
        chosen = pub.grade(grade)
    except LookupError as exc:
        raise ScoringError(str(exc)) from None
    for ev in live_events(session, item.id):
        if ev.kind == "adoption" and name_key(ev.rule) == name_key(pub.name):
            raise AlreadyRecorded(f"item {tracking_no} is already adopted in {pub.name}")
    ev = _add(
        session,
        ScoreEvent(
            kind="adoption",
            unit_id=item.unit_id,
            submission_id=item.id,
            rule=pub.name,
            level=chosen.name if chosen else None,
            occurred_at=_aware(at),
            recorded_by=by,
            source=source,
            note=note,
        ),
    )
    return Recorded(ev.id, item.unit.code, pub.points_for(grade))


def record_bonus(
    session: Session,
    rulebook: Rulebook,
    tracking_no: str,
    bonus: str,
    level: str,
    *,
    by: str,
    at: datetime,
    source: str,
    note: str = "",
    zone: tzinfo = UTC,
) -> Recorded:
    """A bonus on an item (批示 市领导; 上报 国办采用); each level once per item (a
    `repeatable` level again and again).

    Whether it adds to the others of its kind or only the highest counts is the rulebook's
    `mode`, applied when points are read (`item_points`).
    """
    item = _item(session, tracking_no)
    rulebook = rulebook.in_force_at(item.received_at, zone)
    try:
        rule = rulebook.bonus(bonus)
        chosen = rule.level(level)
    except LookupError as exc:
        raise ScoringError(str(exc)) from None
    events = live_events(session, item.id)
    if rule.requires_adoption and not any(e.kind in ("adoption", "clue") for e in events):
        raise NeedsAdoption(f"item {tracking_no} is not adopted; {rule.name} needs an adoption")
    if rule.requires_publication:
        wanted = {name_key(rulebook.publication(p).name) for p in rule.requires_publication}
        if not any(e.kind == "adoption" and name_key(e.rule) in wanted for e in events):
            names = "、".join(f"《{p}》" for p in rule.requires_publication)
            raise NeedsAdoption(
                f"item {tracking_no} is not adopted in {names}; {rule.name} needs that adoption"
            )
    for ev in events:
        if (
            not rule.repeatable
            and ev.kind == "bonus"
            and name_key(ev.rule) == name_key(rule.name)
            and ev.level == chosen.name
        ):
            raise AlreadyRecorded(f"item {tracking_no} already has {rule.name} {chosen.name}")
    ev = _add(
        session,
        ScoreEvent(
            kind="bonus",
            unit_id=item.unit_id,
            submission_id=item.id,
            rule=rule.name,
            level=chosen.name,
            occurred_at=_aware(at),
            recorded_by=by,
            source=source,
            note=note,
        ),
    )
    return Recorded(ev.id, item.unit.code, chosen.points)


def record_instruction(
    session: Session,
    rulebook: Rulebook,
    tracking_no: str,
    bonus: str,
    level: str,
    *,
    by: str,
    at: datetime,
    source: str,
    note: str = "",
    zone: tzinfo = UTC,
) -> Recorded:
    """A leader's instruction (批示) or an upper-level adoption (上报): a bonus by name."""
    return record_bonus(
        session, rulebook, tracking_no, bonus, level, by=by, at=at, source=source, note=note,
        zone=zone,
    )  # fmt: skip


def record_clue(
    session: Session,
    rulebook: Rulebook,
    tracking_no: str,
    *,
    by: str,
    at: datetime,
    source: str,
    note: str = "",
    zone: tzinfo = UTC,
) -> Recorded:
    """A clue (线索) verified and taken up; once per item."""
    item = _item(session, tracking_no)
    rulebook = rulebook.in_force_at(item.received_at, zone)
    if rulebook.clue_points is None:
        raise ScoringError(f"rulebook {rulebook.name} has no [clues]")
    if any(e.kind == "clue" for e in live_events(session, item.id)):
        raise AlreadyRecorded(f"item {tracking_no} is already taken up as a clue")
    ev = _add(
        session,
        ScoreEvent(
            kind="clue",
            unit_id=item.unit_id,
            submission_id=item.id,
            rule="",
            level=None,
            occurred_at=_aware(at),
            recorded_by=by,
            source=source,
            note=note,
        ),
    )
    return Recorded(ev.id, item.unit.code, rulebook.clue_points)


def _scored_unit(session: Session, unit_code: str) -> Unit:
    unit = session.scalars(select(Unit).where(Unit.code == unit_code.strip())).first()
    if unit is None:
        raise ScoringError(f"no unit with code {unit_code}")
    if unit.sequence == "office":
        raise NotScored(f"unit {unit_code} is the office itself and is not scored")
    return unit


def _unit_event(
    session: Session,
    kind: str,
    unit: Unit,
    rule: str,
    *,
    at: datetime,
    by: str,
    source: str,
    note: str,
    dedupe_key: str | None = None,
) -> ScoreEvent:
    """An event against a unit as a whole (a deduction, a unit bonus), audited."""
    return _add(
        session,
        ScoreEvent(
            kind=kind,
            unit_id=unit.id,
            submission_id=None,
            rule=rule,
            level=None,
            occurred_at=_aware(at),
            recorded_by=by,
            source=source,
            note=note,
            dedupe_key=dedupe_key,
        ),
    )


def record_unit_bonus(
    session: Session,
    rulebook: Rulebook,
    unit_code: str,
    bonus: str,
    *,
    by: str,
    at: datetime,
    source: str,
    note: str = "",
) -> Recorded:
    """A bonus for a unit as a whole (加分 龙城街道 组织奖); counts in the period of `at`,
    under the rulebook in force then."""
    rulebook = rulebook.in_force_at(_aware(at), at.tzinfo or UTC)
    try:
        rule = rulebook.unit_bonus(bonus)
    except LookupError as exc:
        raise ScoringError(str(exc)) from None
    unit = _scored_unit(session, unit_code)
    if rule.sequences and unit.sequence not in rule.sequences:
        open_to = ", ".join(rulebook.sequence_name(s) for s in rule.sequences)
        raise ScoringError(f"{rule.name} is for units of {open_to}, not unit {unit.code}")
    ev = _unit_event(session, "unit_bonus", unit, rule.name, at=at, by=by, source=source, note=note)
    return Recorded(ev.id, unit.code, rule.points)


def record_deduction(
    session: Session,
    rulebook: Rulebook,
    unit_code: str,
    kind: str,
    *,
    by: str,
    at: datetime,
    source: str,
    note: str = "",
    dedupe_key: str | None = None,
) -> Recorded | None:
    """A deduction against a unit (扣分 天河区 迟报); counts in the quarter of `at`.

    With a `dedupe_key` the deduction is recorded at most once (None when it already was).
    The rulebook in force at `at` names it.
    """
    rulebook = rulebook.in_force_at(_aware(at), at.tzinfo or UTC)
    try:
        rule = rulebook.deduction(kind)
    except LookupError as exc:
        raise ScoringError(str(exc)) from None
    unit = _scored_unit(session, unit_code)
    if dedupe_key is not None and session.scalar(
        select(ScoreEvent.id).where(ScoreEvent.dedupe_key == dedupe_key)
    ):
        return None
    ev = _unit_event(
        session, "deduction", unit, rule.name, at=at, by=by, source=source, note=note,
        dedupe_key=dedupe_key,
    )  # fmt: skip
    return Recorded(ev.id, unit.code, -rule.points)


def undo_event(
    session: Session, event_id: int, *, by: str, at: datetime, source: str
) -> ScoreEvent:
    """Undo (撤销) an event: it stays in the ledger, marked, and stops counting."""
    ev = session.get(ScoreEvent, event_id)
    if ev is None:
        raise ScoringError(f"no scoring event {event_id}")
    if ev.undone_at is not None:
        raise AlreadyRecorded(f"scoring event {event_id} is already undone")
    ev.undone_at = _aware(at)
    ev.undone_by = by
    ev.undo_source = source
    session.flush()
    _audit(session, ev, "undo", by, source)
    return ev


# --- reading points back -------------------------------------------------------------------


class ScoredEvent(Protocol):
    """What reading points needs of an event: a `ScoreEvent`, or a row of these columns."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def level(self) -> str | None: ...


def _missing(rulebook: Rulebook, ev: ScoredEvent, what: str) -> ScoringError:
    return ScoringError(f"scoring event {ev.id} names {what}, which rulebook {rulebook.name} lacks")


def item_points(rulebook: Rulebook, events: Iterable[ScoredEvent]) -> int:
    """The points of one item from its live events: adoptions and clues add; a `cumulative`
    bonus adds every level recorded (a level recorded twice counts once); a `highest` bonus
    adds only its highest level."""
    total = 0
    highest: dict[str, int] = defaultdict(int)
    counted: set[tuple[str, str]] = set()
    for ev in events:
        try:
            if ev.kind == "adoption":
                total += rulebook.publication(ev.rule).points_for(ev.level)
            elif ev.kind == "clue":
                if rulebook.clue_points is None:
                    raise LookupError
                total += rulebook.clue_points
            elif ev.kind == "bonus":
                bonus = rulebook.bonus(ev.rule)
                points = bonus.level(ev.level or "").points
                if bonus.mode == "cumulative":
                    if (bonus.name, ev.level or "") not in counted:
                        counted.add((bonus.name, ev.level or ""))
                        total += points
                else:
                    highest[bonus.name] = max(highest[bonus.name], points)
        except LookupError:
            raise _missing(rulebook, ev, f"{ev.kind} {ev.rule} {ev.level or ''}".strip()) from None
    return total + sum(highest.values())


def deduction_points(rulebook: Rulebook, ev: ScoredEvent) -> int:
    """The (positive) number of points a deduction event subtracts."""
    try:
        return rulebook.deduction(ev.rule).points
    except LookupError:
        raise _missing(rulebook, ev, f"deduction {ev.rule}") from None


def unit_bonus_points(rulebook: Rulebook, ev: ScoredEvent) -> int:
    try:
        return rulebook.unit_bonus(ev.rule).points
    except LookupError:
        raise _missing(rulebook, ev, f"unit bonus {ev.rule}") from None


def event_points(rulebook: Rulebook, ev: ScoreEvent) -> int:
    """What one event is worth on its own (a highest-only bonus at its full level value)."""
    if ev.kind == "deduction":
        return -deduction_points(rulebook, ev)
    if ev.kind == "unit_bonus":
        return unit_bonus_points(rulebook, ev)
    return item_points(rulebook, [ev])


def event_yuan(rulebook: Rulebook, ev: ScoredEvent) -> int:
    """What one item event pays its author (稿酬): an adoption by its grade, each bonus
    instance by its level; 0 for anything else."""
    try:
        if ev.kind == "adoption":
            return rulebook.publication(ev.rule).yuan_for(ev.level)
        if ev.kind == "bonus":
            return rulebook.bonus(ev.rule).level(ev.level or "").yuan
    except LookupError:
        raise _missing(rulebook, ev, f"{ev.kind} {ev.rule} {ev.level or ''}".strip()) from None
    return 0
