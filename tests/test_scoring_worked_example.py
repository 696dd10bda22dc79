"""The worked example (issue 5, acceptance 1): a whole assessment year scored by hand.

Nine ranked units in all four sequences (two 直报点 with their parents) and the office, through
2026 (Dec 1 2025 – Nov 30 2026), under the shipped Guangzhou rulebook (seed 001 §四, §五):
《穗府信息》标题 2 / 短波 1, 要情·专报·专刊 3, 调研 5, 市领导批示 +5 (adds to everything),
上报 省办采用 5 / 省领导批示 10 / 国办采用 10 / 国办领导批示 20 (highest only), 线索 2;
deductions 省办通报 −5, 市办通报 −3, 迟报 −4 (also for a late 约稿 answer); targets per quarter
18 (district, dept A) and 12 (dept B), per year 72 / 72 / 48, 直报点 6 a year; 50% of a
直报点's points go to its parent. Every expected number below is worked out in its comment.
Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from ledger.db import Ledger
from ledger.models import Submission
from ledger.rulebook import load_rulebook
from ledger.scoring import record_deduction, undo_event
from ledger.solicit import match_answer, open_solicitation, target_states
from ledger.standings import (
    Standing,
    StreakOutcome,
    core_team,
    officer_standings,
    standings,
    streak_outcomes,
)
from tests.scoring_kit import EDITOR, SHANGHAI, Office, local

RULES = load_rulebook("guangzhou-2004")

# Editors' tags.
R = ("采用", "调研")  # 5
Y = ("采用", "穗府要情")  # 3
ZB = ("采用", "专报")  # 3
ZK = ("采用", "专刊")  # 3
T = ("采用", "穗府信息", "标题")  # 2
D = ("采用", "穗府信息", "短波")  # 1
CITY = ("批示", "市领导")  # +5, cumulative
PROV = ("上报", "省办采用")  # 5 ┐
PROV_LEADER = ("上报", "省领导批示")  # 10 │ highest
STATE = ("上报", "国办采用")  # 10 │ only
STATE_LEADER = ("上报", "国办领导批示")  # 20 ┘
CLUE = ("线索",)  # 2

# One day in each month of each quarter of 2026.
Q1 = (local(2025, 12, 10), local(2026, 1, 12), local(2026, 2, 9))
Q2 = (local(2026, 3, 10), local(2026, 4, 14), local(2026, 5, 11))
Q3 = (local(2026, 6, 9), local(2026, 7, 14), local(2026, 8, 11))
Q4 = (local(2026, 9, 8), local(2026, 10, 13), local(2026, 11, 10))


def build_year(office: Office) -> None:
    u = office.unit
    u("GZB", "市政府办公厅新闻信息处", "office")
    u("TH", "天河区", "district", officer="李明")
    u("YX", "越秀区", "district", officer="王芳")
    u("HZ", "海珠区", "district", officer="赵磊")
    u("JSW", "市建委", "dept_a", officer="孙丽")
    u("JTW", "市交委", "dept_a", officer="周强")
    u("QXJ", "市气象局", "dept_b", officer="吴静")
    u("DAJ", "市档案局", "dept_b", officer="郑华")
    u("DT", "广州地铁", "direct", parent="JSW", officer="钱勇")
    u("GZG", "广州港集团", "direct", parent="JTW", officer="冯雪")
    item = office.item

    # --- 天河区 TH: every quarter met ------------------------------------------------------
    # Q1: 5 + 5 + 3 + 2 + 2 + 1 = 18 (the 短波 item arrived Feb 28 23:30 and was adopted on
    # Mar 3: an adoption counts in the quarter of its item).
    for tags in (R, R, Y, T, T):
        item("TH", Q1[1], tags)
    late_q1 = item("TH", local(2026, 2, 28, 23, 30))
    office.tag(late_q1, *D, at=local(2026, 3, 3))
    # Q2: 要情 3 + 市领导批示 5 + 省办采用 5 (both kinds add up) = 13; 调研 5 → 18.
    item("TH", Q2[0], Y, CITY, PROV)
    th_answer = item("TH", local(2026, 4, 9), R, mailbox="solicited")  # on time for YG-0410
    # Q3: 专报 3 + highest of (省办采用 5, 国办领导批示 20) = 23; one item not adopted.
    item("TH", Q3[1], ZB, PROV, STATE_LEADER)
    item("TH", Q3[2])
    # Q4: 专刊 3 + highest of (国办采用 10, 省领导批示 10) = 13; 线索 2; 标题 2 (received at the
    # last second of the year); 短波 1 → 18.
    item("TH", Q4[0], ZK, STATE, PROV_LEADER)
    item("TH", Q4[1], CLUE)
    item("TH", local(2026, 11, 30, 23, 59, 59), T)
    item("TH", Q4[2], D)
    # Received at the first instant of 2027: not in 2026 at all.
    item("TH", local(2026, 12, 1, 0, 0, 0), R)

    # --- 越秀区 YX: missed Q1, Q2, Q3 ------------------------------------------------------
    item("YX", Q1[0], R)
    item("YX", Q1[1], T)
    office_deduct("YX", "市办通报", local(2026, 1, 20), office)  # Q1: 5 + 2 − 3 = 4
    item("YX", Q2[0], Y)
    item("YX", Q2[1], D)  # Q2: 3 + 1 = 4
    for day in (Q3[0], Q3[0], Q3[1], Q3[2]):
        item("YX", day, R)
    office_deduct("YX", "省办通报", local(2026, 7, 10), office)  # Q3: 4 × 5 − 5 = 15
    for day in (*Q4, Q4[2]):
        item("YX", day, R)  # Q4: 4 × 5 = 20

    # --- 海珠区 HZ: a late 约稿 answer in Q2 ---------------------------------------------
    for tags in (R, R, R, Y):
        item("HZ", Q1[2], tags)  # Q1: 15 + 3 = 18
    for day in Q2:
        item("HZ", day, R)  # Q2: 15 so far
    for day in (*Q3, Q3[2]):
        item("HZ", day, R)  # Q3: 20
    for day in Q4:
        item("HZ", day, R)  # Q4: 15

    # --- 市建委 JSW and its 直报点 广州地铁 DT ---------------------------------------------
    for tags in (R, R, R, T):
        item("JSW", Q1[0], tags)  # Q1 own: 17
    item("DT", Q1[1], T)
    item("DT", Q1[2], D)  # DT Q1: 3 → JSW gets 1.5
    for tags in (R, R, Y):
        item("JSW", Q2[1], tags)  # Q2 own: 13
    item("DT", Q2[2], R, CITY)  # DT Q2: 5 + 5 = 10 → JSW gets 5
    for day in (*Q3, Q3[0]):
        item("JSW", day, R)  # Q3 own: 20
    office_deduct("DT", "迟报", local(2026, 8, 5), office)  # DT Q3: −4, not shared
    for tags in (R, R, R, T):
        item("JSW", Q4[1], tags)  # Q4 own: 17
    item("DT", Q4[2], D)  # DT Q4: 1 → JSW gets 0.5

    # --- 市交委 JTW and its 直报点 广州港集团 GZG -------------------------------------------
    for tags in (R, R, R, Y):
        item("JTW", Q1[1], tags)  # Q1 own: 18
    item("GZG", Q1[2], D)  # GZG Q1: 1 → JTW gets 0.5
    item("JTW", Q2[0], R)
    item("JTW", Q2[1], R)  # Q2: 10
    for tags in (R, R, Y):
        item("JTW", Q3[1], tags)  # Q3: 13; Q4: nothing

    # --- 市气象局 QXJ ------------------------------------------------------------------------
    for tags in (R, R, T):
        item("QXJ", Q1[0], tags)  # Q1: 12
    for day in (*Q2, Q2[2]):
        item("QXJ", day, Y)  # Q2: 4 × 3 = 12
    for tags in (R, R, D):
        item("QXJ", Q3[0], tags)  # Q3: 11
    for day in Q4:
        item("QXJ", day, R)  # Q4: 15

    # --- 市档案局 DAJ: an undone deduction and an undone adoption -------------------------
    for tags in (R, R, T, D):
        item("DAJ", Q1[1], tags)  # Q1: 13
    wrong = record_deduction(
        office.session, RULES, "DAJ", "迟报", by=EDITOR, at=local(2026, 2, 10), source="test"
    )
    assert wrong is not None
    undo_event(office.session, wrong.event_id, by=EDITOR, at=local(2026, 2, 12), source="test")
    for day in Q2:
        item("DAJ", day, R)  # Q2: 15
    mistaken = item("DAJ", Q2[2])
    event = office.tag(mistaken, *R, at=Q2[2])
    undo_event(office.session, event, by=EDITOR, at=Q2[2], source="test")  # Q2 stays 15
    for day in Q3:
        item("DAJ", day, R)  # Q3: 15
    for day in Q4:
        item("DAJ", day, R)  # Q4: 15

    # --- 约稿 YG-0410: TH answered on time (above); HZ answers late, twice ------------------
    session = office.session
    sol = open_solicitation(
        session,
        "YG-0410",
        "一季度重点项目进展",
        local(2026, 4, 10, 18),
        units=["TH", "HZ"],
        by=EDITOR,
        at=local(2026, 4, 1),
    )
    for tracking_no in (th_answer,):
        match_answer(session, RULES, _item(office, tracking_no), subject="【约稿】YG-0410 进展")
    first = item("HZ", local(2026, 4, 12), Y, mailbox="solicited")  # 3, and 迟报 −4
    second = item("HZ", local(2026, 4, 13), mailbox="solicited")  # late again: no 2nd deduction
    for tracking_no in (first, second):
        match_answer(session, RULES, _item(office, tracking_no), subject="【约稿】一季度进展")
    # HZ Q2: 15 + 3 − 4 = 14.
    states = {s.unit_code: s.state for s in target_states(session, sol, local(2026, 5, 1))}
    assert states == {"TH": "answered", "HZ": "late"}


def office_deduct(code: str, kind: str, at: datetime, office: Office) -> None:
    record_deduction(office.session, RULES, code, kind, by=EDITOR, at=at, source="test")


def _item(office: Office, tracking_no: str) -> Submission:
    return office.session.scalars(
        select(Submission).where(Submission.tracking_no == tracking_no)
    ).one()


def table(rows: list[Standing]) -> list[tuple[str, str, Decimal, int | None, bool | None, int]]:
    return [(s.sequence, s.unit_code, s.points, s.target, s.met, s.rank) for s in rows]


H = Decimal("0.5")


def test_a_whole_assessment_year_by_hand(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        build_year(Office(session, RULES))

    with ledger.reader() as session:
        q = {n: standings(session, RULES, f"2026Q{n}", SHANGHAI) for n in (1, 2, 3, 4)}
        year = standings(session, RULES, "2026", SHANGHAI)
        march = standings(session, RULES, "2026-03", SHANGHAI)
        officers_q1 = officer_standings(session, RULES, "2026Q1", SHANGHAI)
        team_q1 = core_team(session, RULES, "2026Q1", SHANGHAI)
        team_q1_small = core_team(session, replace(RULES, core_team_size=2), "2026Q1", SHANGHAI)
        team_q4 = core_team(session, RULES, "2026Q4", SHANGHAI)
        outcomes = streak_outcomes(session, RULES, 2026, SHANGHAI)
        outcomes_to_q2 = streak_outcomes(session, RULES, 2026, SHANGHAI, through=2)
        outcomes_to_q4 = streak_outcomes(session, RULES, 2026, SHANGHAI, through=4)
    # A reading session puts the year together from its quarters; a writing one reads the
    # year at once: the two agree.
    with ledger.transaction() as session:
        year_at_once = standings(session, RULES, "2026", SHANGHAI)

    # Ranks are per sequence; equal points share a rank (1, 1, 3). 直报点 have no quarterly
    # target, so no quarterly met/missed.
    assert table(q[1]) == [
        ("district", "HZ", 18, 18, True, 1),  # 15 + 3
        ("district", "TH", 18, 18, True, 1),  # 18, tied with HZ
        ("district", "YX", 4, 18, False, 3),  # 5 + 2 − 3
        ("dept_a", "JSW", 17 + H + 1, 18, True, 1),  # own 17 + 3 × 50% = 18.5: the share decides
        ("dept_a", "JTW", 18 + H, 18, True, 1),  # 18 + 1 × 50% = 18.5, tied
        ("dept_b", "DAJ", 13, 12, True, 1),  # 5 + 5 + 2 + 1; the undone 迟报 does not count
        ("dept_b", "QXJ", 12, 12, True, 2),  # 5 + 5 + 2: exactly the target is met
        ("direct", "DT", 3, None, None, 1),  # 2 + 1
        ("direct", "GZG", 1, None, None, 2),
    ]
    assert table(q[2]) == [
        ("district", "TH", 18, 18, True, 1),  # 3 + 5 + 5 + 5
        ("district", "HZ", 14, 18, False, 2),  # 15 + 3 (late answer) − 4 (迟报, once)
        ("district", "YX", 4, 18, False, 3),  # 3 + 1
        ("dept_a", "JSW", 18, 18, True, 1),  # 13 + 10 × 50%
        ("dept_a", "JTW", 10, 18, False, 2),
        ("dept_b", "DAJ", 15, 12, True, 1),  # the undone adoption does not count
        ("dept_b", "QXJ", 12, 12, True, 2),
        ("direct", "DT", 10, None, None, 1),  # 5 + 5
        ("direct", "GZG", 0, None, None, 2),
    ]
    assert table(q[3]) == [
        ("district", "TH", 23, 18, True, 1),  # 3 + max(5, 20), not 3 + 5 + 20
        ("district", "HZ", 20, 18, True, 2),
        ("district", "YX", 15, 18, False, 3),  # 20 − 5
        ("dept_a", "JSW", 20, 18, True, 1),  # DT's −4 is not shared
        ("dept_a", "JTW", 13, 18, False, 2),
        ("dept_b", "DAJ", 15, 12, True, 1),
        ("dept_b", "QXJ", 11, 12, False, 2),
        ("direct", "GZG", 0, None, None, 1),
        ("direct", "DT", -4, None, None, 2),  # 迟报
    ]
    assert table(q[4]) == [
        ("district", "YX", 20, 18, True, 1),
        ("district", "TH", 18, 18, True, 2),  # 3 + max(10, 10) + 2 + 2 + 1
        ("district", "HZ", 15, 18, False, 3),
        ("dept_a", "JSW", 17 + H, 18, False, 1),  # 17 + 1 × 50% = 17.5: half a point short
        ("dept_a", "JTW", 0, 18, False, 2),
        ("dept_b", "DAJ", 15, 12, True, 1),
        ("dept_b", "QXJ", 15, 12, True, 1),
        ("direct", "DT", 1, None, None, 1),
        ("direct", "GZG", 0, None, None, 2),
    ]
    # The year is the sum of its quarters (the 2027 item is left out); annual targets apply.
    assert table(year) == [
        ("district", "TH", 77, 72, True, 1),  # 18 + 18 + 23 + 18
        ("district", "HZ", 67, 72, False, 2),  # 18 + 14 + 20 + 15
        ("district", "YX", 43, 72, False, 3),  # 4 + 4 + 15 + 20
        ("dept_a", "JSW", 74, 72, True, 1),  # own 67 + share (3 + 10 + 0 + 1) × 50% = 7
        ("dept_a", "JTW", 41 + H, 72, False, 2),  # 18.5 + 10 + 13 + 0
        ("dept_b", "DAJ", 58, 48, True, 1),  # 13 + 15 + 15 + 15
        ("dept_b", "QXJ", 50, 48, True, 2),  # 12 + 12 + 11 + 15
        ("direct", "DT", 10, 6, True, 1),  # 3 + 10 − 4 + 1
        ("direct", "GZG", 1, 6, False, 2),
    ]
    assert year_at_once == year
    by_code = {s.unit_code: s for s in year}
    # submitted: items filed in the year; adopted: items with an adoption or a clue.
    assert (by_code["TH"].submitted, by_code["TH"].adopted) == (14, 13)  # 6+2+2+4; one not
    assert (by_code["HZ"].submitted, by_code["HZ"].adopted) == (16, 15)  # 2nd 约稿 answer not
    assert (by_code["DAJ"].submitted, by_code["DAJ"].adopted) == (14, 13)  # one undone
    assert (by_code["JSW"].own_points, by_code["JSW"].share_points) == (67, 7)
    assert (by_code["YX"].deducted, by_code["DT"].deducted, by_code["HZ"].deducted) == (8, 4, 4)
    # TH by kind: adoptions 18 (Q1) + 3 + 5 (Q2) + 3 (Q3) + 3 + 2 + 1 (Q4) = 35; bonuses
    # 5 + 5 (Q2) + 20 (Q3) + 10 (Q4) = 40; one clue 2 → 77.
    assert by_code["TH"].points_by_kind == {"adoption": 35, "bonus": 40, "clue": 2}
    # Months have no target: March holds TH's 要情 + 批示 + 省办采用 item only (13).
    assert [(s.unit_code, s.points, s.met) for s in march if s.sequence == "district"] == [
        ("TH", 13, None),
        ("HZ", 5, None),
        ("YX", 3, None),
    ]

    # Officers: the points of the items they wrote — no deductions, no 直报点 share.
    assert [(o.sequence, o.name, o.points, o.rank) for o in officers_q1] == [
        ("district", "赵磊", 18, 1),
        ("district", "李明", 18, 1),
        ("district", "王芳", 7, 3),  # YX's −3 is the unit's, not hers
        ("dept_a", "周强", 18, 1),  # JTW's own 18
        ("dept_a", "孙丽", 17, 2),  # JSW's 18.5 less DT's share
        ("dept_b", "郑华", 13, 1),
        ("dept_b", "吴静", 12, 2),
        ("direct", "钱勇", 3, 1),
        ("direct", "冯雪", 1, 2),
    ]
    # Core team: officers with points whose unit did not miss its quarterly target (YX did).
    assert [o.name for o in team_q1] == [
        "赵磊",
        "周强",
        "李明",
        "孙丽",
        "郑华",
        "吴静",
        "钱勇",
        "冯雪",
    ]
    # With room for 2, the three officers tied at 18 all stay.
    assert {o.name for o in team_q1_small} == {"赵磊", "周强", "李明"}
    # Q4: HZ, JSW and JTW missed, so their officers leave; YX met, so 王芳 joins; GZG scored 0.
    assert [o.name for o in team_q4] == ["王芳", "李明", "郑华", "吴静", "钱勇"]

    # Streaks (五(二)(三)).
    praise_sup, praise_pri = "supervising_leader", "principal_leader"
    assert outcomes == [
        # First 2 quarters met → praise to the 主管领导: TH, JSW (18.5, 18), QXJ, DAJ.
        StreakOutcome("DAJ", "市档案局", "dept_b", "praise", "2026Q2", 2, praise_sup),
        StreakOutcome("JSW", "市建委", "dept_a", "praise", "2026Q2", 2, praise_sup),
        StreakOutcome("QXJ", "市气象局", "dept_b", "praise", "2026Q2", 2, praise_sup),
        StreakOutcome("TH", "天河区", "district", "praise", "2026Q2", 2, praise_sup),
        # 2 quarters missed (Q1, Q2) → criticism to the 主管领导.
        StreakOutcome("YX", "越秀区", "district", "criticism", "2026Q2", 2, praise_sup),
        # First 3 quarters met → praise to the 主要领导 (QXJ missed Q3).
        StreakOutcome("DAJ", "市档案局", "dept_b", "praise", "2026Q3", 3, praise_pri),
        StreakOutcome("JSW", "市建委", "dept_a", "praise", "2026Q3", 3, praise_pri),
        StreakOutcome("TH", "天河区", "district", "praise", "2026Q3", 3, praise_pri),
        StreakOutcome("JTW", "市交委", "dept_a", "criticism", "2026Q3", 2, praise_sup),
        # The 3rd quarter missed → 主要领导, with a request to replace the info officer.
        StreakOutcome("YX", "越秀区", "district", "criticism", "2026Q3", 3, praise_pri, True),
        StreakOutcome("HZ", "海珠区", "district", "criticism", "2026Q4", 2, praise_sup),
        StreakOutcome("JTW", "市交委", "dept_a", "criticism", "2026Q4", 3, praise_pri, True),
        # Annual target missed → named in the annual summary.
        StreakOutcome("GZG", "广州港集团", "direct", "annual_missed", "2026", 0, None),
        StreakOutcome("HZ", "海珠区", "district", "annual_missed", "2026", 0, None),
        StreakOutcome("JTW", "市交委", "dept_a", "annual_missed", "2026", 0, None),
        StreakOutcome("YX", "越秀区", "district", "annual_missed", "2026", 0, None),
        # Award candidates: every quarter met (TH, DAJ); a 直报点 with its annual target (DT).
        StreakOutcome("DAJ", "市档案局", "dept_b", "award_candidate", "2026", 0, None),
        StreakOutcome("DT", "广州地铁", "direct", "award_candidate", "2026", 0, None),
        StreakOutcome("TH", "天河区", "district", "award_candidate", "2026", 0, None),
    ]
    # As of the end of Q2 only the Q2 outcomes have fired, and nothing annual.
    assert outcomes_to_q2 == [o for o in outcomes if o.period == "2026Q2"]
    # At the close of the last quarter: its praise and criticism, the annual ones not yet.
    assert outcomes_to_q4 == [o for o in outcomes if "Q" in o.period]
