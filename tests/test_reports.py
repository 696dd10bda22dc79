"""Reports: the same numbers in HTML, text and .xlsx; files from the CLI; each mail sent once."""

from __future__ import annotations

import email
import email.policy
import threading
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from ingest.pipeline import Arrival
from ledger.db import Ledger
from ledger.demo import load_demo
from ledger.models import OutboundMessage, Person, ReportSend
from ledger.rulebook import load_rulebook
from reports.deliver import ReportSettings, send_notices, send_report, summary_recipients
from reports.model import QuarterlyReport, StandingRow, StreakNotice
from reports.render import GAP, MET, OVER, SHORT, ReportWriter, bars, points_text
from reports.xlsx import xlsx_bytes
from tests.conftest import REPO
from tests.reportdata import sample_quarterly
from tests.service import MailroomInstance

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock

ZONE = ZoneInfo("Asia/Shanghai")
RULEBOOK = load_rulebook("guangzhou-2004")
SETTINGS = ReportSettings(
    zone=ZONE,
    sender="inf@mailroom.test",
    sender_name="政务信息处",
    recipients=("mishuzhang@gz.gov.test", "ZHANGWEI@yx.gz.test"),
)


def _cells(report: QuarterlyReport) -> dict[str, dict[str, object]]:
    """Every sequence sheet of the report's .xlsx, read back: unit code → column → value."""
    import io

    book = load_workbook(io.BytesIO(xlsx_bytes(report)))
    out: dict[str, dict[str, object]] = {}
    for table in report.tables:
        sheet = book[table.sheet_name]
        rows = list(sheet.iter_rows(values_only=True))
        headers = [str(h) for h in rows[0]]
        for values in rows[1:]:
            record = dict(zip(headers, values, strict=True))
            out[str(record["单位代码"])] = record
    return out


def test_html_text_and_xlsx_carry_exactly_the_standings_numbers() -> None:
    report = sample_quarterly()
    writer = ReportWriter()
    html, text = writer.html(report), writer.text(report)
    cells = _cells(report)
    rows = [r for t in report.tables for r in t.rows]
    assert set(cells) == {r.unit_code for r in rows}
    for r in rows:
        got = cells[r.unit_code]
        assert (got["单位"], got["排名"], got["报送"], got["采用"]) == (
            r.unit_name,
            r.rank,
            r.submitted,
            r.adopted,
        )
        assert Decimal(str(got["得分"])) == r.points
        assert got["指标"] == (None if r.target is None else int(r.target))
        assert Decimal(str(got["加分"])) == r.bonuses
        assert Decimal(str(got["扣分"])) == r.deductions
        for pub, value in r.breakdown:
            assert Decimal(str(got[pub])) == value
        assert got["完成情况"] == {None: "—", True: "达标", False: "未达标"}[r.met]
        # The text line of the unit carries the same figures in the same order.
        line = next(x for x in text.splitlines() if x.split()[1:2] == [r.unit_name])
        assert line.split()[0] == str(r.rank)
        assert line.split()[-3:-1] == [points_text(r.points), points_text(r.target)]
        # The HTML row and the chart label both show points and target.
        assert f"{points_text(r.points)} / {points_text(r.target)}" in html
    assert "向其单位主要领导通报批评，并提请更换信息员" in text
    assert "向其单位主要领导通报批评，并提请更换信息员" in html
    assert "采用率 41.5%；上季度报送 161 条，被采用 59 条，采用率 36.6%" in text
    assert "天河区多措并举推进“放管服”改革取得新成效" in html
    assert "<style" not in html and "<script" not in html  # inline styles only, for webmail


def test_xlsx_is_formatted_one_sheet_per_sequence_with_a_bar_chart() -> None:
    import io

    report = sample_quarterly()
    book = load_workbook(io.BytesIO(xlsx_bytes(report)))
    assert book.sheetnames == [
        "区县级市",
        "部门A类",
        "部门B类",
        "直报点",
        "表扬与批评",
        "优秀信息篇目",
        "核心队伍",
        "分析",
    ]
    for name in book.sheetnames:
        sheet = book[name]
        assert sheet.freeze_panes == "A2"
        assert all(cell.font.bold for cell in sheet[1])
        assert sheet.column_dimensions["B"].width >= 6
    district = book["区县级市"]
    assert district.column_dimensions["C"].width >= 8  # 天河区 and friends fit
    # openpyxl drops charts when it reads a file, so look at the part inside the package.
    import zipfile

    with zipfile.ZipFile(io.BytesIO(xlsx_bytes(report))) as package:
        charts = sorted(n for n in package.namelist() if n.startswith("xl/charts/chart"))
        assert len(charts) == 4  # one per sequence sheet
        xml = package.read(charts[0]).decode()
    assert '<barDir val="bar" />' in xml and '<grouping val="clustered" />' in xml
    # Two series, 得分 (column K) and 指标 (L), over the unit names (C) as text categories.
    assert "<f>'区县级市'!$K$2:$K$7</f>" in xml and "<f>'区县级市'!$L$2:$L$7</f>" in xml
    assert xml.count("<strRef><f>'区县级市'!$C$2:$C$7</f></strRef>") == 2
    assert '<delete val="0" />' in xml  # axes shown
    criticism = {r[1]: r for r in book["表扬与批评"].iter_rows(min_row=2, values_only=True)}
    assert criticism["市气象局"][2:] == ("通报批评", 3, "主要领导", "是")


def test_bars_run_to_the_target_and_beyond_it_on_one_scale() -> None:
    def standing(points: str, target: str | None) -> StandingRow:
        goal = None if target is None else Decimal(target)
        return StandingRow(
            "U",
            "单位",
            "district",
            1,
            0,
            0,
            Decimal(points),
            goal,
            None if goal is None else Decimal(points) >= goal,
        )

    met, short, none = bars((standing("36", "18"), standing("9", "18"), standing("4.5", None)))
    assert met.segments == ((180, MET), (180, OVER))  # 36 is the top of the scale: 360 px
    assert short.segments == ((90, SHORT), (90, GAP))
    assert none.segments[0][0] == 45 and none.target == "—" and none.points == "4.5"
    assert points_text(Decimal("18.00")) == "18" and points_text(Decimal("10")) == "10"


@pytest.fixture
def office(ledger: Ledger) -> Ledger:
    with ledger.transaction() as session:
        load_demo(session)
    return ledger


def _leaders(ledger: Ledger) -> set[str]:
    with ledger.reader() as session:
        emails = session.scalars(
            select(Person.email).where(Person.role.in_(("supervising_leader", "principal_leader")))
        )
        return {e.lower() for e in emails}


def _outbox(ledger: Ledger) -> list[OutboundMessage]:
    with ledger.reader() as session:
        return list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def test_each_recipient_gets_the_report_once(office: Ledger) -> None:
    first = send_report(office, RULEBOOK, SETTINGS, "quarterly", "2026Q1")
    expected = _leaders(office) | {"mishuzhang@gz.gov.test"}
    assert {a.lower() for a in first.recipients} == expected
    assert (first.queued, first.already_sent) == (len(expected), 0)
    again = send_report(office, RULEBOOK, SETTINGS, "quarterly", "2026Q1")
    assert (again.queued, again.already_sent) == (0, len(expected))
    mails = _outbox(office)
    assert len(mails) == len(expected)
    assert {m.kind for m in mails} == {"report"}
    msg = email.message_from_bytes(mails[0].message, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["Subject"] == "2026年度第一季度政务信息工作总结"
    assert msg["Auto-Submitted"] == "auto-generated"
    parts = {p.get_content_type(): p for p in msg.walk()}
    assert "text/plain" in parts and "text/html" in parts
    attachment = next(msg.iter_attachments())
    assert attachment.get_filename() == "quarterly-2026Q1.xlsx"
    # Rendered once, addressed to each: its own To (with the leader's name) and Message-ID.
    parsed = [email.message_from_bytes(m.message, policy=email.policy.default) for m in mails]
    assert [p["To"].addresses[0].addr_spec for p in parsed] == [m.to_address for m in mails]
    assert len({p["Message-ID"] for p in parsed}) == len(mails)
    named = next(p for p in parsed if p["To"].addresses[0].addr_spec == "liuyang@yx.gz.test")
    assert named["To"].addresses[0].display_name == "刘洋"
    for m in mails:
        assert b"\n" not in m.message.replace(b"\r\n", b"")  # CRLF only, as SMTP requires
        assert max(len(line) for line in m.message.split(b"\r\n")) <= 998
        assert m.message.count(b"\r\nTo: ") + m.message.startswith(b"To: ") == 1
    # Another period, and another kind for the same period, are other reports.
    assert send_report(office, RULEBOOK, SETTINGS, "monthly", "2026-02").queued == len(expected)
    with office.reader() as session:
        keys = session.execute(select(ReportSend.report, ReportSend.period).distinct()).all()
        assert sorted(keys) == [("monthly", "2026-02"), ("quarterly", "2026Q1")]
        unlinked = session.scalar(
            select(func.count(ReportSend.id)).where(ReportSend.outbox_id.is_(None))
        )
        assert unlinked == 0


def test_two_senders_at_once_send_each_mail_once(office: Ledger, db_url: str) -> None:
    expected = len(_leaders(office) | {"mishuzhang@gz.gov.test"})
    others = [Ledger.from_url(db_url) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def run(handle: Ledger) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(send_report(handle, RULEBOOK, SETTINGS, "annual", "2026").queued)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(h,)) for h in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for h in others:
        h.dispose()
    assert not errors, errors
    assert sum(results) == expected
    assert len(_outbox(office)) == expected


def test_streak_notices_go_to_the_units_own_leader_once(office: Ledger) -> None:
    report = sample_quarterly()
    notices = (
        StreakNotice("YX", "越秀区", "criticism", 2, "supervising_leader"),
        StreakNotice("LW", "荔湾区", "criticism", 3, "principal_leader", replace_officer=True),
    )
    now = datetime.now(UTC)
    writer = ReportWriter()
    sent = send_notices(office, RULEBOOK, SETTINGS, report, notices, now, writer)
    assert sorted(sent.recipients) == ["wujianguo@lw.gz.test", "zhangwei@yx.gz.test"]
    again = send_notices(office, RULEBOOK, SETTINGS, report, notices, now, writer)
    assert (again.queued, again.already_sent) == (0, 2)
    mails = {m.to_address: m for m in _outbox(office)}
    assert {m.kind for m in mails.values()} == {"notice"}
    criticism3 = email.message_from_bytes(
        mails["wujianguo@lw.gz.test"].message, policy=email.policy.default
    )
    assert isinstance(criticism3, EmailMessage)
    body = criticism3.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert text.startswith("吴建国同志：")
    assert "累计 3 个考核季度未完成政务信息季度指标" in text
    assert "提请更换贵单位信息员" in text
    criticism2 = email.message_from_bytes(
        mails["zhangwei@yx.gz.test"].message, policy=email.policy.default
    )
    assert isinstance(criticism2, EmailMessage)
    assert criticism2["Subject"] == "关于越秀区2026年度政务信息工作的通报批评"
    body2 = criticism2.get_body(("plain",))
    assert body2 is not None and "更换" not in body2.get_content()
    with office.reader() as session:
        keys = sorted(session.execute(select(ReportSend.report, ReportSend.period)).all())
    assert keys == [("notice/LW/criticism3", "2026"), ("notice/YX/criticism2", "2026")]


def test_summary_recipients_are_office_leaders_then_unit_leaders(office: Ledger) -> None:
    with office.reader() as session:
        people = summary_recipients(session, SETTINGS.recipients)
        others = set(
            session.scalars(
                select(func.lower(Person.email)).where(Person.role.in_(("officer", "editor")))
            )
        )
    addresses = [p.address.lower() for p in people]
    # The configured leader who is also a unit's leader is listed once, as configured.
    assert addresses[:2] == ["mishuzhang@gz.gov.test", "zhangwei@yx.gz.test"]
    assert len(addresses) == len(set(addresses))
    assert set(addresses[2:]) == _leaders(office) - {"zhangwei@yx.gz.test"}
    assert others and not others & set(addresses)


@pytest.fixture
def mailroom(tmp_path: Path, db_url: str) -> MailroomInstance:
    instance = MailroomInstance(tmp_path / "office", db_url)
    instance.cli("init", "--demo")
    return instance


def test_report_command_writes_html_text_and_xlsx(mailroom: MailroomInstance) -> None:
    mailroom.cli(
        "ingest",
        str(REPO / "examples" / "valid.eml"),
        "--received-at",
        "2026-01-10T10:00:00+08:00",
        "--no-send",
    )
    out = mailroom.root / "reports"
    result = mailroom.cli("report", "quarterly", "--period", "2026q1", "--out", str(out))
    names = sorted(p.name for p in out.iterdir())
    assert names == ["quarterly-2026Q1.html", "quarterly-2026Q1.txt", "quarterly-2026Q1.xlsx"]
    assert result.stdout.split() == [str(out / n) for n in names]
    book = load_workbook(out / "quarterly-2026Q1.xlsx")
    rows = {r[1]: r for r in book["区县级市"].iter_rows(min_row=2, values_only=True)}
    assert rows["TH"][3] == 1  # the one item filed in the quarter, counted for 天河区
    assert "（2025年12月1日至2026年2月28日）" in (out / "quarterly-2026Q1.txt").read_text()
    # Nothing was sent by writing files.
    assert [o for o in mailroom.cli_json("outbox") if o["kind"] == "report"] == []


def test_report_command_sends_once(mailroom: MailroomInstance) -> None:
    first = mailroom.cli("report", "monthly", "--period", "2026-03", "--send")
    assert "had it already" in first.stdout and " 0 had it already" in first.stdout
    second = mailroom.cli("report", "monthly", "--period", "2026-03", "--send")
    assert "sent to 0 recipient(s)" in second.stdout
    reports = [o for o in mailroom.cli_json("outbox") if o["kind"] == "report"]
    assert reports and {o["state"] for o in reports} == {"sent"}
    assert len({o["to"].lower() for o in reports}) == len(reports)
    assert {o["subject"] for o in reports} == {"2026年3月政务信息积分通报"}


def test_report_command_mistakes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailroom.cli import main

    # The period is checked before the database is touched: no `init` needed.
    config = tmp_path / "mailroom.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/none.db"\n', encoding="utf-8")
    cases = [
        (
            ["quarterly", "--period", "2026-03"],
            "--period '2026-03' is not a quarter such as 2026Q1",
        ),
        (["monthly", "--period", "2026-13"], "--period '2026-13': month must be 01 to 12"),
        (
            ["annual", "--period", "2026Q1"],
            "--period '2026Q1' is not an assessment year such as 2026",
        ),
    ]
    for args, message in cases:
        assert main(["--config", str(config), "report", *args]) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", f"mailroom: {message}\n")


def test_pipeline_items_count_in_the_report_quarter(
    office: Ledger, db_url: str, tmp_path: Path
) -> None:
    from mailroom.app import App
    from mailroom.config import parse_config

    config = parse_config({"database": {"url": db_url}}, tmp_path, environ={})
    app = App.open(config)
    try:
        raw = (REPO / "examples" / "valid.eml").read_bytes()
        when = datetime(2026, 2, 28, 23, 30, tzinfo=ZONE)  # the last half hour of 2026Q1
        assert app.pipeline.process(raw, Arrival("daily", "file", when)).state == "filed"
        from reports.deliver import build

        q1 = build(app.ledger, RULEBOOK, SETTINGS, "quarterly", "2026Q1", when.date())
        q2 = build(app.ledger, RULEBOOK, SETTINGS, "quarterly", "2026Q2", when.date())
    finally:
        app.close()
    assert isinstance(q1, QuarterlyReport) and isinstance(q2, QuarterlyReport)
    assert (q1.analysis.submitted, q2.analysis.submitted) == (1, 0)
    assert q2.analysis.previous_submitted == 1
