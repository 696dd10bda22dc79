"""The worked example year of the scoring tests, reported: the quarterly summaries carry exactly
the standings' numbers in HTML, text and .xlsx, and the streak notices reach the right leaders
once each (issue 7, acceptance 1 and 3). Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import io
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from html.parser import HTMLParser

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from ledger.db import Ledger
from ledger.models import OutboundMessage, Person, Unit
from ledger.rulebook import load_rulebook
from ledger.standings import Standing, standings
from reports.deliver import ReportSettings, build, send_report
from reports.model import QuarterlyReport
from reports.render import ReportWriter, points_text
from reports.xlsx import xlsx_bytes
from tests.scoring_kit import SHANGHAI, Office
from tests.test_scoring_worked_example import build_year

RULES = load_rulebook("guangzhou-2004")
SETTINGS = ReportSettings(zone=SHANGHAI, sender="inf@mailroom.test", sender_name="政务信息处")
ISSUED = date(2026, 12, 1)


@pytest.fixture
def year(ledger: Ledger) -> Iterator[Ledger]:
    """The worked example's units and events, and a 主管领导 and 主要领导 for every unit."""
    with ledger.transaction() as session:
        build_year(Office(session, RULES))
        for unit in session.scalars(select(Unit).where(Unit.sequence != "office")):
            for role, suffix in (("supervising_leader", "zg"), ("principal_leader", "zy")):
                session.add(
                    Person(
                        unit_id=unit.id,
                        role=role,
                        name=f"{unit.name}{'主管领导' if suffix == 'zg' else '主要领导'}",
                        email=f"{unit.code.lower()}-{suffix}@leaders.gz.test",
                        phone="020-83000001",
                        title="",
                    )
                )
    yield ledger


class Tables(HTMLParser):
    """The rows of every `<table>` in an HTML page, as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _expected(s: Standing) -> dict[str, str]:
    """What every form of the report must say for a unit, straight from the standings."""
    return {
        "排名": str(s.rank),
        "单位": s.unit_name,
        "报送": str(s.submitted),
        "采用": str(s.adopted),
        "采用得分": points_text(s.points_by_kind.get("adoption", Decimal(0))),
        "线索得分": points_text(s.points_by_kind.get("clue", Decimal(0))),
        "加分": points_text(s.points_by_kind.get("bonus", Decimal(0))),
        "扣分": points_text(s.deducted),
        "得分": points_text(s.points),
        "指标": points_text(s.target),
        "完成情况": {None: "—", True: "达标", False: "未达标"}[s.met],
    }


def test_quarterly_reports_carry_exactly_the_standings(year: Ledger) -> None:
    for quarter in ("2026Q1", "2026Q2", "2026Q3", "2026Q4"):
        check_quarter(year, quarter)


def check_quarter(year: Ledger, quarter: str) -> None:
    with year.reader() as session:
        truth = standings(session, RULES, quarter, SHANGHAI)
    report = build(year, RULES, SETTINGS, "quarterly", quarter, ISSUED)
    assert isinstance(report, QuarterlyReport)
    writer = ReportWriter()
    html, text = writer.html(report), writer.text(report)

    # .xlsx, read back with openpyxl: one sheet per sequence, every number as a number.
    book = load_workbook(io.BytesIO(xlsx_bytes(report)))
    sheets = {t.sequence: t.sheet_name for t in report.tables}
    assert list(sheets) == ["district", "dept_a", "dept_b", "direct"]
    for s in truth:
        rows = list(book[sheets[s.sequence]].iter_rows(values_only=True))
        header = [str(h) for h in rows[0]]
        got = next(dict(zip(header, r, strict=True)) for r in rows[1:] if r[1] == s.unit_code)
        assert got["单位"] == s.unit_name
        assert (got["排名"], got["报送"], got["采用"]) == (s.rank, s.submitted, s.adopted)
        assert Decimal(str(got["得分"])) == s.points
        assert got["指标"] == s.target
        assert Decimal(str(got["扣分"])) == s.deducted
        assert Decimal(str(got["加分"])) == s.points_by_kind.get("bonus", 0)
        assert Decimal(str(got["采用得分"])) == s.points_by_kind.get("adoption", 0)
        assert Decimal(str(got.get("直报点分成", 0))) == s.share_points
        assert got["完成情况"] == _expected(s)["完成情况"]
    # Every unit is in exactly one sheet, in rank order.
    listed = [
        r[1] for t in report.tables for r in book[t.sheet_name].iter_rows(2, values_only=True)
    ]
    assert listed == [s.unit_code for s in truth]

    # HTML: the standings tables, cell by cell under their headers.
    parser = Tables()
    parser.feed(html)
    headers = [r for r in parser.rows if r[:2] == ["排名", "单位"]]
    assert len(headers) == 4
    for s in truth:
        expected = _expected(s)
        header = headers[list(sheets).index(s.sequence)]
        row = next(r for r in parser.rows if len(r) == len(header) and r[1] == s.unit_name)
        cells = dict(zip(header, row, strict=True))
        assert {k: cells[k] for k in expected} == expected
        if s.share_points:
            assert cells["直报点分成"] == points_text(s.share_points)
        # The chart's label for the unit: points / target.
        assert f"{points_text(s.points)} / {points_text(s.target)}" in html

    # Plain text: the unit's line reads rank, name, then the same figures in order.
    for s in truth:
        expected = _expected(s)
        line = next(x for x in text.splitlines() if x.split()[1:2] == [s.unit_name])
        words = line.split()
        assert words[0] == expected["排名"]
        assert words[2:4] == [expected["报送"], expected["采用"]]
        assert words[-3:] == [expected["得分"], expected["指标"], expected["完成情况"]]
        assert words[-4] == expected["扣分"] and words[-5] == expected["加分"]

    # The analysis counts the same items.
    assert report.analysis.submitted == sum(s.submitted for s in truth)
    assert report.analysis.adopted == sum(s.adopted for s in truth)


def _notices(ledger: Ledger) -> list[tuple[str, str, str]]:
    """(to, subject, first line of the body) of every notice queued, in order."""
    out = []
    with ledger.reader() as session:
        for row in session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.kind == "notice")
            .order_by(OutboundMessage.id)
        ):
            msg = email.message_from_bytes(row.message, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            body = msg.get_body(("plain",))
            assert body is not None
            text = body.get_content()
            out.append((row.to_address, str(msg["Subject"]), text))
    return out


def test_streak_notices_reach_the_right_leaders_once_each(year: Ledger) -> None:
    for quarter in ("2026Q1", "2026Q2", "2026Q3", "2026Q4"):
        send_report(year, RULES, SETTINGS, "quarterly", quarter)
    notices = _notices(year)
    got = sorted((to, subject.rpartition("的")[2]) for to, subject, _ in notices)
    assert got == sorted(
        [
            # Q2: first 2 quarters met → 主管领导; YX missed Q1 and Q2 → its 主管领导.
            ("daj-zg@leaders.gz.test", "通报表扬"),
            ("jsw-zg@leaders.gz.test", "通报表扬"),
            ("qxj-zg@leaders.gz.test", "通报表扬"),
            ("th-zg@leaders.gz.test", "通报表扬"),
            ("yx-zg@leaders.gz.test", "通报批评"),
            # Q3: first 3 met → 主要领导; JTW's 2nd miss → 主管领导; YX's 3rd → 主要领导.
            ("daj-zy@leaders.gz.test", "通报表扬"),
            ("jsw-zy@leaders.gz.test", "通报表扬"),
            ("th-zy@leaders.gz.test", "通报表扬"),
            ("jtw-zg@leaders.gz.test", "通报批评"),
            ("yx-zy@leaders.gz.test", "通报批评"),
            # Q4: HZ's 2nd miss → 主管领导; JTW's 3rd → 主要领导.
            ("hz-zg@leaders.gz.test", "通报批评"),
            ("jtw-zy@leaders.gz.test", "通报批评"),
        ]
    )
    bodies = {to: text for to, _, text in notices}
    # 3 quarters missed: to the 主要领导, with the request to replace the info officer.
    for to in ("yx-zy@leaders.gz.test", "jtw-zy@leaders.gz.test"):
        assert "已累计 3 个考核季度未完成" in bodies[to]
        assert "提请更换贵单位信息员" in bodies[to]
    # 2 quarters missed: to the 主管领导, without it.
    for to in ("yx-zg@leaders.gz.test", "jtw-zg@leaders.gz.test", "hz-zg@leaders.gz.test"):
        assert "已累计 2 个考核季度未完成" in bodies[to] and "更换" not in bodies[to]
    assert bodies["yx-zy@leaders.gz.test"].startswith("越秀区主要领导同志：")

    # Running the quarters again (a restart, a second instance) sends no notice twice.
    for quarter in ("2026Q2", "2026Q3", "2026Q4"):
        again = send_report(year, RULES, SETTINGS, "quarterly", quarter)
        assert again.queued == 0
    assert len(_notices(year)) == len(notices)
