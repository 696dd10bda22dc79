"""A filled-in quarterly report (Guangzhou units, plausible numbers) for the writers' tests.

The writers are pure functions of a report value, so their tests start from one; the numbers
of a real quarter come from the ledger's standings in the end-to-end report tests.
"""

from __future__ import annotations

from decimal import Decimal

from reports.model import (
    Analysis,
    CoreMember,
    ExcellentItem,
    QuarterlyReport,
    ReportHeader,
    SequenceTable,
    StandingRow,
    StreakNotice,
)

D = Decimal
PARTS = ("采用得分", "线索得分", "直报点分成")


def row(
    code: str,
    name: str,
    sequence: str,
    rank: int,
    submitted: int,
    adopted: int,
    pubs: tuple[str, str, str],
    bonuses: str,
    deductions: str,
    target: str | None,
) -> StandingRow:
    by_pub = tuple((p, D(v)) for p, v in zip(PARTS, pubs, strict=True))
    points = sum((v for _, v in by_pub), D(0)) + D(bonuses) - D(deductions)
    goal = None if target is None else D(target)
    return StandingRow(
        unit_code=code,
        unit_name=name,
        sequence=sequence,
        rank=rank,
        submitted=submitted,
        adopted=adopted,
        points=points,
        target=goal,
        met=None if goal is None else points >= goal,
        breakdown=by_pub,
        bonuses=D(bonuses),
        deductions=D(deductions),
    )


def sample_quarterly() -> QuarterlyReport:
    district = (
        row("TH", "天河区", "district", 1, 31, 14, ("17", "6", "5"), "5", "0", "18"),
        row("YX", "越秀区", "district", 2, 27, 11, ("14", "3", "0"), "5", "0", "18"),
        row("HZ", "海珠区", "district", 3, 22, 9, ("12", "3", "0"), "3", "0", "18"),
        row("PY", "番禺区", "district", 4, 19, 7, ("9", "3", "0"), "0", "0", "18"),
        row("LW", "荔湾区", "district", 5, 16, 5, ("8", "0", "0"), "0", "0", "18"),
        row("BY", "白云区", "district", 6, 12, 4, ("6", "3", "0"), "0", "4", "18"),
    )
    dept_a = (
        row("GAJ", "市公安局", "dept_a", 1, 18, 9, ("11", "3", "5"), "0", "0", "18"),
        row("JYJ", "市教育局", "dept_a", 2, 15, 6, ("8", "0", "0"), "2", "0", "18"),
    )
    dept_b = (
        row("LYJ", "市旅游局", "dept_b", 1, 14, 7, ("9", "3", "0"), "0", "0", "12"),
        row("QXJ", "市气象局", "dept_b", 2, 8, 3, ("4", "0", "0"), "0", "3", "12"),
    )
    direct = (
        row("DT", "广州市地下铁道总公司", "direct", 1, 6, 3, ("4", "0", "0"), "0", "0", None),
    )
    tables = tuple(
        SequenceTable(seq, title, rows, sheet)
        for seq, title, sheet, rows in (
            ("district", "区、县级市序列", "区县级市", district),
            ("dept_a", "工作部门序列A类", "部门A类", dept_a),
            ("dept_b", "工作部门序列B类", "部门B类", dept_b),
            ("direct", "直报点序列", "直报点", direct),
        )
    )
    return QuarterlyReport(
        header=ReportHeader(
            kind="quarterly",
            period="2026Q2",
            title="2026年度第二季度政务信息工作总结",
            span="2026年3月1日至2026年5月31日",
            office_name="市政府办公厅新闻信息处",
            issued="2026年6月1日",
        ),
        tables=tables,
        praise=(StreakNotice("TH", "天河区", "praise", 2, "supervising_leader"),),
        criticism=(
            StreakNotice("BY", "白云区", "criticism", 2, "supervising_leader"),
            StreakNotice("QXJ", "市气象局", "criticism", 3, "principal_leader", True),
        ),
        excellent=(
            ExcellentItem(
                "GZ-2026-000131",
                "天河区",
                "天河区多措并举推进“放管服”改革取得新成效",
                "《穗府信息调研》",
                D(5),
            ),
            ExcellentItem(
                "GZ-2026-000087", "市公安局", "我市春运期间治安形势总体平稳", "《穗府要情》", D(3)
            ),
        ),
        core_team=(
            CoreMember("李明", "天河区", D(21), 9),
            CoreMember("王芳", "越秀区", D(15), 7),
        ),
        analysis=Analysis(
            submitted=188,
            adopted=78,
            previous_submitted=161,
            previous_adopted=59,
            units_without_adoption=(),
            late_answers=2,
        ),
    )


def refusal_html() -> str:
    """The HTML part of the refusal the pipeline sends for `examples/malformed.eml`."""
    import email
    import email.policy
    import tempfile
    from datetime import UTC, datetime
    from email.message import EmailMessage
    from pathlib import Path

    from sqlalchemy import select

    from ingest.pipeline import Arrival
    from ledger.demo import load_demo
    from ledger.models import OutboundMessage
    from mailroom.app import App, migrate
    from mailroom.config import parse_config

    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="mailroom-refusal-") as tmp:
        url = f"sqlite:///{tmp}/mailroom.db"
        migrate(url)
        app = App.open(parse_config({"database": {"url": url}}, Path(tmp), environ={}))
        try:
            with app.ledger.transaction() as session:
                load_demo(session)
            raw = (repo / "examples" / "malformed.eml").read_bytes()
            app.pipeline.process(raw, Arrival("daily", "file", datetime.now(UTC)))
            with app.ledger.reader() as session:
                row = session.scalars(
                    select(OutboundMessage).where(OutboundMessage.kind == "refusal")
                ).one()
                data = row.message
        finally:
            app.close()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(("html",))
    assert part is not None
    html = part.get_content()
    assert isinstance(html, str)
    return html
