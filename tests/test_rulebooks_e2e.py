"""Longgang 2012 and Changji 2017 end to end (SPEC §9): a real `mailroom serve` on each office's
rulebook and demo registry, units mailing items over SMTP, an editor's batch at the desk, a 约稿
answered on time, late and not at all; then the standings, the payments, the monthly 通报 and the
annual report (HTML, text, .xlsx) carry the numbers worked out by hand below.

Each office lives in its plan's own year: serve and every CLI command run with their clock at a
fixed instant of it (the test sets the clock), so nothing here depends on today's date. Each
office runs on one of the two databases (Longgang on PostgreSQL, Changji on SQLite): the engine
is the same on both, and the rest of the suite runs everything on each.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import io
import json
import smtplib
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from mailroom.cli import main
from tests.service import MailroomInstance, plain_text, wait_for

ZONE = ZoneInfo("Asia/Shanghai")
PASSPHRASE = "信息科 编辑台 口令 2012"
# The 约稿's deadline, after it is opened: time for the on-time answers, sent first, to be filed.
DEADLINE_AFTER = timedelta(seconds=8)


class Office:
    """One office's serve at a fixed instant, and the means to mail it as units and editors do."""

    def __init__(self, instance: MailroomInstance, start: datetime) -> None:
        self.m = instance
        self.start = start
        self.began = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)

    def send(self, sender: str, to: str, msg: EmailMessage) -> None:
        with smtplib.SMTP("127.0.0.1", self.m.port, timeout=30) as smtp:
            smtp.sendmail(sender, [to], msg.as_bytes(policy=email.policy.SMTP))

    def origin(self, kind: str) -> list[EmailMessage]:
        return [m for m in self.m.outbox_messages() if m["X-Mailroom-Origin"] == kind]

    def item(
        self,
        sender: str,
        mark: str,
        title: str,
        body: str,
        signoff: list[str],
        *,
        to: str = "inf@mailroom.test",
        wait: str = "receipt",
    ) -> EmailMessage:
        """An item as a Foxmail user writes it, sent now, and the answer it gets."""
        before = len(self.origin(wait))
        self.send(sender, to, foxmail(sender, mark, title, body, signoff, self.now(), to))
        wait_for(lambda: len(self.origin(wait)) > before, what=f"the {wait} to {title}")
        return self.origin(wait)[-1]

    def burst(
        self, sender: str, mark: str, items: list[tuple[str, str]], signoff: list[str]
    ) -> None:
        """Several items of one unit sent one after another, as a unit clears its outbox; then
        their receipts. (Their tracking numbers follow in some order within the burst.)"""
        before = len(self.origin("receipt"))
        for title, body in items:
            to = "inf@mailroom.test"
            self.send(sender, to, foxmail(sender, mark, title, body, signoff, self.now(), to))
        wait_for(
            lambda: len(self.origin("receipt")) >= before + len(items),
            what=f"{len(items)} receipts to {mark}",
        )

    def file(
        self,
        tmp: Path,
        sender: str,
        mark: str,
        title: str,
        body: str,
        signoff: list[str],
        at: datetime,
    ) -> str:
        """An item that reached the office another way, filed by staff with its receive time
        (`mailroom ingest --received-at`); its tracking number."""
        path = tmp / f"{title}.eml"
        msg = foxmail(sender, mark, title, body, signoff, at, "inf@mailroom.test")
        path.write_bytes(msg.as_bytes(policy=email.policy.SMTP))
        out = self.m.cli("ingest", str(path), "--received-at", at.isoformat(), "--no-send")
        return out.stdout.split("filed ", 1)[1].split()[0]

    def desk(self, editor: str, lines: list[str]) -> str:
        """An editor's batch to the desk with the Approved: passphrase; the confirmation text."""
        before = len(self.origin("confirmation"))
        msg = EmailMessage()
        msg["From"] = editor
        msg["To"] = "desk@mailroom.test"
        msg["Subject"] = "编辑台指令"
        msg["Date"] = format_datetime(self.now())
        msg["Message-ID"] = make_msgid(domain=editor.split("@")[1])
        msg.set_content("\n".join([f"Approved: {PASSPHRASE}", *lines]) + "\n", charset="utf-8")
        self.send(editor, "desk@mailroom.test", msg)
        wait_for(lambda: len(self.origin("confirmation")) > before, what="the desk's confirmation")
        return plain_text(self.origin("confirmation")[-1])

    def until(self, instant: datetime) -> None:
        while self.now() < instant:
            time.sleep(min(1.0, (instant - self.now()).total_seconds() + 0.05))

    def read(self, *args: str) -> str:
        """A command that only reads (standings, payments, a report of a named period), run in
        this process: what it prints does not depend on the clock, and a fresh interpreter per
        command costs a second each."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["--config", str(self.m.config), *args]) == 0, args
        return out.getvalue()

    def json(self, *args: str) -> Any:
        return json.loads(self.read(*args, "--json"))

    def reports(self, tmp: Path, kind: str, period: str) -> tuple[str, str, Any]:
        out = tmp / f"{kind}-{period}"
        self.read("report", kind, "--period", period, "--out", str(out))
        html = (out / f"{kind}-{period}.html").read_text(encoding="utf-8")
        text = (out / f"{kind}-{period}.txt").read_text(encoding="utf-8")
        return html, text, load_workbook(out / f"{kind}-{period}.xlsx")


def foxmail(
    sender: str, mark: str, title: str, body: str, signoff: list[str], at: datetime, to: str
) -> EmailMessage:
    """An item as a Foxmail user writes it: GB18030 text, base64, the sign-off under the body."""
    msg = EmailMessage()
    msg["From"] = f"{mark} <{sender}>"
    msg["To"] = to
    msg["Subject"] = f"【{mark}】{title}"
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    msg["X-Mailer"] = "Foxmail 7.2.25.375[cn]"
    msg.set_content(body + "\n\n" + "\n".join(signoff) + "\n", charset="gb18030", cte="base64")
    return msg


@pytest.fixture
def office_at(tmp_path: Path, db_url: str) -> Iterator[Any]:
    started: list[MailroomInstance] = []

    def make(rulebook: str, start: datetime, editor: str) -> Office:
        instance = MailroomInstance(
            tmp_path / rulebook,
            db_url,
            clock=start,
            **{
                "rules.rulebook": rulebook,
                "security.reply_key_secret": "e2e-reply-key-" + rulebook,
            },
        )
        office = Office(instance, start)  # now, as the instance set its processes' clocks
        instance.cli("init", "--demo", "--rulebook", rulebook)
        address = editor.rpartition("<")[2].rstrip(">")
        instance.cli("editor", "passphrase", address, input=PASSPHRASE + "\n")
        started.append(instance)
        return office

    try:
        yield make
    finally:
        for instance in started:
            instance.close()


def by_code(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["unit_code"]: r for r in rows}


def sheet_rows(book: Any, name: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in book[name].iter_rows(values_only=True)]


# --- Longgang 2012 ------------------------------------------------------------------------------

LG_EDITOR = "陈静怡 <chenjingyi@xxk.lg.test>"


def lg_signoff(unit: str, name: str, phone: str, day: str) -> list[str]:
    return [f"作者单位：{unit}", f"姓名：{name}", f"联系电话：{phone}", f"日期：{day}"]


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_longgang_2012_a_month_and_the_year_by_hand(office_at: Any, tmp_path: Path) -> None:
    lg = office_at("longgang-2012", datetime(2012, 3, 5, 9, 0, tzinfo=ZONE), LG_EDITOR)
    lg.m.start()
    deadline = lg.now() + DEADLINE_AFTER
    lg.m.cli(
        "solicit", "open", "YG1203", "--topic", "全区春季植树活动开展情况",
        "--deadline", deadline.isoformat(), "--units", "LG-BJ,LG-QRWB,LG-QWZZB", "--no-send",
    )  # fmt: skip
    day = "2012年3月5日"
    ph = lg_signoff("平湖街道党政办", "陈伟明", "13926212861", day)
    bj = lg_signoff("布吉街道党政办", "李晓华", "18641636301", day)
    zz = lg_signoff("区委组织部办公室", "罗国平", "0755-84296235", day)
    # 区委组织部 answers the 约稿 on time (LG-2012-000001); 平湖街道 sends three items (2 … 4),
    # 布吉街道 one (5).
    lg.item(
        "luoguoping@qwzzb.lg.test", "区委组织部", "约稿：区委组织部组织干部参加植树活动",
        "区委组织部组织机关干部三百人参加义务植树。", zz, to="sfxx@mailroom.test",
    )  # fmt: skip
    for title in (
        "平湖街道推进旧工业区升级改造",
        "平湖街道开展社区安全隐患排查",
        "平湖街道召开春季工作会议",
    ):
        receipt = lg.item(
            "chenweiming@ph.lg.test", "平湖街道", title, f"{title}。会议明确了任务分工。", ph
        )
        assert "回执：LG-2012-00000" in str(receipt["Subject"])
    lg.item(
        "lixiaohua@bj.lg.test",
        "布吉街道",
        "布吉街道创新流动人口服务管理",
        "布吉街道试行居住登记一站式办理。",
        bj,
    )
    # 布吉街道 answers the 约稿 after its deadline (6): filed, and −10 (迟报).
    lg.until(deadline + timedelta(seconds=1))
    lg.item(
        "lixiaohua@bj.lg.test", "布吉街道", "约稿：布吉街道植树活动情况",
        "布吉街道组织群众植树一千株。", bj, to="sfxx@mailroom.test",
    )  # fmt: skip
    # 区人武部 never answers: closing the 约稿 records its −10 (不报).
    assert "1 missing answers deducted" in lg.m.cli("solicit", "close", "YG1203").stdout

    confirmation = lg.desk(
        LG_EDITOR,
        [
            "LG-2012-000002 采用 龙岗信息 专报",  # 20 points, 100 yuan
            "LG-2012-000002 采用 信息快报 日刊",  # 20 points, 250 yuan
            "LG-2012-000002 批示 区领导",  # +5 once per level, 50 yuan per instance …
            "LG-2012-000002 批示 区领导",  # … a second instruction: +0 points, +50 yuan
            "LG-2012-000002 批示 市领导",  # +10, 100 yuan
            "LG-2012-000003 采用 龙岗信息 周刊",  # 10 points, 50 yuan
            "LG-2012-000005 采用 粤办信息",  # 30 points, 400 yuan
            "LG-2012-000005 批示 省领导",  # +20, 200 yuan
            "加分 平湖街道 组织奖",  # +20 for the unit
            "扣分 布吉街道 区办通报 3月2日突发事件信息迟报",  # −10
        ],
    )
    assert "未执行" not in confirmation, confirmation
    # A 平湖街道 item of June, brought in by staff (LG-2012-000007), adopted 专刊 from the CLI.
    in_june = lg_signoff("平湖街道党政办", "陈伟明", "13926212861", "2012年6月12日")
    june = lg.file(
        tmp_path, "chenweiming@ph.lg.test", "平湖街道", "平湖街道完成年中安全生产检查",
        "平湖街道检查企业三百家。", in_june, datetime(2012, 6, 12, 10, 0, tzinfo=ZONE),
    )  # fmt: skip
    assert june == "LG-2012-000007"
    lg.m.cli("adopt", june, "龙岗信息", "专刊")  # 30 points, 200 yuan

    # By hand, March:
    #   平湖街道: item 2 = 20 + 20 + 5 + 10 = 55; item 3 = 10; 组织奖 20 → 85 points,
    #             bonuses 5 + 10 + 20 = 35; 3 submitted, 2 adopted.
    #   布吉街道: item 5 = 30 + 20 = 50; 区办通报 −10; 约稿 late −10 → 30; 2 submitted, 1 adopted.
    #   区委组织部: answered on time, nothing adopted → 0.   区人武部: no answer −10 → −10.
    # The year adds June's item to 平湖街道: 85 + 30 = 115, 4 submitted, 3 adopted.
    for period, ph_figures in (("2012-03", (85, 35, 3, 2, 1)), ("2012", (115, 35, 4, 3, 1))):
        rows = by_code(lg.json("standings", "--period", period))
        figures = {
            code: (r["points"], r["bonus_points"], r["submitted"], r["adopted"], r["rank"])
            for code, r in rows.items()
            if code in ("LG-PH", "LG-BJ")
        }
        assert figures == {"LG-PH": ph_figures, "LG-BJ": (30, 20, 2, 1, 2)}, period
        assert rows["LG-QWZZB"]["points"] == 0 and rows["LG-QRWB"]["points"] == -10
        assert all(r["metric"] == "points" and r["quota"] is None for r in rows.values())
    year = by_code(lg.json("standings", "--period", "2012"))
    # 平湖街道's annual task (基数表: 15 | 18 | 300): item 2 adopted by the city, items 2, 3 and
    # 7 by the district; 115 of 300 points. 区人武部's two-number row: 区 3, 积分 30.
    assert year["LG-PH"]["task"] == [
        {"name": "市", "target": 15, "actual": 1, "met": False},
        {"name": "区", "target": 18, "actual": 3, "met": False},
        {"name": "points", "target": 300, "actual": 115, "met": False},
    ]
    assert (year["LG-PH"]["target"], year["LG-PH"]["met"]) == (300, False)
    assert year["LG-QRWB"]["task"] == [
        {"name": "区", "target": 3, "actual": 0, "met": False},
        {"name": "points", "target": 30, "actual": -10, "met": False},
    ]

    # Payments: item 2 = 100 + 250 + 50 + 50 + 100 = 550, item 3 = 50 → March 600 for 平湖街道
    # (陈伟明), item 5 = 400 + 200 = 600 for 布吉街道 (李晓华): 1,200 yuan in March; June's
    # 专刊 200 more: 1,400 in the year.
    march = [
        ("LG-BJ", "LG-2012-000005", 200, "批示 省领导"),
        ("LG-BJ", "LG-2012-000005", 400, "《粤办信息》采用"),
        ("LG-PH", "LG-2012-000002", 50, "批示 区领导"),
        ("LG-PH", "LG-2012-000002", 50, "批示 区领导"),
        ("LG-PH", "LG-2012-000002", 100, "《龙岗信息》专报采用"),
        ("LG-PH", "LG-2012-000002", 100, "批示 市领导"),
        ("LG-PH", "LG-2012-000002", 250, "《信息快报》日刊采用"),
        ("LG-PH", "LG-2012-000003", 50, "《龙岗信息》周刊采用"),
    ]
    for period, expected in (
        ("2012-03", march),
        ("2012", sorted([*march, ("LG-PH", "LG-2012-000007", 200, "《龙岗信息》专刊采用")])),
    ):
        pay = lg.json("payments", "--period", period)
        rows_paid = sorted(
            (p["unit_code"], p["tracking_no"], p["amount_yuan"], p["reason"]) for p in pay
        )
        assert rows_paid == expected, period
        assert {p["author"] for p in pay if p["unit_code"] == "LG-PH"} == {"陈伟明"}
        assert all(p["period"] == period for p in pay)

    html, text, book = lg.reports(tmp_path, "monthly", "2012-03")
    for doc in (html, text):
        assert "2012年3月政务信息积分通报" in doc
        for title in ("街道序列", "区属单位序列", "驻龙岗单位序列", "扣分情况说明", "稿酬统计"):
            assert title in doc
        assert "布吉街道（街道序列）：区办通报，扣10分" in doc and "3月2日突发事件信息迟报" in doc
        assert "区人武部（区属单位序列）：约稿，扣10分" in doc and "约稿 YG1203 截止时未报送" in doc
        assert "布吉街道（街道序列）：约稿，扣10分" in doc and "约稿 YG1203 逾期报送" in doc
        assert "信息工作落后单位" in doc and "区人武部" in doc.split("信息工作落后单位")[1]
        assert "1200" in doc.split("稿酬统计")[1]
    assert "合计：1200 元" in text
    streets = sheet_rows(book, "街道")
    assert streets[0] == ("排名", "单位代码", "单位", "本月得分", "累计得分", "年度指标")
    assert streets[1][:5] == (1, "LG-PH", "平湖街道", 85, 85)
    assert streets[2][:5] == (2, "LG-BJ", "布吉街道", 30, 30)
    assert sheet_rows(book, "稿酬")[-1] == ("合计", None, None, None, None, 1200)
    assert {r[2] for r in sheet_rows(book, "扣分说明")[1:]} == {"区办通报", "约稿"}
    assert "LG-QRWB" in {r[0] for r in sheet_rows(book, "落后单位")[1:]}

    html, text, book = lg.reports(tmp_path, "annual", "2012")
    for doc in (html, text):
        assert "2012年度政务信息工作总结" in doc and "街道序列" in doc
        assert "先进集体（名额 20）" in doc and "优秀信息员（名额 50）" in doc
        assert "未完成年度积分任务的单位" in doc
        assert "市采用 1/15，区采用 3/18，积分 115/300" in doc
        assert "1400" in doc.split("稿酬统计")[1]
    annual_streets = sheet_rows(book, "街道")
    header = annual_streets[0]
    first = dict(zip(header, annual_streets[1], strict=True))
    assert (first["单位"], first["报送"], first["采用"], first["加分"], first["扣分"]) == (
        "平湖街道", 4, 3, 35, 0,
    )  # fmt: skip
    assert (first["得分"], first["指标"], first["完成情况"]) == (115, 300, "未达标")
    second = dict(zip(header, annual_streets[2], strict=True))
    assert (second["单位"], second["得分"], second["扣分"]) == ("布吉街道", 30, 20)
    awards = sheet_rows(book, "年度评选")
    assert [(r[0], r[5], r[7]) for r in awards[1:] if r[0] == "先进集体"] == [
        ("先进集体", "平湖街道", 115),
        ("先进集体", "布吉街道", 30),
    ]
    # 优秀信息员 by the points of the items they wrote: 陈伟明 55 + 10 + 30, 李晓华 50.
    assert [(r[5], r[7]) for r in awards[1:] if r[0] == "优秀信息员"] == [
        ("陈伟明", 95),
        ("李晓华", 50),
    ]
    assert sheet_rows(book, "稿酬")[-1][-1] == 1400
    assert lg.m.stop() == 0


# --- Changji 2017 -------------------------------------------------------------------------------

CJ_EDITOR = "杨晓丽 <yangxiaoli@xxk.cj.test>"


def cj_signoff(writer: str, phone: str, approver: str | None) -> list[str]:
    lines = [f"撰稿人：{writer}", f"联系电话：{phone}"]
    return [*lines, f"审签人：{approver}"] if approver else lines


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_changji_2017_a_month_and_the_year_by_hand(office_at: Any, tmp_path: Path) -> None:
    cj = office_at("changji-2017", datetime(2017, 6, 5, 9, 0, tzinfo=ZONE), CJ_EDITOR)
    cj.m.start()
    deadline = cj.now() + DEADLINE_AFTER
    cj.m.cli(
        "solicit", "open", "CJ1706", "--topic", "夏季防汛工作开展情况",
        "--deadline", deadline.isoformat(), "--units", "CJ-CJS,CJ-FKS,CJ-GAJ", "--no-send",
    )  # fmt: skip
    # 昌吉市 without its approver (审签人): refused, naming it, with the fix line.
    refusal = cj.item(
        "wangjianxin@cjs.cj.test", "昌吉市", "约稿：昌吉市全面落实防汛责任",
        "昌吉市落实防汛责任人一百二十名。", cj_signoff("王建新", "13943109484", None),
        to="sfxx@mailroom.test", wait="refusal",
    )  # fmt: skip
    words = plain_text(refusal)
    assert "落款缺少审签人" in words and "[missing_approver]" in words
    assert "请经本单位分管领导审核签发后，在正文末尾落款处注明“审签人：……”" in words
    assert "报送格式要求：标识、标题、正文、姓名、联系电话、审签人各要素俱全" in words
    # The same item with it: filed as CJ-2017-000001, the approver kept and shown to editors.
    forwards = len(cj.origin("desk"))
    cj.item(
        "wangjianxin@cjs.cj.test", "昌吉市", "约稿：昌吉市全面落实防汛责任",
        "昌吉市落实防汛责任人一百二十名。", cj_signoff("王建新", "13943109484", "毛建华"),
        to="sfxx@mailroom.test",
    )  # fmt: skip
    wait_for(lambda: len(cj.origin("desk")) > forwards, what="the forward to the editors")
    assert "【审签】毛建华" in plain_text(cj.origin("desk")[-1])
    shown = cj.json("items", "show", "CJ-2017-000001")
    assert shown["signoff"]["approver"] == "毛建华"
    # 公安局 one item (2); 州督查室 its monthly quota of ten items (3 … 12).
    gaj = cj_signoff("古丽娜尔·吐尔逊", "0994-2331368", "张建国")
    cj.item(
        "gulinaer.tuerxun@gaj.cj.test",
        "公安局",
        "州公安局深化社会面防控",
        "州公安局推进街面巡逻防控。",
        gaj,
    )
    zd = cj_signoff("叶丽华", "18660107029", "王志强")
    reports = [(f"州督查室督查重点项目进度（{n}）", f"第{n}批项目督查完成。") for n in range(1, 11)]
    cj.burst("yelihua@zdcs.cj.test", "州督查室", reports, zd)
    # 公安局 answers the 约稿 late (13): −10; 阜康市 never does: −10 when it closes.
    cj.until(deadline + timedelta(seconds=1))
    cj.item(
        "gulinaer.tuerxun@gaj.cj.test", "公安局", "约稿：州公安局汛期安全保卫",
        "州公安局部署汛期安全保卫工作。", gaj, to="sfxx@mailroom.test",
    )  # fmt: skip
    assert "1 missing answers deducted" in cj.m.cli("solicit", "close", "CJ1706").stdout

    confirmation = cj.desk(
        CJ_EDITOR,
        [
            "CJ-2017-000001 采用 内刊 动态",  # 10
            "CJ-2017-000002 采用 内刊 参阅参考",  # 40
            "CJ-2017-000002 批示 州领导",  # +10
            "CJ-2017-000002 批示 自治区领导",  # +20
            "CJ-2017-000002 上报 新疆要情",  # +10 (自治区采用), 500 yuan
            "CJ-2017-000002 上报 国务院采用",  # +0 (10 at most for 上报), 1000 yuan
            "CJ-2017-000003 采用 普刊",  # 10: one of 州督查室's ten, a 10% rate
            "加分 昌吉市 集中培训",  # +50
            "扣分 公安局 内容不实 6月2日报送的案件数据有误",  # −50
        ],
    )
    assert "未执行" not in confirmation, confirmation

    # By hand, June 2017 (the year so far is the same):
    #   昌吉市 (县市): 10 + 集中培训 50 = 60; bonuses 50; quota 100 a month, 1 submitted: not met.
    #   公安局 (州直重点部门): 40 + 10 + 20 + 10 + 0 = 80; 内容不实 −50; 约稿 late −10 → 20;
    #         bonuses 40; quota 20, 2 submitted: not met.
    #   州督查室 (州直非重点部门): 10 items, 1 adopted: quota 10 met at 10% → +20; 10 + 20 = 30.
    #   阜康市: no answer to the 约稿 → −10.
    month = by_code(cj.json("standings", "--period", "2017-06"))
    assert {
        code: (
            r["points"],
            r["bonus_points"],
            r["submitted"],
            r["adopted"],
            r["quota"],
            r["quota_met"],
        )
        for code, r in month.items()
        if code in ("CJ-CJS", "CJ-GAJ", "CJ-ZDCS", "CJ-FKS")
    } == {
        "CJ-CJS": (60, 50, 1, 1, 100, False),
        "CJ-GAJ": (20, 40, 2, 1, 20, False),
        "CJ-ZDCS": (30, 20, 10, 1, 10, True),
        "CJ-FKS": (-10, 0, 0, 0, 100, False),
    }
    assert (month["CJ-ZDCS"]["sequence"], month["CJ-ZDCS"]["rank"]) == ("other_dept", 1)
    # September: 州督查室 one item, brought in by staff and adopted in 普刊 (10): short of its
    # quota (1 of 10), no bonus that month. The year: 30 + 10 = 40, June's +20 the only bonus.
    september = cj.file(
        tmp_path, "yelihua@zdcs.cj.test", "州督查室", "州督查室开展秋季项目督查",
        "州督查室督查项目二十个。", zd, datetime(2017, 9, 11, 11, 0, tzinfo=ZONE),
    )  # fmt: skip
    cj.m.cli("adopt", september, "普刊")
    sept = by_code(cj.json("standings", "--period", "2017-09"))["CJ-ZDCS"]
    assert (sept["points"], sept["quota"], sept["quota_met"], sept["bonus_points"]) == (
        10, 10, False, 0,
    )  # fmt: skip
    year = by_code(cj.json("standings", "--period", "2017"))
    assert [year[c]["points"] for c in ("CJ-CJS", "CJ-GAJ", "CJ-ZDCS", "CJ-FKS")] == [
        60, 20, 40, -10,
    ]  # fmt: skip
    assert (year["CJ-ZDCS"]["submitted"], year["CJ-ZDCS"]["adopted"]) == (11, 2)
    assert year["CJ-ZDCS"]["bonus_points"] == 20 and year["CJ-ZDCS"]["quota"] is None

    # Author rewards: 新疆要情 500 + 国务院 1000, added up across levels, to the writer.
    pay = cj.json("payments", "--period", "2017")
    assert [(p["unit_code"], p["author"], p["tracking_no"], p["amount_yuan"]) for p in pay] == [
        ("CJ-GAJ", "古丽娜尔·吐尔逊", "CJ-2017-000002", 500),
        ("CJ-GAJ", "古丽娜尔·吐尔逊", "CJ-2017-000002", 1000),
    ]

    html, text, book = cj.reports(tmp_path, "monthly", "2017-06")
    for doc in (html, text):
        for title in ("县市序列", "国家级园区序列", "州直重点部门序列", "州直非重点部门序列"):
            assert title in doc
        assert "公安局（州直重点部门序列）：内容不实，扣50分" in doc
        assert "阜康市（县市序列）：约稿，扣10分" in doc
    other = sheet_rows(book, "州直非重点部门")
    assert other[0][:7] == ("排名", "单位代码", "单位", "本月报送", "本月采用", "报送指标", "完成")
    assert other[1] == (1, "CJ-ZDCS", "州督查室", 10, 1, 10, "达标", 30, 30)
    counties = {r[1]: r for r in sheet_rows(book, "县市")[1:]}
    assert counties["CJ-CJS"][3:9] == (1, 1, 100, "未达标", 60, 60)

    html, text, book = cj.reports(tmp_path, "annual", "2017")
    for doc in (html, text):
        assert "2017年度政务信息工作总结" in doc and "州直非重点部门序列" in doc
        assert "先进单位（名额 12，奖励 2000 元）" in doc
        assert "五、稿酬统计" in doc and "1500" in doc.split("五、稿酬统计")[1]
        assert "本规则未设年度指标" in doc
    other = sheet_rows(book, "州直非重点部门")
    zdcs = dict(zip(other[0], other[1], strict=True))
    assert (zdcs["单位"], zdcs["报送"], zdcs["采用"], zdcs["加分"], zdcs["得分"]) == (
        "州督查室", 11, 2, 20, 40,
    )  # fmt: skip
    key = dict(
        zip(sheet_rows(book, "州直重点部门")[0], sheet_rows(book, "州直重点部门")[1], strict=True)
    )
    assert (key["单位"], key["加分"], key["扣分"], key["得分"]) == ("公安局", 40, 60, 20)
    awards = sheet_rows(book, "年度评选")
    assert [(r[4], r[5]) for r in awards[1:]] == [
        ("县市序列", "昌吉市"),
        ("州直重点部门序列", "公安局"),
        ("州直非重点部门序列", "州督查室"),
    ]
    assert sheet_rows(book, "稿酬")[-1][-1] == 1500
    assert cj.m.stop() == 0


# --- Longnan --------------------------------------------------------------------------------------

LN_EDITOR = "雷伟 <leiwei@xxk.ln.test>"


def ln_signoff(unit: str, name: str, phone: str, approver: str) -> list[str]:
    return [
        f"作者单位：{unit}",
        f"姓名：{name}",
        f"联系电话：{phone}",
        "日期：2011年5月9日",
        f"审签人：{approver}",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_longnan_a_quarter_by_counts_with_signoff_by_importance(
    office_at: Any, tmp_path: Path
) -> None:
    ln = office_at("longnan", datetime(2011, 5, 9, 9, 0, tzinfo=ZONE), LN_EDITOR)
    ln.m.start()
    cx = ln_signoff("成县人民政府办公室", "刘伟", "0939-8885870", "蔡红霞")  # 信息科长
    # A 重大 item signed by the section chief: refused, naming who may sign it.
    refusal = ln.item(
        "liuwei@cx.ln.test", "成县", "【重大】成县全力应对强降雨", "成县转移群众三百人。", cx,
        wait="refusal",
    )  # fmt: skip
    words = plain_text(refusal)
    assert "审签人“蔡红霞”无权审签重大信息" in words and "[approver_rank_too_low]" in words
    assert "重大信息须由分管副秘书长、办公室主任、秘书长、分管副市长或市长审签" in words
    # By someone the unit has not registered: refused unknown_approver.
    stranger = ln_signoff("成县人民政府办公室", "刘伟", "0939-8885870", "王大明")
    refusal = ln.item(
        "liuwei@cx.ln.test", "成县", "【重大】成县全力应对强降雨", "成县转移群众三百人。",
        stranger, wait="refusal",
    )  # fmt: skip
    assert "[unknown_approver]" in plain_text(refusal)
    # Signed by the deputy (分管副秘书长 / 办公室副主任): filed as LN-2011-000001, grade 重大.
    deputy = ln_signoff("成县人民政府办公室", "刘伟", "0939-8885870", "蒲小红")
    receipt = ln.item(
        "liuwei@cx.ln.test", "成县", "【重大】成县全力应对强降雨", "成县转移群众三百人。", deputy
    )
    assert "重要程度：重大" in plain_text(receipt) and "审 签 人：蒲小红" in plain_text(receipt)
    shown = ln.json("items", "show", "LN-2011-000001")
    assert (shown["importance"], shown["signoff"]["approver"]) == ("重大", "蒲小红")
    # Two more 一般 items of 成县 (2, 3), far below its 30 a month.
    for title in ("成县推进电商扶贫", "成县召开招商引资推进会"):
        ln.item("liuwei@cx.ln.test", "成县", title, f"{title}情况。", cx)
    # 武都区 one item (4).
    wd = ln_signoff("武都区人民政府办公室", "徐霞", "15834817677", "梁志明")
    ln.item("xuxia@wdq.ln.test", "武都区", "武都区推进花椒产业", "武都区新建花椒基地。", wd)
    # 市财政局 two items (5, 6): below its 10.
    cz = ln_signoff("市财政局办公室", "蔡雪梅", "0939-8712078", "彭建平")
    for title in ("市财政局下达灾后重建资金", "市财政局开展财政资金绩效评价"):
        ln.item("caixuemei@sczj.ln.test", "市财政局", title, f"{title}。", cz)
    # 国网陇南供电公司 (省驻陇南单位, ranked among the 部门) its five of May (7 … 11): met.
    gd = ln_signoff("国网陇南供电公司办公室", "石海涛", "0939-8174727", "韩娜")
    power = [(f"供电公司迎峰度夏保供电（{n}）", "供电正常。") for n in range(1, 6)]
    ln.burst("shihaitao@gwlngdgs.ln.test", "国网陇南供电公司", power, gd)
    # 市城投公司 (企业) one 特别重大 item, signed by its section chief: refused; the plan asks
    # the 办公室主任 or higher. Then one 一般 item (12).
    ct = ln_signoff("陇南市城市建设投资有限公司", "石宝林", "13328377278", "赵天宝")
    ln.item(
        "shibaolin@sctgs.ln.test", "市城投公司", "【特别重大】城区主干道塌陷", "已封闭交通。", ct,
        wait="refusal",
    )  # fmt: skip
    ln.item(
        "shibaolin@sctgs.ln.test", "市城投公司", "城投公司推进棚户区改造", "完成拆迁一百户。", ct
    )
    # 成县 a 特别重大 item signed by its 办公室主任 (13): filed, and its desk forward says the grade
    # first and went out ahead of the rest.
    forwards = len(ln.origin("desk"))
    director = ln_signoff("成县人民政府办公室", "刘伟", "0939-8885870", "吴霞")
    ln.item("liuwei@cx.ln.test", "成县", "【特别重大】成县突发山洪", "已转移群众一千人。", director)
    wait_for(lambda: len(ln.origin("desk")) > forwards, what="the urgent forward")
    assert str(ln.origin("desk")[-1]["Subject"]).startswith("【特别重大】【待编】LN-2011-000013")

    confirmation = ln.desk(
        LN_EDITOR,
        [
            "LN-2011-000001 采用 陇南政务信息 调研",
            "LN-2011-000001 批示 市领导",
            "LN-2011-000004 采用 陇南政务信息 动态",
            "LN-2011-000005 采用 陇南政务信息 综合",
            "LN-2011-000007 采用 陇南政务信息 动态",
        ],
    )
    assert "未执行" not in confirmation, confirmation

    # By hand, May 2011 (the quarter holds only May's items): ranked by items submitted within
    # 县区 (成县 4, 武都区 1, the other seven 0), 部门 (供电公司 5, 市财政局 2, the rest 0) and
    # 企业 (市城投公司 1); quotas 30 / 10 / 5 a month.
    may = by_code(ln.json("standings", "--period", "2011-05"))
    picked = {
        code: (r["sequence"], r["submitted"], r["adopted"], r["rank"], r["quota"], r["quota_met"])
        for code, r in may.items()
        if code in ("LN-CX", "LN-WDQ", "LN-GWLNGDGS", "LN-SCZJ", "LN-SCTGS")
    }
    assert picked == {
        "LN-CX": ("county", 4, 1, 1, 30, False),
        "LN-WDQ": ("county", 1, 1, 2, 30, False),
        "LN-GWLNGDGS": ("provincial", 5, 1, 1, 5, True),
        "LN-SCZJ": ("city_dept", 2, 1, 2, 10, False),
        "LN-SCTGS": ("enterprise", 1, 0, 1, None, None),
    }
    assert all(r["metric"] == "count" for r in may.values())
    assert {
        r["rank"] for c, r in may.items() if r["sequence"] == "county" and r["submitted"] == 0
    } == {3}
    quarter = by_code(ln.json("standings", "--period", "2011Q2"))
    assert (quarter["LN-GWLNGDGS"]["quota"], quarter["LN-GWLNGDGS"]["submitted"]) == (None, 5)

    note = tmp_path / "note.txt"
    note.write_text(
        "存在问题：部分县区报送数量不足。\n工作要求：各县区要落实每月30条的任务。\n",
        encoding="utf-8",
    )
    ln.m.cli(
        "report",
        "quarterly",
        "--period",
        "2011Q2",
        "--note",
        str(note),
        "--out",
        str(tmp_path / "q0"),
    )
    html, text, book = ln.reports(tmp_path, "quarterly", "2011Q2")  # the note is kept
    for doc in (html, text):
        assert "2011年度第二季度政务信息工作总结" in doc
        assert "县区" in doc and "部门" in doc and "企业" in doc
        assert "优秀调研信息" in doc and "领导批示好信息" in doc
        assert "成县全力应对强降雨" in doc.split("优秀调研信息")[1]
        assert "工作要求：各县区要落实每月30条的任务。" in doc
    counties = sheet_rows(book, "县区")
    assert counties[0] == ("排名", "单位代码", "单位", "报送", "采用", "月度报送达标")
    assert counties[1] == (1, "LN-CX", "成县人民政府办公室", 4, 1, "0/3")
    assert counties[2] == (2, "LN-WDQ", "武都区人民政府办公室", 1, 1, "0/3")
    depts = {r[1]: r for r in sheet_rows(book, "部门")[1:]}
    assert depts["LN-GWLNGDGS"] == (1, "LN-GWLNGDGS", "国网陇南供电公司", 5, 1, "1/3")
    assert depts["LN-SCZJ"][0] == 2
    assert sheet_rows(book, "企业")[1] == (1, "LN-SCTGS", "陇南市城市建设投资有限公司", 1, 0)
    assert [r[2] for r in sheet_rows(book, "领导批示好信息")[1:]] == ["成县全力应对强降雨"]
    assert sheet_rows(book, "工作说明")[1:] == [
        ("存在问题：部分县区报送数量不足。",),
        ("工作要求：各县区要落实每月30条的任务。",),
    ]
    assert ln.m.stop() == 0
