"""The scoring commands of the CLI (SPEC §7.1): adopt, instruct, clue, deduct, undo,
standings (table and JSON), solicit; the same standings on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ledger.db import Ledger
from mailroom.cli import main
from tests.conftest import REPO
from tests.pgcluster import PgCluster
from tests.scoring_kit import Office
from tests.test_cli import assert_one_line_error, run
from tests.test_scoring_worked_example import RULES, build_year

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock

# SPEC §7.1: the stable names, and those wave 2 adds (metric, quota, quota_met, bonus_points;
# task: a unit's annual task table, when its rulebook has one).
STANDING_FIELDS = [
    "unit_code", "unit_name", "sequence", "points", "target", "met", "rank", "submitted",
    "adopted", "metric", "quota", "quota_met", "bonus_points", "task",
]  # fmt: skip


@pytest.fixture
def office(tmp_path: Path, db_url: str) -> Path:
    config = tmp_path / "mailroom.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    assert main(["--config", str(config), "init", "--demo"]) == 0
    return config


def test_staff_score_an_item_and_see_it_in_standings_and_items(
    office: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    valid = str(REPO / "examples/valid.eml")
    # Received on 2025-12-20 in Shanghai: assessment quarter 2026Q1.
    assert (
        run(office, capsys, "ingest", "--no-send", "--received-at", "2025-12-20T10:00", valid)[0]
        == 0
    )
    tracking = "GZ-2026-000001"
    code, out, _ = run(office, capsys, "adopt", tracking, "穗府信息", "标题", "--by", "陈编辑")
    assert (code, out) == (0, "recorded 采用 穗府信息 标题 as event 1: +2 for TH\n")
    assert run(office, capsys, "adopt", tracking, "调研")[0] == 0  # +5
    assert run(office, capsys, "instruct", tracking, "批示", "市领导")[0] == 0  # +5
    assert run(office, capsys, "instruct", tracking, "上报", "省办采用")[0] == 0  # +5 ┐ highest
    assert run(office, capsys, "instruct", tracking, "上报", "国办采用")[0] == 0  # +10 ┘ only
    assert run(office, capsys, "clue", tracking)[0] == 0  # +2
    code, out, _ = run(office, capsys, "deduct", "TH", "市办通报", "--at", "2026-01-05T09:00")
    assert (code, out) == (0, "recorded 扣分 市办通报 as event 7: -3 for TH\n")
    assert run(office, capsys, "undo", "6")[0] == 0  # the clue was a mistake

    # 2 + 5 + 5 + max(5, 10) = 22 on the item; − 3 for the unit = 19 ≥ 18.
    _, out, _ = run(office, capsys, "standings", "--period", "2026Q1", "--json")
    rows = json.loads(out)
    assert all(list(r) == STANDING_FIELDS for r in rows)
    th = next(r for r in rows if r["unit_code"] == "TH")
    assert th == {
        "unit_code": "TH", "unit_name": "天河区", "sequence": "district", "points": 19,
        "target": 18, "met": True, "rank": 1, "submitted": 1, "adopted": 1,
        "metric": "points", "quota": None, "quota_met": None, "bonus_points": 15, "task": [],
    }  # fmt: skip
    others = [r for r in rows if r["sequence"] == "district" and r["unit_code"] != "TH"]
    assert {(r["points"], r["rank"], r["met"]) for r in others} == {(0, 2, False)}
    assert "GZB" not in {r["unit_code"] for r in rows}  # the office is never ranked

    _, out, _ = run(office, capsys, "items", "list", "--json")
    item = json.loads(out)[0]
    assert item["points"] == 22
    assert [(a["kind"], a["name"], a["level"], a["points"]) for a in item["adoptions"]] == [
        ("adoption", "穗府信息", "标题", 2),
        ("adoption", "调研", None, 5),
        ("bonus", "批示", "市领导", 5),
        ("bonus", "上报", "省办采用", 5),
        ("bonus", "上报", "国办采用", 10),
    ]
    assert item["adoptions"][0]["by"] == "陈编辑"

    # Without --period: the current quarter, whatever it is (here nothing is scored in it).
    code, out, _ = run(office, capsys, "standings", "--json")
    assert code == 0 and {r["unit_code"] for r in json.loads(out)} == {r["unit_code"] for r in rows}
    _, out, _ = run(office, capsys, "standings", "--period", "2026Q1")
    assert "天河区" in out and "达标" in out and "区、县级市" in out
    _, out, _ = run(office, capsys, "standings", "--period", "2026Q1", "--officers", "--json")
    assert json.loads(out)[0] | {"unit_name": ""} == {
        "name": "李明", "unit_code": "TH", "unit_name": "", "sequence": "district",
        "points": 22, "items": 1, "adopted": 1, "rank": 1,
    }  # fmt: skip


def test_solicit_from_the_cli(office: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        office, capsys, "solicit", "open", "YG-01", "--topic", "防汛工作", "--units", "TH,YX",
        "--deadline", "2099-06-01T18:00", "--no-send",
    )  # fmt: skip
    assert (code, out) == (0, "opened 约稿 YG-01: 2 target units, 2 notices queued\n")
    _, out, _ = run(office, capsys, "solicit", "list", "--json")
    [listed] = json.loads(out)
    assert listed["deadline"] == "2099-06-01T10:00:00+00:00"
    assert [(t["unit_code"], t["state"]) for t in listed["targets"]] == [
        ("TH", "pending"),
        ("YX", "pending"),
    ]
    _, out, _ = run(office, capsys, "outbox", "--json")
    assert sorted(m["to"] for m in json.loads(out) if m["kind"] == "notice") == [
        "liming@th.gz.test",
        "wangfang@yx.gz.test",
    ]
    assert run(office, capsys, "solicit", "close", "YG-01")[0] == 0
    code, _, err = run(office, capsys, "solicit", "close", "YG-01")
    assert_one_line_error(code, err, "约稿 YG-01 is already closed")


def ingest_valid(office: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`examples/valid.eml` filed as received at the time it was written (2026-11-22, in the
    assessment year 2026): its tracking number."""
    args = ["ingest", "--no-send", "--json", "--received-at", "2026-11-22T10:16+08:00"]
    code, out, _ = run(office, capsys, *args, str(REPO / "examples/valid.eml"))
    assert code == 0
    [result] = json.loads(out)
    assert (result["state"], result["reasons"]) == ("filed", [])
    return str(result["tracking_no"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["adopt", "GZ-2026-999999", "调研"], "no item with tracking number GZ-2026-999999"),
        (["adopt", "GZ-2026-000001", "人民日报"], "no publication '人民日报'"),
        (["adopt", "GZ-2026-000001", "穗府信息"], "穗府信息 needs a grade (标题/短波)"),
        (["adopt", "GZ-2026-000001", "调研", "标题"], "调研 has no grades"),
        (["instruct", "GZ-2026-000001", "批示", "市领导"], "needs an adoption"),
        (["instruct", "GZ-2026-000001", "上报", "部办采用"], "has no level '部办采用'"),
        (["deduct", "NOPE", "迟报"], "no unit with code NOPE"),
        (["deduct", "TH", "罚款"], "no deduction '罚款'"),
        (["deduct", "GZB", "迟报"], "the office itself"),
        (["deduct", "TH", "迟报", "--at", "soon"], "--at 'soon' is not an ISO 8601 time"),
        (["undo", "42"], "no scoring event 42"),
        (["standings", "--period", "2026Q5"], "quarter must be 1 to 4"),
        (["solicit", "open", "X", "--topic", "t", "--deadline", "2020-01-01"], "in the future"),
        (["solicit", "close", "NOPE"], "no 约稿 with code NOPE"),
    ],
)
def test_scoring_mistakes_are_one_line(
    office: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    assert ingest_valid(office, capsys) == "GZ-2026-000001"
    code, _, err = run(office, capsys, *args)
    assert_one_line_error(code, err, expected)


def test_an_adoption_twice_is_refused_and_an_undone_event_cannot_be_undone_again(
    office: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ingest_valid(office, capsys) == "GZ-2026-000001"
    assert run(office, capsys, "adopt", "GZ-2026-000001", "调研")[0] == 0
    code, _, err = run(office, capsys, "adopt", "GZ-2026-000001", "穗府信息调研")  # an alias
    assert_one_line_error(code, err, "already adopted in 调研")
    assert run(office, capsys, "undo", "1")[0] == 0
    code, _, err = run(office, capsys, "undo", "1")
    assert_one_line_error(code, err, "already undone")
    assert run(office, capsys, "adopt", "GZ-2026-000001", "调研")[0] == 0  # after the undo


def _standings_json(url: str, tmp: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    ledger = Ledger.from_url(url)
    try:
        with ledger.transaction() as session:
            build_year(Office(session, RULES))
    finally:
        ledger.dispose()
    config = tmp / "mailroom.toml"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    out: dict[str, object] = {}
    for period in ("2026Q1", "2026Q2", "2026Q3", "2026Q4", "2026", "2026-03"):
        code, text, _ = run(config, capsys, "standings", "--period", period, "--json")
        assert code == 0
        out[period] = json.loads(text)
    return out


def test_sqlite_and_postgresql_give_the_same_standings(
    tmp_path: Path,
    sqlite_template: Path,
    pg_cluster: PgCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "lite").mkdir()
    (tmp_path / "pg").mkdir()
    lite_db = tmp_path / "lite" / "mailroom.db"
    shutil.copyfile(sqlite_template, lite_db)
    pg_cluster.execute("CREATE DATABASE same_numbers TEMPLATE mailroom_template")
    try:
        on_sqlite = _standings_json(f"sqlite:///{lite_db}", tmp_path / "lite", capsys)
        on_postgresql = _standings_json(pg_cluster.url("same_numbers"), tmp_path / "pg", capsys)
    finally:
        pg_cluster.execute("DROP DATABASE IF EXISTS same_numbers WITH (FORCE)")
    assert on_sqlite == on_postgresql
    q1 = {r["unit_code"]: r for r in on_sqlite["2026Q1"]}  # type: ignore[attr-defined]
    assert (q1["JSW"]["points"], q1["JSW"]["met"], q1["JSW"]["rank"]) == (18.5, True, 1)
