"""An officer's 查询 over SMTP: their own unit's figures (the same as `standings --json`), one of
their items, never another unit's, nothing for a stranger, and a limit per sender."""

from __future__ import annotations

import contextlib
import io
import json
import re
import smtplib
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mailroom.cli import main
from parser.commands import StatusQuery, parse_status_query
from tests.service import MailroomInstance, plain_text

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2027, 1, 5, 10, 0, tzinfo=SHANGHAI)  # in 2027Q1 of the Guangzhou calendar
LIMING, WANGFANG, STRANGER = "liming@th.gz.test", "wangfang@yx.gz.test", "zhangsan@th.gz.test"


def mail(sender: str, subject: str, body: str = "") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "inf@mailroom.test"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(START)
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    msg.set_content(body or "请查询。\n")
    return msg


def item(sender: str, mark: str, title: str) -> EmailMessage:
    signoff = "作者单位：区政府办公室\n姓名：李明\n联系电话：020-38620000\n日期：2027年1月5日"
    return mail(sender, f"【{mark}】{title}", f"{title}，工作取得新进展。\n\n{signoff}\n")


@pytest.fixture
def office(tmp_path: Path, db_url: str) -> Iterator[MailroomInstance]:
    instance = MailroomInstance(
        tmp_path / "office", db_url, clock=START, **{"security.status_queries_per_hour": 3}
    )
    instance.init()
    instance.start()
    try:
        yield instance
    finally:
        instance.close()


def send(office: MailroomInstance, msg: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", office.port, timeout=30) as smtp:
        smtp.send_message(msg)


def to(office: MailroomInstance, address: str, subject: str) -> list[EmailMessage]:
    return [
        m
        for m in office.outbox_messages()
        if m["To"].addresses[0].addr_spec == address and str(m["Subject"]).startswith(subject)
    ]


def answer(office: MailroomInstance, subject: str, n: int) -> str:
    """Send LIMING's 查询 and wait for their n-th answer."""
    send(office, mail(LIMING, subject))
    office.wait(lambda: len(to(office, LIMING, "查询结果")) >= n, what=f"answer {n} to {subject}")
    return plain_text(to(office, LIMING, "查询结果")[n - 1])


def tracking_of(receipt: EmailMessage) -> str:
    found = re.search(r"登记编号：(\S+)", plain_text(receipt))
    assert found is not None
    return found.group(1)


def read(office: MailroomInstance, *args: str) -> Any:
    """A read-only command's --json answer, run in this process (no date in it to fix)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--config", str(office.config), *args, "--json"]) == 0
    return json.loads(out.getvalue())


def intake_rows(office: MailroomInstance) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = read(office, "intake", "list")
    return rows


def test_an_officer_gets_their_own_units_figures_and_nothing_of_another_unit(
    office: MailroomInstance,
) -> None:
    for sender, mark, title in (
        (LIMING, "天河区", "天河区推进一网通办"),
        (LIMING, "天河区", "天河区开展安全生产检查"),
        (WANGFANG, "越秀区", "越秀区老旧小区改造提速"),
    ):
        send(office, item(sender, mark, title))
    office.wait(lambda: len(to(office, LIMING, "回执")) == 2, what="TH's receipts")
    office.wait(lambda: len(to(office, WANGFANG, "回执")) == 1, what="YX's receipt")
    th_first, th_second = sorted(tracking_of(r) for r in to(office, LIMING, "回执"))
    yx_item = tracking_of(to(office, WANGFANG, "回执")[0])
    office.cli("adopt", th_first, "穗府信息", "标题")

    text = answer(office, "【查询】", 1)
    standings = read(office, "standings", "--period", "2027Q1")
    th = next(s for s in standings if s["unit_code"] == "TH")
    ranked = sum(1 for s in standings if s["sequence"] == th["sequence"])
    assert f"报送信息：2 条，其中采用 {th['adopted']} 条" in text and th["adopted"] == 1
    gap = max(th["target"] - th["points"], 0)
    assert f"累计得分：{th['points']}（指标 {th['target']}，尚差 {gap}）" in text
    assert f"第 {th['rank']} 名（共 {ranked} 个单位）" in text
    shown = read(office, "items", "show", th_first)
    assert f"{th_first} 天河区推进一网通办｜已采用｜穗府信息 标题｜{shown['points']} 分" in text
    assert f"{th_second} 天河区开展安全生产检查：待编辑审核" in text
    assert yx_item not in text and "越秀区" not in text

    other = answer(office, f"查询 {yx_item}", 2)
    assert f"登记编号 {yx_item} 不是本单位报送的信息" in other and "老旧小区" not in other
    own = answer(office, f"查询 {th_first}", 3)
    assert "办理情况：已采用" in own and "天河区推进一网通办" in own

    # A stranger at a known domain gets nothing; the fourth query in the hour is not answered.
    send(office, mail(STRANGER, "查询"))
    send(office, mail(LIMING, "查询 2027Q1"))
    office.wait(lambda: len(intake_rows(office)) == 8, what="the last two queries judged")
    rows = intake_rows(office)
    stranger = next(r for r in rows if r["from"] == STRANGER)
    assert (stranger["state"], stranger["reasons"]) == ("ignored", ["status_query_stranger"])
    last = [r for r in rows if r["from"] == LIMING][-1]
    assert (last["state"], last["reasons"]) == (
        "command_refused",
        ["status_query", "status_query_rate_limited"],
    )
    states = [(r["state"], r["reasons"]) for r in rows if r["from"] == LIMING][2:5]
    assert states == [
        ("command", ["status_query"]),
        ("command_refused", ["status_query", "status_query_not_own_item"]),
        ("command", ["status_query"]),
    ]
    assert to(office, STRANGER, "") == [] and len(to(office, LIMING, "查询结果")) == 3


@pytest.mark.parametrize(
    ("subject", "query"),
    [
        ("查询", StatusQuery()),
        ("【查询】", StatusQuery()),
        ("［查詢］ 2027q1", StatusQuery(period="2027Q1")),
        ("查询 2027-03", StatusQuery(period="2027-03")),
        ("Re: 查询 gz-2027-000012", StatusQuery(tracking_no="GZ-2027-000012")),
        ("【天河区】查询工作情况汇报", None),
        ("查询 下周", None),
        ("查询" + " " * 300, None),
    ],
)
def test_the_subject_of_a_status_query(subject: str, query: StatusQuery | None) -> None:
    assert parse_status_query(subject) == query
