"""The desk's one door into scoring: resolve a tag against the rulebook, record, undo, totals.

Everything the editors' desk asks of the scoring ledger goes through this module — the same
`ledger.scoring` functions as `mailroom adopt` — so the desk never names a scoring table or a
rulebook number itself. Publication names, grades, bonus ladders and deductions are looked
up in the rulebook in force; a tag they do not fit is refused with a desk reason code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from sqlalchemy.orm import Session

from ledger import scoring
from ledger.calendar import quarter_of
from ledger.editors import find_unit
from ledger.models import Submission, Unit
from ledger.rulebook import Publication, Rulebook, name_key
from ledger.standings import standings
from ledger.wording import IDENTITY, Words
from parser.commands import Tag
from parser.normalize import fold

_EVENT = "score_event:"


@dataclass(frozen=True)
class Resolved:
    """A tag the rulebook understands. `key` says which earlier tag a duplicate would repeat."""

    verb: str
    key: str
    label: str
    publication: str | None = None
    grade: str | None = None
    bonus: str | None = None
    level: str | None = None
    deduction: str | None = None
    unit_code: str | None = None
    note: str = ""
    repeatable: bool = False  # the same tag again is another instance (a second 批示), not a repeat


class Refused(Exception):
    """A tag that cannot be applied; `code` is a desk reason code."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def _key(text: str) -> str:
    return name_key(fold(text))


# What scoring's refusals mean for the desk, by their class; any other is `scoring_refused`
# with scoring's own line.
_SCORING_REFUSALS: tuple[tuple[type[scoring.ScoringError], str], ...] = (
    (scoring.AlreadyRecorded, "already_recorded"),
    (scoring.NeedsAdoption, "requires_adoption"),
    (scoring.NotCurrent, "item_not_current"),
    (scoring.NotScored, "unknown_unit"),
)


def _refusal(exc: scoring.ScoringError) -> Refused:
    for kind, code in _SCORING_REFUSALS:
        if isinstance(exc, kind):
            return Refused(code)
    return Refused("scoring_refused", str(exc))


def _named_unit(session: Session, tag: Tag, missing: str) -> Unit:
    """The scored unit a `扣分`/`加分` tag names first (its rule second; `missing` without)."""
    if len(tag.words) < 2:
        raise Refused(missing)
    unit = find_unit(session, tag.words[0])
    if unit is None or unit.sequence == "office":
        raise Refused("unknown_unit")
    return unit


class DeskScoring:
    def __init__(self, rulebook: Rulebook, zone: tzinfo, words: Words = IDENTITY) -> None:
        self.rulebook = rulebook
        self.zone = zone
        self.words = words  # the office's language set, for the labels shown in desk mail

    def bonus_verbs(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.rulebook.bonuses)

    def example_tags(self) -> tuple[str, ...]:
        """Tags to show editors in each forward, built from the rulebook's names."""
        w = self.words
        examples: list[str] = []
        for pub in self.rulebook.publications:
            if pub.grades:
                examples += [
                    w("采用 {pub} {grade}", pub=pub.name, grade=g.name) for g in pub.grades
                ]
            else:
                examples.append(w("采用 {pub}", pub=pub.name))
        for bonus in self.rulebook.bonuses:
            examples += [f"{bonus.name} {lv.name}" for lv in bonus.levels]
        if self.rulebook.clue_points is not None:
            examples.append(w("线索 采用"))
        return (*examples, *w.all("不采用 理由", "退回 理由", "撤销"))

    def _publication(self, words: str) -> tuple[Publication, str]:
        """The publication whose name (or alias) starts `words`, and what follows it."""
        candidates = [
            (_key(name), pub)
            for pub in self.rulebook.publications
            for name in (pub.name, *pub.aliases)
        ]
        for name, pub in sorted(candidates, key=lambda c: len(c[0]), reverse=True):
            if words.startswith(name):
                return pub, words[len(name) :]
        raise Refused("unknown_publication")

    def resolve(self, session: Session, tag: Tag, item: Submission | None) -> Resolved:
        words = _key("".join(tag.words))
        if tag.verb == "adopt":
            pub, rest = self._publication(words)
            try:
                grade = pub.grade(rest or None)
            except LookupError:
                raise Refused("unknown_grade") from None
            label = (
                self.words("《{pub}》{grade}信息", pub=pub.name, grade=grade.name)
                if grade
                else self.words("《{pub}》采用", pub=pub.name)
            )
            return Resolved(
                "adopt",
                f"adopt:{pub.name}",
                label,
                publication=pub.name,
                grade=grade.name if grade else None,
                note=tag.issue or "",
            )
        if tag.verb == "bonus":
            try:
                bonus = self.rulebook.bonus(tag.bonus or "")
                level = bonus.level(words)
            except LookupError:
                raise Refused("unknown_bonus_level") from None
            return Resolved(
                "bonus",
                f"bonus:{bonus.name}:{level.name}",
                f"{bonus.name} {level.name}",
                bonus=bonus.name,
                level=level.name,
                repeatable=bonus.repeatable,
            )
        if tag.verb == "clue":
            if self.rulebook.clue_points is None:
                raise Refused("no_clue_rule")
            if words not in ("", _key("采用")):
                raise Refused("unknown_tag")
            return Resolved("clue", "clue", self.words("信息线索采用"))
        if tag.verb == "deduct":
            unit = _named_unit(session, tag, "unknown_deduction")
            try:
                rule = self.rulebook.deduction(tag.words[1])
            except LookupError:
                raise Refused("unknown_deduction") from None
            note = " ".join(tag.text.split()[2:])
            return Resolved(
                "deduct",
                f"deduct:{unit.code}:{rule.name}",
                self.words("扣分 {unit} {rule}", unit=unit.name, rule=rule.name),
                deduction=rule.name,
                unit_code=unit.code,
                note=note,
            )
        if tag.verb == "unit_bonus":
            unit = _named_unit(session, tag, "unknown_unit_bonus")
            try:
                award = self.rulebook.unit_bonus(tag.words[1])
            except LookupError:
                raise Refused("unknown_unit_bonus") from None
            if award.sequences and unit.sequence not in award.sequences:
                raise Refused("unknown_unit_bonus")
            return Resolved(
                "unit_bonus",
                f"unit_bonus:{unit.code}:{award.name}",
                self.words("加分 {unit} {award}", unit=unit.name, award=award.name),
                bonus=award.name,
                unit_code=unit.code,
                note=" ".join(tag.text.split()[2:]),
            )
        raise Refused("unknown_tag")

    def record(
        self,
        session: Session,
        resolved: Resolved,
        item: Submission | None,
        *,
        by: str,
        at: datetime,
        source: str,
    ) -> str | None:
        rb = self.rulebook
        tracking = item.tracking_no if item is not None else ""
        try:
            if resolved.verb == "adopt":
                done = scoring.record_adoption(
                    session, rb, tracking, resolved.publication or "", resolved.grade,
                    by=by, at=at, source=source, note=resolved.note, zone=self.zone,
                )  # fmt: skip
            elif resolved.verb == "bonus":
                done = scoring.record_bonus(
                    session, rb, tracking, resolved.bonus or "", resolved.level or "",
                    by=by, at=at, source=source, zone=self.zone,
                )  # fmt: skip
            elif resolved.verb == "clue":
                done = scoring.record_clue(
                    session, rb, tracking, by=by, at=at, source=source, zone=self.zone
                )
            elif resolved.verb == "unit_bonus":
                done = scoring.record_unit_bonus(
                    session, rb, resolved.unit_code or "", resolved.bonus or "",
                    by=by, at=at, source=source, note=resolved.note,
                )  # fmt: skip
            else:
                maybe = scoring.record_deduction(
                    session, rb, resolved.unit_code or "", resolved.deduction or "",
                    by=by, at=at, source=source, note=resolved.note,
                )  # fmt: skip
                assert maybe is not None  # no dedupe key: always recorded
                done = maybe
        except scoring.ScoringError as exc:
            raise _refusal(exc) from None
        return f"{_EVENT}{done.event_id}"

    def undo(self, session: Session, event_ref: str, *, by: str, at: datetime, source: str) -> None:
        if not event_ref.startswith(_EVENT):
            return
        try:
            scoring.undo_event(session, int(event_ref[len(_EVENT) :]), by=by, at=at, source=source)
        except scoring.ScoringError as exc:
            raise _refusal(exc) from None

    def unit_total(self, session: Session, unit: Unit, at: datetime) -> Decimal | None:
        """The unit's points in the quarter of `at` (an item's receipt, or now)."""
        session.flush()
        quarter = quarter_of(at, self.zone, self.rulebook.calendar)
        for standing in standings(session, self.rulebook, quarter.label, self.zone):
            if standing.unit_code == unit.code:
                return standing.points
        return None
