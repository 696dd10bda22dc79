"""Scoring events: points are derived under the rulebook in force, never stored (SPEC §2)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from ledger.db import Ledger
from ledger.rulebook import Bonus, BonusLevel, Publication, Rulebook, load_rulebook
from ledger.scoring import ScoringError, record_deduction, undo_event
from ledger.standings import core_team, officer_standings, standings
from tests.measure import statements_run
from tests.scoring_kit import EDITOR, SHANGHAI, Office, local

RULES = load_rulebook("guangzhou-2004")


def _small_office(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        office = Office(session, RULES)
        office.unit("TH", "天河区", "district", officer="李明")
        office.unit("YX", "越秀区", "district", officer="王芳")
        office.item("TH", local(2026, 1, 5), ("采用", "穗府信息", "标题"), ("上报", "省办采用"))
        office.item("YX", local(2026, 1, 6), ("采用", "调研"))


def points(ledger: Ledger, rules: Rulebook = RULES) -> dict[str, tuple[Decimal, int]]:
    with ledger.reader() as session:
        rows = standings(session, rules, "2026Q1", SHANGHAI)
        return {s.unit_code: (s.points, s.rank) for s in rows}


def test_a_rule_change_recomputes_the_standings(ledger: Ledger) -> None:
    _small_office(ledger)
    assert points(ledger) == {"TH": (7, 1), "YX": (5, 2)}  # 2 + 5 against 5
    # The same events under an office's own values: 标题 4, 调研 8, 省办采用 made cumulative 1.
    other = replace(
        RULES,
        publications=(
            Publication(
                "穗府信息", (), None, (replace(RULES.publications[0].grades[0], points=4),)
            ),
            Publication("调研", (), 8, ()),
        ),
        bonuses=(Bonus("上报", "cumulative", False, (BonusLevel("省办采用", 1),)),),
    )
    assert points(ledger, other) == {"YX": (8, 1), "TH": (5, 2)}


def test_an_event_the_rulebook_no_longer_knows_is_named(ledger: Ledger) -> None:
    _small_office(ledger)
    without = replace(RULES, bonuses=())
    with pytest.raises(ScoringError, match="names bonus 上报 省办采用, which rulebook"):
        points(ledger, without)


def test_a_deduction_with_a_key_is_recorded_once_and_an_undo_restores(ledger: Ledger) -> None:
    _small_office(ledger)
    with ledger.transaction() as session:
        first, second = (
            record_deduction(
                session,
                RULES,
                "TH",
                "迟报",
                by=EDITOR,
                at=local(2026, 2, 1),
                source="test",
                dedupe_key="k1",
            )
            for _ in range(2)
        )
        assert first is not None and first.points == -4 and second is None
    assert points(ledger)["TH"] == (3, 2)  # 7 − 4
    with ledger.transaction() as session:
        undo_event(session, first.event_id, by=EDITOR, at=local(2026, 2, 2), source="test")
    assert points(ledger)["TH"] == (7, 1)


def test_a_deduction_counts_in_the_quarter_it_happened(ledger: Ledger) -> None:
    _small_office(ledger)
    with ledger.transaction() as session:
        record_deduction(
            session, RULES, "YX", "市办通报", by=EDITOR, at=local(2026, 3, 1, 0, 0), source="t"
        )
    assert points(ledger)["YX"] == (5, 2)  # Mar 1 00:00 is 2026Q2
    with ledger.reader() as session:
        q2 = {s.unit_code: s.points for s in standings(session, RULES, "2026Q2", SHANGHAI)}
    assert q2 == {"TH": 0, "YX": -3}


def test_times_must_carry_a_zone(ledger: Ledger) -> None:
    _small_office(ledger)
    from datetime import datetime

    with ledger.transaction() as session, pytest.raises(ScoringError, match="time zone"):
        record_deduction(
            session, RULES, "YX", "迟报", by=EDITOR, at=datetime(2026, 1, 1), source="t"
        )


def test_a_reader_computes_a_periods_standings_once_a_transaction_every_time(
    ledger: Ledger,
) -> None:
    _small_office(ledger)
    with ledger.reader() as reader:
        before = standings(reader, RULES, "2026Q1", SHANGHAI)
        with ledger.transaction() as session:  # recorded while the reader is open
            first = {s.unit_code: s.points for s in standings(session, RULES, "2026Q1", SHANGHAI)}
            record_deduction(
                session, RULES, "TH", "迟报", by=EDITOR, at=local(2026, 2, 1), source="t"
            )
            # The writing session sees its own deduction at once.
            then = {s.unit_code: s.points for s in standings(session, RULES, "2026Q1", SHANGHAI)}
            assert (first["TH"], then["TH"]) == (7, 3)
        # The reader keeps what it computed: one report, one set of figures.
        assert standings(reader, RULES, "2026Q1", SHANGHAI) == before
        assert {s.unit_code: s.points for s in before} == {"TH": 7, "YX": 5}
        # The same rulebook's name with other values is other standings, even in one reader:
        # 标题 2 + 省办采用 1 − 迟报 4 (a new computation reads the deduction).
        fewer = replace(
            RULES, bonuses=(Bonus("上报", "cumulative", False, (BonusLevel("省办采用", 1),)),)
        )
        assert {s.unit_code: s.points for s in standings(reader, fewer, "2026Q1", SHANGHAI)} == {
            "TH": -1,
            "YX": 5,
        }
    assert points(ledger)["TH"] == (3, 2)  # a new reader reads the deduction


def test_a_reader_reads_a_periods_items_once_for_the_standings_officers_and_core_team(
    ledger: Ledger,
) -> None:
    # The console's standings page asks for all three in one reader: the officers' standings
    # and the core team reuse what the standings read, and a second page's worth reads nothing.
    _small_office(ledger)
    with statements_run(ledger.engine) as statements:
        with ledger.reader() as reader:
            standings(reader, RULES, "2026Q1", SHANGHAI)
            read_events = sum("score_events" in sql for sql in statements)
            officers = officer_standings(reader, RULES, "2026Q1", SHANGHAI)
            assert sum("score_events" in sql for sql in statements) == read_events
            done = len(statements)
            team = core_team(reader, RULES, "2026Q1", SHANGHAI)
            assert officer_standings(reader, RULES, "2026Q1", SHANGHAI) == officers
            assert len(statements) == done  # nothing read again
        with ledger.transaction() as session:  # a writing session computes afresh
            assert officer_standings(session, RULES, "2026Q1", SHANGHAI) == officers
            assert len(statements) > done
            assert core_team(session, RULES, "2026Q1", SHANGHAI) == team
    assert {o.unit_code: o.points for o in officers} == {"TH": 7, "YX": 5}
