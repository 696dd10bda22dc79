"""One editor's message as the desk applies it: everything that lives for that message only.

Two desk mailboxes polled at once apply two messages at once; nothing of one may reach the
other, so the per-message state (who commands, the intake it came in as, the notices owed to
units) is a `Reply`, made for the message and dropped with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from ingest.desk.trust import Trust
from ledger.models import Submission, Unit
from parser.commands import CommandLine


@dataclass
class LineOutcome:
    """What became of one command line."""

    line: CommandLine
    applied: bool = False
    code: str | None = None
    detail: str = ""
    label: str = ""
    tracking_no: str | None = None
    unit_id: int | None = None
    counted_at: datetime | None = None  # the quarter whose total the editor is shown


@dataclass
class Notice:
    """What a unit is told of its item: the decisions on it, in order."""

    item: Submission
    unit: Unit
    events: list[tuple[str, str]] = field(default_factory=list)  # (verb, what)


@dataclass
class Reply:
    session: Session
    intake_id: int | None  # None: an action from the web console, not a message
    trust: Trust
    source: str  # the audit's `source`: "intake:<id> <Message-ID>"
    now: datetime
    notices: dict[int, Notice] = field(default_factory=dict)

    @property
    def editor(self) -> str:
        return self.trust.editor

    def tell_unit(self, item: Submission, unit: Unit, verb: str, what: str) -> None:
        self.notices.setdefault(item.id, Notice(item, unit)).events.append((verb, what))

    def checkpoint(self) -> dict[int, list[tuple[str, str]]]:
        return {item_id: list(n.events) for item_id, n in self.notices.items()}

    def roll_back(self, checkpoint: dict[int, list[tuple[str, str]]]) -> None:
        """Forget what was owed since `checkpoint` (a reply group that did not apply whole)."""
        for item_id in list(self.notices):
            if item_id in checkpoint:
                self.notices[item_id].events = checkpoint[item_id]
            else:
                del self.notices[item_id]
