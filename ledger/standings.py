"""Standings (SPEC §5.4): per-sequence points, targets and ranks; officers; the core team;
streak outcomes. Everything is computed from the ledger's events under the rulebook — this is
the one calculation of points that the CLI and the reports share.

Decisions, documented in docs/scoring.md:
- An item's events count in the period the item was received; a deduction in the period of
  its `occurred_at`.
- A 直报点's gross points (adoptions, bonuses, clues — not its deductions) are credited to its
  parent at the rulebook's share, exactly (Decimal, no rounding: 7 points at 50% → 3.5).
- Ranks are per sequence, by points; equal points share a rank and the next rank is skipped
  (1, 1, 3). Rows of equal points are listed by unit code.
- A period has the target its sequence gives for that kind of period (month, quarter, year;
  met is None without one). A unit in the rulebook's task table (任务基数表) has its own annual
  target: its points and its items adopted at each publication level, all to be met.
- A count quota (items submitted or adopted per month, quarter or year) is shown for periods of
  its kind (`quota`, `quota_met`); its bonus is earned in each such period in which the quota is
  met at the adoption rate asked, and added to every longer period that holds it.
- Unit bonuses count in the period of their `occurred_at`, like deductions.
- Under revisions (`Rulebook.in_force`): an item's events score under the rulebook in force
  on the day it was received, a deduction or unit bonus under the one in force when it
  occurred; a period's targets, quotas, tasks, sequences and metric are those in force on its
  first day. So a revision never changes what an earlier item or period scored.
- The rulebook's `metric` ranks: points, or the count of items submitted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from ledger.calendar import Period, parse_period, quarter_of
from ledger.db import READER
from ledger.models import Person, ScoreEvent, Submission, Unit
from ledger.rulebook import Rulebook, name_key
from ledger.scoring import (
    ITEM_KINDS,
    ScoredEvent,
    deduction_points,
    item_points,
    unit_bonus_points,
)

OUTCOME_KINDS = ("praise", "criticism", "annual_missed", "award_candidate")
COUNTED_STATUSES = ("filed",)  # a superseded item is counted through its revision


@dataclass(frozen=True)
class Standing:
    """One unit's line in a period. `points` = own + share − deductions."""

    unit_code: str
    unit_name: str
    sequence: str
    points: Decimal
    target: int | None
    met: bool | None
    rank: int
    submitted: int
    adopted: int
    own_points: Decimal = Decimal(0)
    share_points: Decimal = Decimal(0)
    deducted: Decimal = Decimal(0)
    points_by_kind: dict[str, Decimal] = field(default_factory=dict)
    metric: str = "points"
    quota: int | None = None
    quota_met: bool | None = None
    unit_bonus_points: Decimal = Decimal(0)
    quota_bonus_points: Decimal = Decimal(0)
    task: tuple[TaskPart, ...] = ()
    # Of the quota's periods within this one (the months of a quarter), how many met it.
    quota_periods: int = 0
    quota_periods_met: int = 0

    @property
    def bonus_points(self) -> Decimal:
        """Every bonus in the points: on items (批示, 上报), for the unit, for quotas met."""
        return (
            self.points_by_kind.get("bonus", Decimal(0))
            + self.unit_bonus_points
            + (self.quota_bonus_points)
        )


@dataclass(frozen=True)
class TaskPart:
    """One figure of a unit's annual task: `points`, or items adopted at a level (市, 区)."""

    name: str
    target: int
    actual: Decimal
    met: bool


@dataclass(frozen=True)
class OfficerStanding:
    """An info officer's points from the items they authored (no deductions, no share)."""

    person_id: int
    name: str
    unit_code: str
    unit_name: str
    sequence: str
    points: Decimal
    items: int
    adopted: int
    rank: int


@dataclass(frozen=True)
class StreakOutcome:
    """A praise, criticism, annual miss or award candidacy, with whom to tell."""

    unit_code: str
    unit_name: str
    sequence: str
    kind: str  # praise, criticism, annual_missed, award_candidate
    period: str  # the quarter in which it fired, or the year
    count: int  # quarters met (praise) or missed (criticism); 0 for the annual ones
    notify: str | None  # registry role: supervising_leader, principal_leader
    replace_officer: bool = False


def _active(period: Period, zone: tzinfo) -> ColumnElement[bool]:
    start: date = period.start.astimezone(zone).date()
    last: date = period.end.astimezone(zone).date()
    return and_(
        or_(Unit.active_from.is_(None), Unit.active_from < last),
        or_(Unit.active_to.is_(None), Unit.active_to >= start),
    )


_MEMO = "mailroom.standings"  # in Session.info: standings already computed, by period
T = TypeVar("T")


def _ranked(values: Sequence[tuple[str, Decimal]]) -> dict[str, int]:
    """Competition ranking: (key, points) → rank, equal points share a rank (1, 1, 3)."""
    ordered = sorted(values, key=lambda kv: (-kv[1], kv[0]))
    ranks: dict[str, int] = {}
    previous: Decimal | None = None
    rank = 0
    for position, (key, points) in enumerate(ordered, 1):
        if points != previous:
            rank, previous = position, points
        ranks[key] = rank
    return ranks


class _ItemEvent(ScoredEvent, Protocol):
    """A row of `_score_items`: the event's columns and its item's."""

    @property
    def unit_id(self) -> int: ...
    @property
    def author_id(self) -> int | None: ...
    @property
    def received_at(self) -> Any: ...
    def __getitem__(self, columns: slice) -> tuple[Any, ...]: ...


def _live_item_events(period: Period, *columns: Any) -> Select[Any]:
    """The live item events (adoption, bonus, clue) of the items received in `period` and
    not withdrawn, oldest first: the one query every per-item calculation of points reads.

    The events are also bounded by the lowest and highest id of the period's items (filing
    order follows arrival closely): the join alone would read every score event of the ledger
    on PostgreSQL, which hashes the period's items rather than look up their events."""
    inner = aliased(Submission)
    in_period = (inner.received_at >= period.start, inner.received_at < period.end)
    # `id + 0`, not `id`: for min(id) PostgreSQL would walk the primary key from its start,
    # filtering by time (the whole decade before the period), instead of reading the period.
    lowest = select(func.min(inner.id + 0)).where(*in_period).scalar_subquery()
    highest = select(func.max(inner.id + 0)).where(*in_period).scalar_subquery()
    return (
        select(*columns)
        .join(Submission, ScoreEvent.submission_id == Submission.id)
        .where(
            ScoreEvent.submission_id >= lowest,
            ScoreEvent.submission_id <= highest,
            ScoreEvent.kind.in_(ITEM_KINDS),
            ScoreEvent.undone_at.is_(None),
            Submission.status != "withdrawn",
            Submission.received_at >= period.start,
            Submission.received_at < period.end,
        )
        .order_by(ScoreEvent.id)
    )


def _once(session: Session, name: str, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """What `compute` gives for `key`: in a reading session computed the first time and kept
    in the session (as `name`), in a writing one computed afresh each time."""
    if not session.info.get(READER):
        return compute()
    memo: dict[tuple[Any, ...], Any] = session.info.setdefault(f"{_MEMO}.{name}", {})
    if key not in memo:
        memo[key] = compute()
    return memo[key]  # type: ignore[no-any-return]


def _quarters_of_year(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo
) -> list[Period] | None:
    """A year's quarters, in a reading session: there a year's per-item figures (counts,
    item scores) are its quarters' put together, so that the year's outcomes, which need every
    quarter and the year, read each item once, not twice."""
    if period.kind != "year" or not session.info.get(READER):
        return None
    calendar = rulebook.calendar
    quarters = [
        parse_period(f"{period.label}Q{q}", zone, calendar)
        for q in range(1, rulebook.quarters_per_year + 1)
    ]
    assert quarters[0].start == period.start and quarters[-1].end == period.end
    return quarters


def _period_counts(session: Session, rulebook: Rulebook, period: Period, zone: tzinfo) -> list[Any]:
    """(unit id, author id, how many count) of the period's items not withdrawn, by unit and
    author (`COUNTED_STATUSES`): one pass over the period's index, summed by the database,
    read once per period in a reading session (the units' and the officers' standings)."""

    def read() -> list[Any]:
        quarters = _quarters_of_year(session, rulebook, period, zone)
        if quarters is not None:
            summed: dict[tuple[int, int | None], int] = defaultdict(int)
            for quarter in quarters:
                for unit_id, author_id, n in _period_counts(session, rulebook, quarter, zone):
                    summed[unit_id, author_id] += int(n or 0)
            return [(unit_id, author_id, n) for (unit_id, author_id), n in summed.items()]
        counted = case((Submission.status.in_(COUNTED_STATUSES), 1), else_=0)
        query = (
            select(Submission.unit_id, Submission.author_id, func.sum(counted))
            .where(
                Submission.received_at >= period.start,
                Submission.received_at < period.end,
                Submission.status != "withdrawn",
            )
            .group_by(Submission.unit_id, Submission.author_id)
        )
        return list(session.connection().execute(query))

    return _once(session, "period_counts", (period.start, period.end), read)


@dataclass(frozen=True)
class _Score:
    """The points of a pattern of item events under one rulebook: by kind and in all,
    whether the item was adopted (or a clue taken up), the publications that adopted it."""

    by_kind: dict[str, int]
    points: int
    adopted: bool
    adopted_by: frozenset[str]


class _ItemScore(NamedTuple):
    """One item of a period: its unit, its author and its score (a tuple: a decade's quarter
    makes ten thousand of them, and a frozen dataclass costs several times as much to make)."""

    unit_id: int
    author_id: int | None
    score: _Score


def _item_scores(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo
) -> dict[int, _ItemScore]:
    """Every item of the period with live events, scored under the rulebook of its day:
    computed once per period in a reading session (the standings and the officers' standings
    of a page both sum them; a decade's quarter is tens of thousands of events)."""

    def score() -> dict[int, _ItemScore]:
        quarters = _quarters_of_year(session, rulebook, period, zone)
        if quarters is None:
            return _score_items(session, rulebook, period, zone)
        return {
            item_id: scored
            for quarter in quarters
            for item_id, scored in _item_scores(session, rulebook, quarter, zone).items()
        }

    return _once(session, "item_scores", (rulebook, period.start, period.end, str(zone)), score)


# What an item's points depend on, per event: the first columns of `_score_items`'s rows.
_PATTERN = (ScoreEvent.kind, ScoreEvent.rule, ScoreEvent.level)


def _score_items(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo
) -> dict[int, _ItemScore]:
    """One pass over the period's live item events in item order, as plain rows of the
    columns points are read from (a decade's quarter holds tens of thousands; ORM objects
    cost several times as much to load)."""
    scores: dict[int, _ItemScore] = {}
    # Revisions take effect on a day: one rulebook for the whole period, unless one began in it.
    first = rulebook.in_force_at(period.start, zone)
    last = rulebook.in_force_at(period.end - timedelta(microseconds=1), zone)
    whole = first if first is last else None
    columns: list[Any] = [
        *_PATTERN,
        ScoreEvent.submission_id,
        Submission.unit_id,
        Submission.author_id,
        ScoreEvent.id,  # named when the rulebook lacks what an event names
    ]
    if whole is None:
        columns.append(Submission.received_at)  # to find the rulebook of the item's day
    # By item, each item's events oldest first (on SQLite the events' index gives this order).
    query = (
        _live_item_events(period, *columns)
        .order_by(None)
        .order_by(ScoreEvent.submission_id, ScoreEvent.id)
    )
    # Most items share a handful of event patterns (adopted by one publication at one level,
    # with one bonus): each pattern is scored once per rulebook in force, not once per item.
    scored: dict[tuple[int, tuple[tuple[str, str, str | None], ...]], _Score] = {}
    rows = session.connection().execute(query)
    width = len(_PATTERN)
    for item_id, group in groupby(rows, key=itemgetter(width)):  # by submission_id
        events: list[_ItemEvent] = list(group)
        head = events[0]
        then = whole or rulebook.in_force_at(head.received_at, zone)
        pattern = (id(then), tuple([e[:width] for e in events]))
        known = scored.get(pattern)
        if known is None:
            kinds: dict[str, list[_ItemEvent]] = defaultdict(list)
            for e in events:
                kinds[e.kind].append(e)
            # An item's points are the sum of its kinds' (a highest-only bonus is in `bonus`).
            by_kind = {k: item_points(then, kinds[k]) for k in ITEM_KINDS if k in kinds}
            known = scored[pattern] = _Score(
                by_kind=by_kind,
                points=sum(by_kind.values()),
                adopted="adoption" in kinds or "clue" in kinds,
                adopted_by=frozenset(e.rule for e in kinds.get("adoption", ())),
            )
        scores[item_id] = _ItemScore(head.unit_id, head.author_id, known)
    return scores


@dataclass(frozen=True)
class ScoredItem:
    """An adopted item (or a clue taken up) of a period with its live events and its points."""

    tracking_no: str
    unit_name: str
    title: str
    events: tuple[ScoreEvent, ...]
    points: int


def _scored_items(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo
) -> list[ScoredItem]:
    """Every item of the period with live events, with those events and its points."""
    rows = session.execute(
        _live_item_events(period, ScoreEvent, Submission, Unit.name).join(
            Unit, Submission.unit_id == Unit.id
        )
    ).all()
    events: dict[int, list[ScoreEvent]] = defaultdict(list)
    items: dict[int, tuple[Submission, str]] = {}
    for ev, item, unit_name in rows:
        events[item.id].append(ev)
        items[item.id] = (item, unit_name)
    return [
        ScoredItem(
            tracking_no=item.tracking_no,
            unit_name=unit_name,
            title=item.title,
            events=tuple(events[item_id]),
            points=item_points(rulebook.in_force_at(item.received_at, zone), events[item_id]),
        )
        for item_id, (item, unit_name) in items.items()
    ]


def best_items(
    session: Session, rulebook: Rulebook, period: Period, limit: int, zone: tzinfo = UTC
) -> list[ScoredItem]:
    """The period's adopted items by their points, best first (then by tracking number)."""
    scored = [
        s
        for s in _scored_items(session, rulebook, period, zone)
        if any(e.kind in ("adoption", "clue") for e in s.events)
    ]
    scored.sort(key=lambda e: (-e.points, e.tracking_no))
    return scored[:limit]


def standings(
    session: Session, rulebook: Rulebook, period: Period | str, zone: tzinfo
) -> list[Standing]:
    """Every ranked unit's standing in a period (quarter, year or month), by sequence and rank.

    In a reading session a period's standings are computed once: a quarterly report asks for
    the same quarters several times (the table, the comparison, the streaks)."""
    if isinstance(period, str):
        period = parse_period(period, zone, rulebook.calendar)
    key = (rulebook, period.kind, period.start, period.end, str(zone))  # the rules, by value
    return list(_once(session, "units", key, lambda: _standings(session, rulebook, period, zone)))


def _months(period: Period, zone: tzinfo, kind: str, rulebook: Rulebook) -> list[Period]:
    """The periods of `kind` (month, quarter, year) that make up `period` (none if shorter)."""
    if kind == "year" and period.kind != "year":
        return []
    if kind == "quarter" and period.kind == "month":
        return []
    out: list[Period] = []
    start = period.start.astimezone(zone)
    y, m = start.year, start.month
    while True:
        month = parse_period(f"{y}-{m:02d}", zone, rulebook.calendar)
        if month.start >= period.end:
            break
        if kind == "month":
            out.append(month)
        else:
            q = quarter_of(month.start, zone, rulebook.calendar)
            label = q.label if kind == "quarter" else str(q.year)
            whole = parse_period(label, zone, rulebook.calendar)
            if not out or out[-1].label != whole.label:
                out.append(whole)
        after = month.end.astimezone(zone)
        y, m = after.year, after.month
    return out


def _standings(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo
) -> list[Standing]:
    book = rulebook.in_force(period.start.astimezone(zone).date())
    # Plain rows, not ORM objects: the ranked units are a province's thousand, once a period.
    units = list(
        session.execute(
            select(Unit.id, Unit.code, Unit.name, Unit.sequence, Unit.parent_id)
            .where(Unit.sequence != "office", _active(period, zone))
            .order_by(Unit.code)
        )
    )
    rule_of = {key: book.sequence(key) for key in {u.sequence for u in units}}
    submitted: dict[int, int] = defaultdict(int)
    for unit_id, _author_id, n_counted in _period_counts(session, rulebook, period, zone):
        submitted[unit_id] += int(n_counted or 0)

    levels = {p.name: p.level for p in book.publications if p.level}
    gross: dict[int, Decimal] = defaultdict(Decimal)
    by_kind: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    adopted: dict[int, int] = defaultdict(int)
    adopted_at_level: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    adopted_items: set[int] = set()
    for item_id, item in _item_scores(session, rulebook, period, zone).items():
        unit_id, score = item.unit_id, item.score
        of_unit = by_kind[unit_id]
        for kind, of_kind in score.by_kind.items():
            of_unit[kind] += of_kind
        gross[unit_id] += score.points
        if score.adopted:
            adopted[unit_id] += 1
            adopted_items.add(item_id)
        for level in {levels[rule] for rule in score.adopted_by if rule in levels}:
            adopted_at_level[unit_id][level] += 1

    deducted: dict[int, Decimal] = defaultdict(Decimal)
    unit_bonus: dict[int, Decimal] = defaultdict(Decimal)
    for ev in session.scalars(
        select(ScoreEvent).where(
            ScoreEvent.kind.in_(("deduction", "unit_bonus")),
            ScoreEvent.undone_at.is_(None),
            ScoreEvent.occurred_at >= period.start,
            ScoreEvent.occurred_at < period.end,
        )
    ):
        then = rulebook.in_force_at(ev.occurred_at, zone)
        if ev.kind == "deduction":
            deducted[ev.unit_id] += deduction_points(then, ev)
        else:
            unit_bonus[ev.unit_id] += unit_bonus_points(then, ev)

    quota_bonus, quota_of, quota_tally = _quotas(session, book, period, zone, units, adopted_items)

    share: dict[int, Decimal] = defaultdict(Decimal)
    percent = Decimal(book.direct_share_percent) / 100
    for unit in units:
        rule = rule_of[unit.sequence]
        if rule is not None and rule.reports_to_parent and unit.parent_id is not None:
            share[unit.parent_id] += gross[unit.id] * percent

    totals: dict[int, Decimal] = {
        u.id: gross[u.id] + share[u.id] + unit_bonus[u.id] + quota_bonus[u.id] - deducted[u.id]
        for u in units
    }
    ranked_by = (
        totals if book.metric == "points" else {u.id: Decimal(submitted[u.id]) for u in units}
    )
    result: list[Standing] = []

    groups: dict[str, list[Any]] = defaultdict(list)
    for u in units:
        rule = rule_of[u.sequence]
        groups[rule.group if rule is not None else u.sequence].append(u)
    for group in sorted(groups, key=book.sequence_order):
        members = groups[group]
        ranks = _ranked([(u.code, ranked_by[u.id]) for u in members])
        for u in sorted(members, key=lambda m: (ranks[m.code], m.code)):
            seq = u.sequence
            rule = rule_of[seq]
            points = totals[u.id]
            target = rule.target(period.kind) if rule is not None else None
            task = _task(book, u, period, points, adopted_at_level[u.id])
            if task:
                target = next((p.target for p in task if p.name == "points"), target)
                met: bool | None = all(p.met for p in task)
            else:
                met = None if target is None else ranked_by[u.id] >= target
            quota, quota_met = quota_of.get(u.id, (None, None))
            tally_met, tally = quota_tally.get(u.id, (0, 0))
            result.append(
                Standing(
                    unit_code=u.code,
                    unit_name=u.name,
                    sequence=seq,
                    points=points,
                    target=target,
                    met=met,
                    rank=ranks[u.code],
                    submitted=submitted[u.id],
                    adopted=adopted[u.id],
                    own_points=gross[u.id],
                    share_points=share[u.id],
                    deducted=deducted[u.id],
                    points_by_kind=dict(by_kind[u.id]),
                    metric=book.metric,
                    quota=quota,
                    quota_met=quota_met,
                    unit_bonus_points=unit_bonus[u.id],
                    quota_bonus_points=quota_bonus[u.id],
                    task=task,
                    quota_periods=tally,
                    quota_periods_met=tally_met,
                )
            )
    return result


def _task(
    book: Rulebook, unit: Any, period: Period, points: Decimal, at_level: dict[str, int]
) -> tuple[TaskPart, ...]:
    """The unit's annual task (任务基数表) and how far it got: in a year only."""
    task = book.task_of(unit.name) if period.kind == "year" else None
    if task is None:
        return ()
    parts = [
        TaskPart(level, items, Decimal(at_level.get(level, 0)), at_level.get(level, 0) >= items)
        for level, items in task.adopted
    ]
    if task.points is not None:
        parts.append(TaskPart("points", task.points, points, points >= task.points))
    return tuple(parts)


def _quotas(
    session: Session,
    book: Rulebook,
    period: Period,
    zone: tzinfo,
    units: list[Any],
    adopted_items: set[int],
) -> tuple[dict[int, Decimal], dict[int, tuple[int, bool]], dict[int, tuple[int, int]]]:
    """Each unit's quota bonus in `period` (summed over the quota periods it holds), its quota
    and whether it is met when `period` is of the quota's own kind, and (met, of) the quota
    periods within `period`."""
    bonus: dict[int, Decimal] = defaultdict(Decimal)
    shown: dict[int, tuple[int, bool]] = {}
    tally: dict[int, tuple[int, int]] = {}
    rules = {r.key: r.quota for r in book.sequences if r.quota is not None}
    with_quota = [u for u in units if u.sequence in rules]
    if not with_quota:
        return bonus, shown, tally
    kinds = {q.period for q in rules.values() if q is not None}
    pieces = {kind: _months(period, zone, kind, book) for kind in kinds}
    spans = [p for kind in kinds for p in pieces[kind]]
    if not spans:
        return bonus, shown, tally
    first = min(p.start for p in spans)
    last = max(p.end for p in spans)
    rows = session.execute(
        select(Submission.id, Submission.unit_id, Submission.received_at).where(
            Submission.received_at >= first,
            Submission.received_at < last,
            Submission.status.in_(COUNTED_STATUSES),
            Submission.unit_id.in_([u.id for u in with_quota]),
        )
    ).all()
    for u in with_quota:
        quota = rules[u.sequence]
        assert quota is not None
        mine = [(item_id, at) for item_id, unit_id, at in rows if unit_id == u.id]
        for piece in pieces[quota.period]:
            inside = [item_id for item_id, at in mine if piece.start <= at < piece.end]
            taken = sum(1 for item_id in inside if item_id in adopted_items)
            count = len(inside) if quota.counts == "submitted" else taken
            met = count >= quota.items
            rate_ok = taken * 100 >= quota.min_adoption_percent * len(inside) and bool(inside)
            if met and rate_ok:
                bonus[u.id] += quota.bonus_points
            if piece.label == period.label:
                shown[u.id] = (quota.items, met)
            done, of = tally.get(u.id, (0, 0))
            tally[u.id] = (done + met, of + 1)
    return bonus, shown, tally


def _period(rulebook: Rulebook, period: Period | str, zone: tzinfo) -> Period:
    return parse_period(period, zone, rulebook.calendar) if isinstance(period, str) else period


def officer_standings(
    session: Session, rulebook: Rulebook, period: Period | str, zone: tzinfo
) -> list[OfficerStanding]:
    """Info officers ranked within their unit's sequence by the points of items they authored.

    In a reading session computed once per period, like `standings` (the console's standings
    page and the core team both ask for it)."""
    period = _period(rulebook, period, zone)
    key = (rulebook, period.kind, period.start, period.end, str(zone))
    return list(
        _once(session, "officers", key, lambda: _officer_standings(session, rulebook, period, zone))
    )


def _officer_standings(
    session: Session, rulebook: Rulebook, period: Period, zone: tzinfo
) -> list[OfficerStanding]:
    book = rulebook.in_force(period.start.astimezone(zone).date())
    # Plain columns throughout: a province has thousands of people, a quarter tens of
    # thousands of items, and ORM objects cost several times as much to load.
    officers = {
        row.id: row
        for row in session.execute(
            select(Person.id, Person.name, Unit.code, Unit.name.label("unit_name"), Unit.sequence)
            .join(Unit, Person.unit_id == Unit.id)
            .where(Unit.sequence != "office")
        )
    }
    # Who authored the period's items (not withdrawn), and how many of them count.
    people: dict[int, Any] = {}
    points: dict[int, Decimal] = defaultdict(Decimal)
    items: dict[int, int] = defaultdict(int)
    adopted: dict[int, int] = defaultdict(int)
    for _unit_id, author_id, n_counted in _period_counts(session, rulebook, period, zone):
        officer = officers.get(author_id)
        if officer is None:
            continue  # an office's own staff are not ranked
        people[officer.id] = officer
        items[officer.id] += int(n_counted or 0)
    # Points only from the items with live events (the same items: received in the period,
    # not withdrawn).
    for item in _item_scores(session, rulebook, period, zone).values():
        if item.author_id not in people:
            continue
        points[item.author_id] += item.score.points
        adopted[item.author_id] += item.score.adopted
    result: list[OfficerStanding] = []
    for seq in sorted({p.sequence for p in people.values()}, key=book.sequence_order):
        members = [pid for pid, p in people.items() if p.sequence == seq]
        ranks = _ranked([(str(pid), points[pid]) for pid in members])
        for pid in sorted(members, key=lambda p: (ranks[str(p)], people[p].code, people[p].name)):
            person = people[pid]
            result.append(
                OfficerStanding(
                    person_id=pid,
                    name=person.name,
                    unit_code=person.code,
                    unit_name=person.unit_name,
                    sequence=seq,
                    points=points[pid],
                    items=items[pid],
                    adopted=adopted[pid],
                    rank=ranks[str(pid)],
                )
            )
    return result


def core_team(
    session: Session, rulebook: Rulebook, quarter: Period | str, zone: tzinfo
) -> list[OfficerStanding]:
    """The quarter's core team (优秀信息员核心队伍): the best `[core_team] size` officers by the
    quarter's points (ties at the cut-off all stay), leaving out officers with no points and
    officers whose unit missed its quarterly target — recomputed each quarter."""
    quarter = _period(rulebook, quarter, zone)
    if quarter.kind != "quarter":
        raise ValueError(f"the core team is per quarter, not {quarter.label}")
    book = rulebook.in_force(quarter.start.astimezone(zone).date())
    missed = {s.unit_code for s in standings(session, rulebook, quarter, zone) if s.met is False}
    eligible = sorted(
        (
            o
            for o in officer_standings(session, rulebook, quarter, zone)
            if o.points > 0 and o.unit_code not in missed
        ),
        key=lambda o: (-o.points, o.unit_code, o.name),
    )
    size = book.core_team_size
    if len(eligible) <= size:
        return eligible
    cut = eligible[size - 1].points if size else None
    return [o for o in eligible if cut is not None and o.points >= cut]


def streak_outcomes(
    session: Session, rulebook: Rulebook, year: int, zone: tzinfo, through: int | None = None
) -> list[StreakOutcome]:
    """Praise and criticism fired in quarters 1..`through` of the assessment year; for the
    whole year (`through` None), also the annual misses and the award candidates, which need
    the year's standings (a quarter's close asks only for its praise and criticism).
    Praise: the first N quarters all met. Criticism: the Nth quarter missed."""
    book = rulebook.in_force(_period(rulebook, str(year), zone).start.astimezone(zone).date())
    quarters = book.quarters_per_year
    whole_year = through is None
    through = quarters if through is None else through
    if not 1 <= through <= quarters:
        raise ValueError(f"quarter {through} is not in 1..{quarters}")
    per_quarter = [
        {s.unit_code: s for s in standings(session, rulebook, f"{year}Q{q}", zone)}
        for q in range(1, through + 1)
    ]
    annual = (
        {s.unit_code: s for s in standings(session, rulebook, str(year), zone)}
        if whole_year
        else {}
    )
    codes = sorted({code for q in per_quarter for code in q})
    outcomes: list[StreakOutcome] = []
    for code in codes:
        rows = [q[code] for q in per_quarter if code in q]
        outcomes.extend(_unit_streaks(book, year, rows, annual.get(code)))
    # Quarters in order, then the year; within a period by kind, count and unit code.
    outcomes.sort(key=_outcome_order)
    return outcomes


def _outcome_order(o: StreakOutcome) -> tuple[bool, str, int, int, str]:
    return ("Q" not in o.period, o.period, OUTCOME_KINDS.index(o.kind), o.count, o.unit_code)


def _unit_streaks(
    rulebook: Rulebook, year: int, rows: list[Standing], whole: Standing | None
) -> list[StreakOutcome]:
    """One unit's outcomes from its quarterly standings (in order) and its annual one."""
    first = rows[0]

    def outcome(
        kind: str, period: str, count: int, notify: str | None, replace: bool = False
    ) -> StreakOutcome:
        return StreakOutcome(
            first.unit_code, first.unit_name, first.sequence, kind, period, count, notify, replace
        )

    found: list[StreakOutcome] = []
    met = [s.met for s in rows]
    if any(m is not None for m in met):
        for praise in rulebook.praise:
            n = praise.first_quarters_met
            if n <= len(met) and all(m is True for m in met[:n]):
                found.append(outcome("praise", f"{year}Q{n}", n, praise.notify))
        missed_at = [i + 1 for i, m in enumerate(met) if m is False]
        for crit in rulebook.criticism:
            n = crit.quarters_missed
            if n <= len(missed_at):
                quarter = f"{year}Q{missed_at[n - 1]}"
                found.append(outcome("criticism", quarter, n, crit.notify, crit.replace_officer))
    if whole is None:
        return found
    if whole.met is False:
        found.append(outcome("annual_missed", str(year), 0, None))
    every_quarter = len(met) == rulebook.quarters_per_year and all(m is True for m in met)
    no_quarterly = all(m is None for m in met)
    # With count quotas and no targets (Longnan): every month of the year met its quota.
    every_quota = 0 < whole.quota_periods == whole.quota_periods_met and whole.met is None
    if rulebook.award_names and (
        every_quarter or (no_quarterly and (whole.met is True or every_quota))
    ):
        found.append(outcome("award_candidate", str(year), 0, None))
    return found


@dataclass(frozen=True)
class DeductionRecord:
    """A live deduction of a period, with its note (explained in the monthly 通报)."""

    unit_code: str
    unit_name: str
    sequence: str
    rule: str
    points: int
    note: str
    occurred_at: datetime


def deductions_in(
    session: Session, rulebook: Rulebook, period: Period | str, zone: tzinfo
) -> list[DeductionRecord]:
    """The period's live deductions, oldest first."""
    period = _period(rulebook, period, zone)
    rows = session.execute(
        select(ScoreEvent, Unit)
        .join(Unit, ScoreEvent.unit_id == Unit.id)
        .where(
            ScoreEvent.kind == "deduction",
            ScoreEvent.undone_at.is_(None),
            ScoreEvent.occurred_at >= period.start,
            ScoreEvent.occurred_at < period.end,
        )
        .order_by(ScoreEvent.occurred_at, ScoreEvent.id)
    ).all()
    return [
        DeductionRecord(
            unit.code,
            unit.name,
            unit.sequence,
            ev.rule,
            deduction_points(rulebook.in_force_at(ev.occurred_at, zone), ev),
            ev.note,
            ev.occurred_at,
        )
        for ev, unit in rows
    ]


@dataclass(frozen=True)
class AwardEntry:
    sequence: str  # the unit's (or the officer's unit's) sequence
    name: str  # unit name, or officer name
    unit_name: str
    points: Decimal
    rank: int  # within the award's ranking (per sequence, or across all)


@dataclass(frozen=True)
class AwardResult:
    """An award with a quota and who is within it (ties at the cut-off all stay)."""

    name: str
    kind: str
    quota: int
    yuan: int
    entries: tuple[AwardEntry, ...]


def award_results(
    session: Session, rulebook: Rulebook, year: Period | str, zone: tzinfo
) -> list[AwardResult]:
    """The rulebook's award quotas applied to a year's ranking: the best units per sequence
    (or across all sequences), or the best officers by their items' points. A unit or officer
    with no points is never proposed."""
    year = _period(rulebook, year, zone)
    book = rulebook.in_force(year.start.astimezone(zone).date())
    results = []
    for award in book.awards:
        entries: list[AwardEntry] = []
        if award.kind == "unit":
            rows = [s for s in standings(session, rulebook, year, zone) if s.points > 0]
            groups = (
                [(seq, [s for s in rows if s.sequence == seq], n) for seq, n in award.per_sequence]
                if award.per_sequence
                else [("", rows, award.quota or 0)]
            )
            for _, members, n in groups:
                ranks = _ranked([(s.unit_code, s.points) for s in members])
                for s in sorted(members, key=lambda m: (ranks[m.unit_code], m.unit_code)):
                    if ranks[s.unit_code] <= n:
                        entries.append(
                            AwardEntry(
                                s.sequence, s.unit_name, s.unit_name, s.points, ranks[s.unit_code]
                            )
                        )
            quota = sum(n for _, _, n in groups)
        else:
            officers = [o for o in officer_standings(session, rulebook, year, zone) if o.points > 0]
            ranks = _ranked([(str(o.person_id), o.points) for o in officers])
            quota = award.quota or 0
            for o in sorted(officers, key=lambda o: (ranks[str(o.person_id)], o.unit_code, o.name)):
                if ranks[str(o.person_id)] <= quota:
                    entries.append(
                        AwardEntry(
                            o.sequence, o.name, o.unit_name, o.points, ranks[str(o.person_id)]
                        )
                    )
        results.append(AwardResult(award.name, award.kind, quota, award.yuan, tuple(entries)))
    return results


def lagging_units(rows: Sequence[Standing], count: int) -> list[Standing]:
    """The `count` lowest units of each sequence by points (ties at the cut-off all listed)."""
    found: list[Standing] = []
    if count <= 0:
        return found
    for seq in dict.fromkeys(s.sequence for s in rows):
        members = [s for s in rows if s.sequence == seq]
        if len(members) <= count:
            continue  # a sequence this small has no tail to name
        ordered = sorted(members, key=lambda s: (s.points, s.unit_code))
        cut = ordered[count - 1].points
        found.extend(s for s in ordered if s.points <= cut)
    return found


@dataclass(frozen=True)
class ExcellenceList:
    """One of the rulebook's lists of good items (优秀调研信息, 领导批示好信息) for a period."""

    name: str
    items: tuple[ScoredItem, ...]


def excellence_lists(
    session: Session, rulebook: Rulebook, period: Period | str, zone: tzinfo
) -> list[ExcellenceList]:
    """Each `[[excellence]]` list of the period: its items by tracking number."""
    period = _period(rulebook, period, zone)
    book = rulebook.in_force(period.start.astimezone(zone).date())
    if not book.excellence:
        return []
    scored = _scored_items(session, rulebook, period, zone)
    lists = []
    for wanted in book.excellence:
        pubs = {name_key(book.publication(p).name) for p in wanted.publications}
        grades = {name_key(g) for g in wanted.grades}
        bonuses = {name_key(b) for b in wanted.bonuses}

        def qualifies(
            evs: list[ScoreEvent],
            pubs: set[str] = pubs,
            grades: set[str] = grades,
            bonuses: set[str] = bonuses,
        ) -> bool:
            return any(
                (e.kind == "adoption" and name_key(e.rule) in pubs)
                or (e.kind == "adoption" and e.level is not None and name_key(e.level) in grades)
                or (e.kind == "bonus" and name_key(e.rule) in bonuses)
                for e in evs
            )

        chosen = sorted(
            (item for item in scored if qualifies(list(item.events))),
            key=lambda s: s.tracking_no,
        )
        lists.append(ExcellenceList(wanted.name, tuple(chosen)))
    return lists
