"""The desk's verbs (SPEC §4.2) as a table: verb → what applying one line of it does.

Every line goes the same way: find the item it names (or the keyed one), then its verb
applies it — a decision without points (不采用, 退回), a scoring event through the rulebook
(采用, bonuses, 线索, 扣分) or an undo (撤销) — as a desk action and an audit row. A line that
cannot apply raises `Refused` with a desk reason code and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from ingest.desk.reply import LineOutcome, Reply
from ingest.desk.scoring import DeskScoring, Refused, Resolved
from ledger import audit
from ledger.models import DeskAction, Submission, Unit
from ledger.wording import N_
from parser.commands import Tag


class Verb:
    """One verb's way of applying a line. `needs_item`: the line must name an item."""

    needs_item = True

    def apply(
        self,
        scoring: DeskScoring,
        reply: Reply,
        result: LineOutcome,
        tag: Tag,
        item: Submission | None,
    ) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class _Acting(Verb):
    """A verb that records an action on an item (or a unit) and may tell the unit."""

    scores: bool
    tells_unit: bool
    needs_item: bool = True

    def resolve(
        self, scoring: DeskScoring, reply: Reply, tag: Tag, item: Submission | None
    ) -> Resolved:
        raise NotImplementedError

    def apply(
        self,
        scoring: DeskScoring,
        reply: Reply,
        result: LineOutcome,
        tag: Tag,
        item: Submission | None,
    ) -> None:
        session = reply.session
        if item is not None and item.status != "filed" and self.needs_item:
            raise Refused("item_not_current")
        resolved = self.resolve(scoring, reply, tag, item)
        unit = _unit_of(reply, resolved, item)
        if not reply.trust.trusted and item is not None and unit.id != item.unit_id:
            raise Refused("key_for_other_item")  # a key covers its own item's unit only
        if item is not None and not resolved.repeatable and _active(reply, item.id, resolved.key):
            raise Refused("already_recorded", resolved.label)
        event_ref = None
        if self.scores:
            event_ref = scoring.record(
                session, resolved, item, by=reply.editor, at=reply.now, source=reply.source
            )
        action = DeskAction(
            submission_id=item.id if item else None,
            unit_id=unit.id,
            editor=reply.editor,
            verb=resolved.verb,
            key=resolved.key,
            text=result.line.source,
            issue=tag.issue,
            intake_id=reply.intake_id,
            at=reply.now,
            event_ref=event_ref,
        )
        session.add(action)
        session.flush()
        if event_ref is None:
            # A decision without points (不采用, 退回); scoring audits its own events.
            audit.record(
                session,
                at=reply.now,
                actor=reply.editor,
                action=resolved.verb,
                source=reply.source,
                subject=item.tracking_no if item else unit.code,
                details={
                    "desk_action": action.id,
                    "unit": unit.code,
                    "what": resolved.label,
                    "note": resolved.note,
                    "line": result.line.source,
                },
            )
        result.applied, result.label, result.unit_id = True, resolved.label, unit.id
        result.counted_at = item.received_at if item is not None else reply.now
        if item is not None and self.tells_unit:
            reply.tell_unit(item, unit, resolved.verb, resolved.note or resolved.label)


@dataclass(frozen=True)
class Decision(_Acting):
    """不采用 / 退回: the editors' decision on an item, worth no points."""

    verb: str = ""
    label: str = ""
    needs_text: bool = False

    def resolve(
        self, scoring: DeskScoring, reply: Reply, tag: Tag, item: Submission | None
    ) -> Resolved:
        if self.needs_text and not tag.text:
            raise Refused("missing_reason")
        label = scoring.words(self.label)
        return Resolved(verb=self.verb, key=self.verb, label=label, note=tag.text)


@dataclass(frozen=True)
class Scored(_Acting):
    """采用, a bonus, 线索, 扣分, 加分: a scoring event under the rulebook in force."""

    def resolve(
        self, scoring: DeskScoring, reply: Reply, tag: Tag, item: Submission | None
    ) -> Resolved:
        return scoring.resolve(reply.session, tag, item)


class Undo(Verb):
    """撤销 [what]: the latest live action on the item (of that kind, when named) stops counting."""

    def apply(
        self,
        scoring: DeskScoring,
        reply: Reply,
        result: LineOutcome,
        tag: Tag,
        item: Submission | None,
    ) -> None:
        assert item is not None
        session = reply.session
        query = (
            select(DeskAction)
            .where(
                DeskAction.submission_id == item.id,
                DeskAction.undone_at.is_(None),
                DeskAction.verb != "undo",
            )
            .order_by(DeskAction.id.desc())
        )
        if tag.target is not None:
            target = tag.target
            key = _key_of(scoring, reply, target, item)
            if key is not None:
                query = query.where(DeskAction.key == key)
            else:
                query = query.where(DeskAction.verb == target.verb)
        earlier = session.scalars(query.limit(1)).first()
        if earlier is None:
            raise Refused("nothing_to_undo", tag.text)
        if earlier.event_ref:
            scoring.undo(
                session, earlier.event_ref, by=reply.editor, at=reply.now, source=reply.source
            )
        unit = session.get(Unit, earlier.unit_id)
        assert unit is not None
        undo = DeskAction(
            submission_id=item.id,
            unit_id=unit.id,
            editor=reply.editor,
            verb="undo",
            key=f"undo:{earlier.id}",
            text=result.line.source,
            intake_id=reply.intake_id,
            at=reply.now,
            event_ref=earlier.event_ref,
        )
        session.add(undo)
        session.flush()
        earlier.undone_at, earlier.undone_by = reply.now, undo.id
        if not earlier.event_ref:
            audit.record(
                session,
                at=reply.now,
                actor=reply.editor,
                action="undo",
                source=reply.source,
                subject=item.tracking_no,
                details={
                    "desk_action": undo.id,
                    "undoes": earlier.id,
                    "unit": unit.code,
                    "what": earlier.text,
                    "line": result.line.source,
                },
            )
        label = scoring.words("撤销：{what}", what=earlier.text)
        result.applied, result.label, result.unit_id = True, label, unit.id
        result.counted_at = item.received_at
        if earlier.verb == "adopt":
            reply.tell_unit(item, unit, "undo", earlier.text)


VERBS: dict[str, Verb] = {
    "adopt": Scored(scores=True, tells_unit=True),
    "bonus": Scored(scores=True, tells_unit=False),
    "clue": Scored(scores=True, tells_unit=False),
    "deduct": Scored(scores=True, tells_unit=False, needs_item=False),  # names a unit
    "unit_bonus": Scored(scores=True, tells_unit=False, needs_item=False),  # names a unit
    "decline": Decision(scores=False, tells_unit=True, verb="decline", label=N_("不采用")),
    "return": Decision(
        scores=False, tells_unit=True, verb="return", label=N_("退回修改"), needs_text=True
    ),
    "undo": Undo(),
}


def apply_line(scoring: DeskScoring, reply: Reply, result: LineOutcome) -> None:
    """Apply one command line; its outcome says whether it applied or why not."""
    line = result.line
    try:
        if line.error or line.tag is None:
            raise Refused(line.error or "unknown_tag")
        verb = VERBS.get(line.tag.verb)
        if verb is None:
            raise Refused("unknown_tag")
        item: Submission | None = None
        if verb.needs_item or line.tracking_no is not None or reply.trust.keyed is not None:
            item = _item(reply, result)
            result.tracking_no = item.tracking_no
        verb.apply(scoring, reply, result, line.tag, item)
    except Refused as refused:
        result.code, result.detail = refused.code, refused.detail


def _item(reply: Reply, result: LineOutcome) -> Submission:
    """The item a line names by tracking number, else the one the reply's key names."""
    line, keyed = result.line, reply.trust.keyed
    if line.tracking_no is None:
        if keyed is None:
            raise Refused("no_item")
        return keyed
    item = reply.session.scalars(
        select(Submission).where(func.upper(Submission.tracking_no) == line.tracking_no)
    ).first()
    if item is None:
        raise Refused("unknown_item")
    if not reply.trust.trusted and (keyed is None or keyed.id != item.id):
        raise Refused("key_for_other_item")
    return item


def _key_of(scoring: DeskScoring, reply: Reply, target: Tag, item: Submission) -> str | None:
    """Which earlier action `撤销 <target>` means, by its key (None: the latest of its verb)."""
    verb = VERBS.get(target.verb)
    if isinstance(verb, Decision):
        return target.verb
    if isinstance(verb, Scored) and target.words:
        return scoring.resolve(reply.session, target, item).key
    return None


def _unit_of(reply: Reply, resolved: Resolved, item: Submission | None) -> Unit:
    if resolved.unit_code:
        unit = reply.session.scalars(select(Unit).where(Unit.code == resolved.unit_code)).first()
        if unit is None:
            raise Refused("unknown_unit", resolved.unit_code)
        return unit
    assert item is not None
    unit_row = reply.session.get(Unit, item.unit_id)
    assert unit_row is not None
    return unit_row


def _active(reply: Reply, item_id: int, key: str) -> DeskAction | None:
    return reply.session.scalars(
        select(DeskAction)
        .where(
            DeskAction.submission_id == item_id,
            DeskAction.key == key,
            DeskAction.undone_at.is_(None),
            DeskAction.verb != "undo",
        )
        .order_by(DeskAction.id.desc())
        .limit(1)
    ).first()
