"""The desk's one door into scoring: resolve a tag against the rulebook, record, undo, totals.

Everything the editors' desk asks of the scoring ledger goes through this module, so the desk
never names a scoring table or a rulebook number itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from ledger.models import Submission, Unit
from ledger.rulebook import Rulebook
from parser.commands import Tag

SCORING_VERBS = ("adopt", "bonus", "clue", "deduct")


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
    extra: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """A tag that cannot be applied; `code` is a desk reason code."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


class DeskScoring:
    def __init__(self, rulebook: Rulebook, zone: tzinfo) -> None:
        self.rulebook = rulebook
        self.zone = zone

    def bonus_verbs(self) -> tuple[str, ...]:
        return ()

    def example_tags(self) -> tuple[str, ...]:
        """Tags to show editors in each forward, built from the rulebook's names."""
        return ("不采用 理由", "退回 理由", "撤销")

    def resolve(self, session: Session, tag: Tag, item: Submission | None) -> Resolved:
        raise Refused("scoring_unavailable")

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
        raise Refused("scoring_unavailable")

    def undo(self, session: Session, event_ref: str, *, by: str, at: datetime, source: str) -> None:
        raise Refused("scoring_unavailable")

    def unit_total(self, session: Session, unit: Unit, at: datetime) -> int | None:
        return None
