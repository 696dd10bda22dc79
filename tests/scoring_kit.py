"""Helpers for scoring tests: registry rows, items as the pipeline files them, editors' tags."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ledger.models import Intake, Person, Submission, Unit
from ledger.rulebook import Rulebook
from ledger.scoring import record_adoption, record_bonus, record_clue

SHANGHAI = ZoneInfo("Asia/Shanghai")
EDITOR = "编辑 陈晓"


def local(
    year: int, month: int, day: int, hour: int = 10, minute: int = 0, sec: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=SHANGHAI)


class Office:
    """A registry and the items of its units, written straight into the ledger."""

    def __init__(self, session: Session, rulebook: Rulebook) -> None:
        self.session = session
        self.rulebook = rulebook
        self.units: dict[str, Unit] = {}
        self.officers: dict[str, Person] = {}
        self._numbers = itertools.count(1)

    def unit(
        self, code: str, name: str, sequence: str, parent: str | None = None, officer: str = ""
    ) -> Unit:
        unit = Unit(
            code=code,
            name=name,
            mark=f"【{name}】",
            sequence=sequence,
            parent_id=self.units[parent].id if parent else None,
        )
        self.session.add(unit)
        self.session.flush()
        self.units[code] = unit
        if officer:
            person = Person(
                unit_id=unit.id,
                role="officer",
                name=officer,
                email=f"{code.lower()}@units.gz.test",
                phone="020-83000000",
                title="信息员",
            )
            self.session.add(person)
            self.session.flush()
            self.officers[code] = person
        return unit

    def item(
        self, code: str, received: datetime, *tags: tuple[str, ...], mailbox: str = "daily"
    ) -> str:
        """File an item of unit `code` received at `received`, then apply editors' tags:
        ("采用", publication[, grade]), ("批示"|"上报", level), ("线索",)."""
        n = next(self._numbers)
        unit = self.units[code]
        intake = Intake(
            channel="file",
            mailbox=mailbox,
            received_at=received,
            state="filed",
            reasons=[],
            details={},
        )
        self.session.add(intake)
        self.session.flush()
        officer = self.officers.get(code)
        tracking_no = f"GZ-2026-{n:06d}"
        self.session.add(
            Submission(
                tracking_no=tracking_no,
                intake_id=intake.id,
                unit_id=unit.id,
                author_id=officer.id if officer else None,
                mailbox=mailbox,
                received_at=received,
                title=f"{unit.name}信息第{n}条",
                body="正文。",
                body_chars=3,
                status="filed",
                warnings=[],
            )
        )
        self.session.flush()
        for tag in tags:
            self.tag(tracking_no, *tag, at=received)
        return tracking_no

    def tag(self, tracking_no: str, verb: str, *args: str, at: datetime) -> int:
        kw = {"by": EDITOR, "at": at, "source": "test"}
        if verb == "采用":
            return record_adoption(self.session, self.rulebook, tracking_no, *args, **kw).event_id
        if verb == "线索":
            return record_clue(self.session, self.rulebook, tracking_no, **kw).event_id
        return record_bonus(self.session, self.rulebook, tracking_no, verb, *args, **kw).event_id
