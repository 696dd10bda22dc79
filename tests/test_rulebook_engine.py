"""The concepts of the rulebook engine beyond Guangzhou's (SPEC §9), each on its own: revisions
with an effective date, repeatable bonus levels, bonuses that need a named publication, unit
bonuses, monthly quotas with a rate bonus, per-unit tasks, the missing-约稿 deduction, award
quotas and the loader's refusals."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.db import Ledger
from ledger.demo import load_demo
from ledger.models import Solicitation, SolicitationTarget, Unit
from ledger.payments import payments
from ledger.registry import RegistryError, import_registry
from ledger.rulebook import Rulebook, RulebookError, load_rulebook
from ledger.scoring import NeedsAdoption, ScoringError, record_unit_bonus
from ledger.solicit import deduct_missing
from ledger.standings import award_results, standings
from mailroom.cli import main
from tests.scoring_kit import EDITOR, SHANGHAI, Office, local

GZ = load_rulebook("guangzhou-2004")
LG = load_rulebook("longgang-2012")
CJ = load_rulebook("changji-2017")

REVISION = """
[meta]
name = "guangzhou-2027"
title = "广州市政务信息工作实施方案（2027年修订）"
replaces = "guangzhou-2004"
effective_from = 2027-03-01
"""


def _revision(tmp_path: Path, points: int) -> Path:
    """The Guangzhou rulebook with 穗府要情 worth `points`, in force from 2027-03-01."""
    shipped = (Path(__file__).parents[1] / "ledger/rulebooks/guangzhou-2004.toml").read_text(
        encoding="utf-8"
    )
    body = shipped.split("[signoff]", 1)[1]
    body = body.replace('name = "穗府要情"\npoints = 3', f'name = "穗府要情"\npoints = {points}')
    path = tmp_path / "guangzhou-2027.toml"
    path.write_text(REVISION + "\n[signoff]" + body, encoding="utf-8")
    return path


def test_a_revision_scores_from_its_date_and_leaves_earlier_periods_as_they_were(
    ledger: Ledger, tmp_path: Path
) -> None:
    revised = load_rulebook(str(_revision(tmp_path, 7)))
    assert [b.name for b in (revised, *revised.earlier)] == ["guangzhou-2027", "guangzhou-2004"]
    with ledger.transaction() as session:
        office = Office(session, revised)
        office.unit("TH", "天河区", "district", officer="李明")
        office.item("TH", local(2027, 2, 10), ("采用", "穗府要情"))  # before: 3 points
        office.item("TH", local(2027, 3, 10), ("采用", "穗府要情"))  # from 2027-03-01: 7
    with ledger.reader() as session:

        def pts(period: str) -> Decimal:
            return standings(session, revised, period, SHANGHAI)[0].points

        assert (pts("2027Q1"), pts("2027Q2"), pts("2027")) == (3, 7, 10)
        # The same figures as before the revision for the quarter it did not reach.
        assert standings(session, GZ, "2027Q1", SHANGHAI)[0].points == pts("2027Q1")


def test_a_revision_must_come_after_what_it_replaces_and_keep_the_calendar(
    tmp_path: Path,
) -> None:
    path = _revision(tmp_path, 7)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("effective_from = 2027-03-01\n", ""), encoding="utf-8")
    with pytest.raises(RulebookError, match="effective_from must be a date after"):
        load_rulebook(str(path))
    path.write_text(text.replace("year_start_month = 12", "year_start_month = 1"), encoding="utf-8")
    with pytest.raises(RulebookError, match="keeps the assessment calendar"):
        load_rulebook(str(path))


def test_a_repeatable_instruction_pays_each_time_and_scores_once(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        office = Office(session, LG)
        office.unit("PH", "平湖街道", "street", officer="陈伟明")
        office.item(
            "PH",
            local(2012, 4, 9),
            ("采用", "龙岗信息", "专刊"),  # 30 points, 200 yuan
            ("批示", "区领导"),  # +5, 50 yuan
            ("批示", "区领导"),  # +0, 50 yuan
            ("批示", "省领导"),  # +20, 200 yuan
        )
    with ledger.reader() as session:
        row = standings(session, LG, "2012-04", SHANGHAI)[0]
        assert (row.points, row.bonus_points) == (55, 25)
        paid = payments(session, LG, "2012-04", SHANGHAI)
        assert [p.amount_yuan for p in paid] == [200, 50, 50, 200]
        # The kit's items name no writer in a sign-off: the registered officer who sent them.
        assert {p.author for p in paid} == {"陈伟明"}


def test_a_bonus_that_needs_a_named_publication_is_refused_without_it(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        office = Office(session, CJ)
        office.unit("GAJ", "公安局", "key_dept", officer="古丽娜尔")
        tracking = office.item("GAJ", local(2017, 6, 5), ("采用", "普刊"))
        with pytest.raises(NeedsAdoption, match="昌吉信息\\(内刊\\)"):
            office.tag(tracking, "上报", "新疆要情", at=local(2017, 6, 6))
        office.tag(tracking, "采用", "内刊", "动态", at=local(2017, 6, 6))
        office.tag(tracking, "上报", "新疆要情", at=local(2017, 6, 7))
        office.tag(tracking, "上报", "情况专报", at=local(2017, 6, 7))
    with ledger.reader() as session:
        row = standings(session, CJ, "2017-06", SHANGHAI)[0]
        # 普刊 10 + 内刊 动态 10 + 自治区采用 10 once (highest of two levels at 10)
        assert row.points == 30
        assert [p.amount_yuan for p in payments(session, CJ, "2017", SHANGHAI)] == [500, 200]


def test_a_unit_bonus_counts_when_it_occurred_and_only_for_its_sequences(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        office = Office(session, CJ)
        office.unit("CJS", "昌吉市", "county", officer="王建新")
        office.unit("GAJ", "公安局", "key_dept", officer="古丽娜尔")
        kw = {"by": EDITOR, "source": "test"}
        record_unit_bonus(session, CJ, "CJS", "跟班培训", at=local(2017, 12, 20), **kw)
        with pytest.raises(ScoringError, match="跟班培训 is for units of 县市, 国家级园区"):
            record_unit_bonus(session, CJ, "GAJ", "跟班培训", at=local(2017, 12, 20), **kw)
        record_unit_bonus(session, CJ, "GAJ", "组织体系", at=local(2017, 12, 21), **kw)
    with ledger.reader() as session:
        year = {s.unit_code: s for s in standings(session, CJ, "2017", SHANGHAI)}
        assert (year["CJS"].points, year["GAJ"].points) == (50, 50)
        assert year["CJS"].unit_bonus_points == 50
        assert standings(session, CJ, "2017-11", SHANGHAI)[0].points == 0


@pytest.mark.parametrize(
    ("submitted", "adopted", "bonus"),
    [(10, 1, 20), (10, 0, 0), (9, 9, 0), (11, 1, 0), (12, 2, 20)],
    ids=["10-at-10pc", "no-adoption", "short-of-quota", "11-at-9pc", "12-at-16pc"],
)
def test_a_monthly_quota_earns_its_bonus_only_when_met_at_the_rate(
    ledger: Ledger, submitted: int, adopted: int, bonus: int
) -> None:
    # 州直非重点部门: at least 10 items a month with at least 10 % adopted → +20 that month.
    with ledger.transaction() as session:
        office = Office(session, CJ)
        office.unit("ZDCS", "州督查室", "other_dept", officer="叶丽华")
        for n in range(submitted):
            tags = [("采用", "普刊")] if n < adopted else []
            office.item("ZDCS", local(2017, 6, 1) + timedelta(hours=n), *tags)
        office.item("ZDCS", local(2017, 7, 3))  # July's one item: that month's quota unmet
    with ledger.reader() as session:
        june = standings(session, CJ, "2017-06", SHANGHAI)[0]
        assert (june.quota, june.quota_met) == (10, submitted >= 10)
        assert june.quota_bonus_points == bonus
        assert june.points == 10 * adopted + bonus
        # A quarter and the year hold June's bonus (and July's none); they show no quota.
        for period in ("2017Q2", "2017Q3", "2017"):
            row = standings(session, CJ, period, SHANGHAI)[0]
            expected = bonus if period != "2017Q3" else 0
            assert (row.quota, row.quota_bonus_points) == (None, expected), period


def test_a_task_table_gives_a_unit_its_own_annual_target(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        office = Office(session, LG)
        office.unit("RWB", "区人武部", "district_unit", officer="廖春燕")  # 区 3, 积分 30
        for day in (3, 4, 5):
            office.item("RWB", local(2012, 5, day), ("采用", "龙岗信息", "周刊"))
    with ledger.reader() as session:
        row = standings(session, LG, "2012", SHANGHAI)[0]
        assert [(p.name, p.target, p.actual, p.met) for p in row.task] == [
            ("区", 3, 3, True),
            ("points", 30, 30, True),
        ]
        assert (row.target, row.met) == (30, True)
        assert standings(session, LG, "2012Q2", SHANGHAI)[0].task == ()  # a year's task only


def test_no_answer_at_the_deadline_deducts_once_even_if_a_late_answer_follows(
    ledger: Ledger,
) -> None:
    with ledger.transaction() as session:
        office = Office(session, LG)
        office.unit("RWB", "区人武部", "district_unit", officer="廖春燕")
        sol = Solicitation(
            code="YG1",
            topic="专题",
            deadline=local(2012, 5, 10, 18),
            opened_at=local(2012, 5, 1),
            opened_by=EDITOR,
        )
        session.add(sol)
        session.flush()
        session.add(SolicitationTarget(solicitation_id=sol.id, unit_id=office.units["RWB"].id))
        session.flush()
        assert deduct_missing(session, LG, local(2012, 5, 10, 17)) == 0  # not yet due
        assert deduct_missing(session, LG, local(2012, 5, 11)) == 1
        assert deduct_missing(session, LG, local(2012, 5, 12)) == 0  # once
        assert deduct_missing(session, GZ, local(2012, 5, 12)) == 0  # Guangzhou has no such rule
    with ledger.reader() as session:
        assert standings(session, LG, "2012-05", SHANGHAI)[0].points == -10


def test_award_quotas_per_sequence_keep_ties_and_leave_out_units_without_points(
    ledger: Ledger,
) -> None:
    with ledger.transaction() as session:
        office = Office(session, CJ)
        office.unit("ZD", "准东开发区", "park", officer="甲")
        office.unit("GX", "高新区", "park", officer="乙")
        office.unit("NY", "农业园区", "park", officer="丙")
        office.item("ZD", local(2017, 3, 1), ("采用", "普刊"))
        office.item("GX", local(2017, 3, 1), ("采用", "普刊"))
    with ledger.reader() as session:
        (award,) = award_results(session, CJ, "2017", SHANGHAI)
        assert (award.name, award.quota, award.yuan) == ("先进单位", 12, 2000)
        # The park quota is 1; two parks tie at 10 and both stay; 农业园区 has no points.
        assert [(e.name, e.rank) for e in award.entries] == [("高新区", 1), ("准东开发区", 1)]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('kind = "unit"\nper_sequence', 'kind = "officer"\nper_sequence'), "is for unit awards"),
        (('sheet = "县市"', 'sheet = "县/市"'), "at most 31 characters"),
        (('name = "约稿"\npoints = 10\n', 'name = "约稿"\npoints = 10\nyuan = 5\n'), "unknown key [[deductions]] 1 yuan"),  # noqa: E501
        (('late_deduction = "约稿"', 'late_deduction = "迟报"'), "is not one of [[deductions]]"),
        (('requires_publication = ["昌吉信息(内刊)"]', 'requires_publication = ["内参"]'), "'内参' is not a publication"),  # noqa: E501
        (('required = ["author", "phone", "approver"]', 'required = ["seal"]'), "'seal' is not one of"),  # noqa: E501
        (('sequences = ["county", "park"]', 'sequences = ["city"]'), "'city' is not one of [sequences]"),  # noqa: E501
    ],
    ids=["officer-award-per-sequence", "sheet-name", "deduction-yuan", "late-deduction",
         "required-publication", "signoff-element", "unit-bonus-sequence"],
)  # fmt: skip
def test_a_bad_rulebook_of_the_new_kinds_names_the_file_and_the_key(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    shipped = (Path(__file__).parents[1] / "ledger/rulebooks/changji-2017.toml").read_text(
        encoding="utf-8"
    )
    assert edit[0] in shipped, edit[0]
    path = tmp_path / "office.toml"
    path.write_text(shipped.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(RulebookError) as caught:
        load_rulebook(str(path))
    assert str(caught.value).startswith("rulebook office.toml: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("rulebook", "sizes"),
    [
        (LG, {"street": 8, "district_unit": 45, "resident": 17, "office": 1}),
        (CJ, {"county": 7, "park": 3, "key_dept": 38, "other_dept": 27, "office": 1}),
    ],
    ids=["longgang-2012", "changji-2017"],
)
def test_each_office_demo_registry_has_its_plan_s_sequences_and_its_task_units(
    ledger: Ledger, rulebook: Rulebook, sizes: dict[str, int]
) -> None:
    with ledger.transaction() as session:
        summary = load_demo(session, rulebook)
        assert summary.units_added == sum(sizes.values())
        assert load_demo(session, rulebook).units_added == 0  # again: nothing changes
    with ledger.reader() as session:
        units = list(session.scalars(select(Unit)))
        assert Counter(u.sequence for u in units) == sizes
        names = {u.name for u in units}
        assert {t.unit for t in rulebook.tasks} <= names  # every task has its unit
        titles = [s.sequence for s in standings(session, rulebook, "2017", SHANGHAI)]
        assert list(dict.fromkeys(titles)) == [s.key for s in rulebook.sequences]


def test_a_registry_names_only_the_rulebook_s_sequences(ledger: Ledger, tmp_path: Path) -> None:
    units = tmp_path / "units.csv"
    units.write_text(
        "code,name,mark,sequence,parent_code\nA,甲,【甲】,县市,\nB,乙,【乙】,district,\n",
        encoding="utf-8",
    )
    with ledger.transaction() as session, pytest.raises(RegistryError) as caught:
        import_registry(session, [units], CJ)
    assert caught.value.problems == [
        "units.csv line 3: unknown sequence 'district'; use county (县市), park (国家级园区), "
        "key_dept (州直重点部门), other_dept (州直非重点部门) or office (本办)"
    ]
    with ledger.transaction() as session:  # by name or alias, as a registry file says it
        units.write_text(
            "单位代码,单位名称,标识,序列,上级单位代码\nA,甲,【甲】,县市,\nB,乙,【乙】,园区,\n",
            encoding="utf-8",
        )
        import_registry(session, [units], CJ)
    with ledger.reader() as session:
        assert sorted(u.sequence for u in session.scalars(select(Unit))) == ["county", "park"]


def test_init_demo_for_another_rulebook_says_how_to_select_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mailroom.toml"
    config.write_text('[database]\nurl = "sqlite:///var/m.db"\n', encoding="utf-8")
    code = main(["--config", str(config), "init", "--demo", "--rulebook", "changji-2017"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert 'set [rules] rulebook = "changji-2017" in the config file' in err
    config.write_text(config.read_text() + '[rules]\nrulebook = "changji-2017"\n', encoding="utf-8")
    assert main(["--config", str(config), "init", "--demo", "--rulebook", "changji-2017"]) == 0
    assert "demo registry loaded: 76 units added, 97 people added" in capsys.readouterr().out


def test_a_count_metric_ranks_by_items_submitted_and_says_so(
    ledger: Ledger, tmp_path: Path
) -> None:
    shipped = (Path(__file__).parents[1] / "ledger/rulebooks/changji-2017.toml").read_text(
        encoding="utf-8"
    )
    path = tmp_path / "by-count.toml"
    path.write_text(shipped + '\n[ranking]\nmetric = "count"\n', encoding="utf-8")
    by_count = load_rulebook(str(path))
    with ledger.transaction() as session:
        office = Office(session, by_count)
        office.unit("CJS", "昌吉市", "county", officer="王建新")
        office.unit("FKS", "阜康市", "county", officer="李红梅")
        office.item("CJS", local(2017, 6, 1), ("采用", "内刊", "参阅参考"))  # 40 points, 1 item
        for day in (2, 3):
            office.item("FKS", local(2017, 6, day))  # 0 points, 2 items
    with ledger.reader() as session:
        rows = standings(session, by_count, "2017-06", SHANGHAI)
        assert [(r.unit_code, r.rank, r.submitted, r.points, r.metric) for r in rows] == [
            ("FKS", 1, 2, 0, "count"),
            ("CJS", 2, 1, 40, "count"),
        ]
        # The shipped rulebook ranks the same month by points.
        assert [r.unit_code for r in standings(session, CJ, "2017-06", SHANGHAI)] == ["CJS", "FKS"]


def test_an_urgent_mail_is_sent_before_every_other_due_one(ledger: Ledger) -> None:
    from ledger.outbox import claim_due, enqueue, mark_sent

    now = local(2011, 5, 9, 9)
    with ledger.transaction() as session:
        for n in range(3):
            to = f"u{n}@x.test"
            enqueue(session, kind="receipt", to_address=to, subject=f"r{n}", message=b"x", now=now)
        later = now + timedelta(seconds=1)
        enqueue(
            session, kind="desk", to_address="desk@x.test", subject="【特别重大】", message=b"x",
            now=later, first=True,
        )  # fmt: skip
    order = []
    with ledger.transaction() as session:
        while (row := claim_due(session, now + timedelta(seconds=2))) is not None:
            order.append(row.subject)
            mark_sent(row, now)
    assert order == ["【特别重大】", "r0", "r1", "r2"]


def test_longnan_candidates_met_every_month_and_their_officers_had_an_item_adopted(
    ledger: Ledger,
) -> None:
    from reports.build import build_annual

    ln = load_rulebook("longnan")
    with ledger.transaction() as session:
        office = Office(session, ln)
        office.unit("GD", "国网陇南供电公司", "provincial", officer="石海涛")  # 5 a month
        office.unit("QX", "陇南市气象局", "provincial", officer="李华")
        for month in range(1, 13):
            for day in range(1, 6):
                tags = [("采用", "陇南政务信息", "调研")] if (month, day) == (3, 1) else []
                office.item("GD", local(2011, month, day), *tags)
                if month != 7:  # 气象局 misses July
                    office.item("QX", local(2011, month, day, 11))
    with ledger.reader() as session:
        year = {s.unit_code: s for s in standings(session, ln, "2011", SHANGHAI)}
        assert (year["GD"].quota_periods, year["GD"].quota_periods_met) == (12, 12)
        assert (year["QX"].quota_periods, year["QX"].quota_periods_met) == (12, 11)
        report = build_annual(
            session,
            ln,
            "2011",
            SHANGHAI,
            office="陇南市人民政府办公室",
            issued=local(2012, 1, 5).date(),
        )
        assert [r.unit_code for r in report.award_candidates] == ["GD"]
        assert report.officer_award_names == ("先进个人",)
        assert [c.name for c in report.officer_candidates] == ["石海涛"]
        assert [len(found.items) for found in report.excellence_lists] == [1, 0]
