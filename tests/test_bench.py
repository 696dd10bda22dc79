"""The benchmark harness (`bench/`): its workload is real, its figures are honest, it runs.

The benches' numbers are not asserted (they depend on the machine); what is asserted is that
the workload is what it claims (items the pipeline files, GBK as Foxmail sends them), that the
client counts what the server answered, that medians and ratios are computed as documented,
that the decade generator loads a ledger the product can read, and that `python -m bench`
prints its table and writes its JSON.
"""

from __future__ import annotations

import email
import email.policy
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, func, select

from bench.client import run, stuffed
from bench.decade import TablePlan, Unfillable, fill_adoptions, generate
from bench.procs import Sink
from bench.stats import Row, Target, percentile, render
from bench.workload import big_item, docx_bytes, make_workload
from ingest.pipeline import Arrival
from ledger import search
from ledger.calendar import parse_period
from ledger.db import Ledger
from ledger.models import (
    Intake,
    OutboundMessage,
    SimilarBand,
    Submission,
    TrackingCounter,
    Unit,
)
from ledger.rulebook import load_rulebook
from mailroom.app import App
from parser.similar import BANDS
from parser.word import word_text
from tests.conftest import REPO

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock


def test_workload_items_are_all_filed_by_the_pipeline(app: App) -> None:
    letters = make_workload(40, docx_every=10)
    now = datetime.now(UTC)
    states = [
        app.pipeline.process(
            x.data, Arrival("daily", "smtp", now, mail_from=x.mail_from, rcpt="inf@mailroom.test")
        )
        for x in letters
    ]
    assert [(o.state, o.reasons) for o in states] == [("filed", ())] * 40
    with app.ledger.reader() as s:
        with_docx = s.scalar(
            select(func.count()).select_from(Submission).where(Submission.attachment_chars > 999)
        )
        receipts = s.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.kind == "receipt")
        )
    assert with_docx == 4
    assert receipts == 40


def test_workload_is_shaped_as_foxmail_sends_it() -> None:
    letters = make_workload(20, docx_every=10)
    msg = email.message_from_bytes(letters[1].data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["X-Mailer"].startswith("Foxmail")
    assert "=?GBK?B?" in letters[1].data.decode("ascii")
    plain = msg.get_body(("plain",))
    assert plain is not None and plain.get_content_charset() == "gb2312"
    assert b"\r\n" in letters[1].data and b"\n" not in letters[1].data.replace(b"\r\n", b"")
    sizes = [len(x.data) for i, x in enumerate(letters) if i % 10]
    assert 2_000 < sum(sizes) / len(sizes) < 6_000
    attached = email.message_from_bytes(letters[0].data, policy=email.policy.default)
    assert isinstance(attached, EmailMessage)
    (docx,) = list(attached.iter_attachments())
    assert str(docx.get_filename()).endswith(".docx")
    assert 1000 <= len(word_text(docx.get_content())) <= 4000


def test_big_item_is_the_size_asked_and_a_readable_docx() -> None:
    letter = big_item(3_000_000)
    assert 2_900_000 < len(letter.data) <= 3_000_000
    assert word_text(docx_bytes(["越秀区"], image_bytes=2048)).strip() == "越秀区"


def test_client_counts_what_the_sink_answers_in_every_mode(tmp_path: Path) -> None:
    letters = [(x.mail_from, stuffed(x.data)) for x in make_workload(24)]
    with Sink(tmp_path / "sink.log") as sink:
        results = {mode: run(sink.port, mode, letters, 60) for mode in ("reuse1", "reuse8", "new8")}
    for mode, result in results.items():
        assert (result["accepted"], result["failed"]) == (24, 0), mode
        assert len(result["latencies_ms"]) == 24
        assert result["wall"] > 0


def test_client_reports_refusals_instead_of_counting_them(tmp_path: Path) -> None:
    letters = [(x.mail_from, stuffed(x.data)) for x in make_workload(3)]
    with Sink(tmp_path / "sink.log") as sink:
        # Nothing listens on the port after the sink: every connection fails, none counts.
        port = sink.port
    result = run(port, "new8", letters, 10)
    assert result["accepted"] == 0
    assert result["failed"] == 3


def test_dot_stuffing_and_the_final_dot() -> None:
    assert stuffed(b"a\r\n.b\r\n..c") == b"a\r\n..b\r\n...c\r\n.\r\n"


def test_percentile_is_a_measured_value_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 99) == 3.0


def test_ratios_are_paired_run_by_run_and_targets_judged_on_the_median() -> None:
    row = Row(
        "1",
        "accept",
        "msgs/s",
        runs=[60.0, 50.0, 90.0],
        baseline=[100.0, 100.0, 100.0],
        baseline_name="sink",
        target=Target(">=", 0.6, "ratio"),
    )
    assert row.ratios == [0.6, 0.5, 0.9]
    assert row.judged() is True
    latency = Row("1", "p99", "ms", runs=[30.0, 20.0, 26.0], target=Target("<=", 25))
    assert latency.judged() is False
    skipped = Row("4", "standings", "s", skipped="ledger.standings not landed")
    table = render([row, latency, skipped])
    assert "60% (50% – 90%)" in table
    assert "≤ 25.0 ms: missed" in table
    assert "skipped: ledger.standings not landed" in table
    assert row.as_json()["ratio_median"] == 0.6


def test_decade_loads_a_ledger_the_product_reads(db_url: str) -> None:
    now = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    summary = generate(db_url, scale=0.001, now=now)
    assert (summary.units, summary.items) == (8, 2000)
    assert (summary.first_quarter, summary.last_quarter) == ("2016Q4", "2026Q3")
    ledger = Ledger.from_url(db_url)
    try:
        calendar = load_rulebook("guangzhou-2004").calendar
        from zoneinfo import ZoneInfo

        quarter = parse_period("2026Q3", ZoneInfo("Asia/Shanghai"), calendar)
        with ledger.transaction() as s:
            in_quarter = s.scalars(
                select(Submission).where(
                    Submission.received_at >= quarter.start, Submission.received_at < quarter.end
                )
            ).all()
            assert 0 < len(in_quarter) < 2000
            assert all(x.tracking_no.startswith("GZ-2026-") for x in in_quarter)
            assert {i.state for i in s.scalars(select(Intake))} == {"filed"}
            assert s.scalar(select(func.count()).select_from(Unit)) == 8
            # The ids and tracking counters continue where the load stopped.
            counter = s.get(TrackingCounter, ("GZ", 2026))
            assert counter is not None and counter.last == len(
                [x for x in s.scalars(select(Submission.tracking_no)) if x.startswith("GZ-2026-")]
            )
            # The band keys of the decade's last 30 days, 64 an item, as filing leaves them.
            bands = s.execute(
                select(
                    SimilarBand.submission_id, SimilarBand.received_at, Submission.received_at
                ).join(Submission, Submission.id == SimilarBand.submission_id)
            ).all()
            assert len(bands) == summary.similar_keys == BANDS * summary.similar_items
            assert 0 < summary.similar_items < 100
            assert all(a == b for _, a, b in bands)
            last = s.scalar(select(func.max(Submission.received_at)))
            newest = max(b for _, b, _ in bands)
            assert newest == last
            assert min(b for _, b, _ in bands) >= quarter.end - timedelta(days=30)
            later = Intake(
                channel="file", mailbox="daily", received_at=now, state="filed", reasons=[]
            )
            s.add(later)
            s.flush()
            assert later.id == 2001
            # The items search's index holds the loaded items, and is kept in step after.
            rare = search.matches(s, "推进第42项")
            like = Submission.title.like("%推进第42项%")
            wanted = set(s.scalars(select(Submission.id).where(like)))
            assert len(wanted) > 10 and set(s.scalars(select(Submission.id).where(rare))) == wanted
            in_quarter[0].body = "一条新近改写的正文"
            s.flush()
            found = s.scalars(select(Submission.id).where(search.matches(s, "新近改写")))
            assert list(found) == [in_quarter[0].id]
    finally:
        ledger.dispose()


def test_the_decade_lookup_finds_every_original_among_false_candidates(tmp_path: Path) -> None:
    from bench.similar import decade_lookup

    url = f"sqlite:///{tmp_path / 'decade.db'}"
    generate(url, scale=0.001, now=datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    rows, details = decade_lookup(url, 1, "2,000 items", "sqlite", lambda _text: None)
    assert [r.measure for r in rows] == ["similar: lookup of one item, 2,000 items (sqlite)"]
    assert len(rows[0].runs) == 1 and rows[0].runs[0] > 0
    assert (details["found_original"], details["lookups"]) == (60, 60)
    assert 0.001 < details["false_candidate_rate"] < 0.05
    assert details["candidates_median"] >= 1


def test_filing_the_test_set_names_every_copy_and_nothing_without_the_window(
    tmp_path: Path,
) -> None:
    from bench.similar import _file_all

    for window, named in ((30, 60), (0, 0)):
        root = tmp_path / f"w{window}"
        root.mkdir()
        ms, flagged = _file_all(f"sqlite:///{root / 'm.db'}", root, window)
        assert ms > 0 and flagged == named


def test_adoptions_are_score_events_of_the_rulebooks_publications(tmp_path: Path) -> None:
    from array import array

    from ledger.models import Base, ScoreEvent

    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    Base.metadata.create_all(engine)
    people = [(1, 1, "editor", "编辑1", "e@x.test", "", "编辑")]
    start = datetime(2016, 9, 1)
    publications = [("穗府信息", "标题"), ("穗府信息", "全文"), ("内部参考", None)]
    n = fill_adoptions(
        engine,
        publications,
        random.Random(1),
        5,
        array("i", [3] * 10),
        array("d", [3600.0 * i for i in range(10)]),
        start,
        people,
        lambda _text: None,
    )
    assert n == 5
    with engine.connect() as conn:
        rows = conn.execute(select(ScoreEvent.__table__)).all()
    assert len(rows) == 5 and len({r.submission_id for r in rows}) == 5
    assert {r.kind for r in rows} == {"adoption"} and {r.unit_id for r in rows} == {3}
    assert {(r.rule, r.level) for r in rows} <= set(publications)
    assert {r.recorded_by for r in rows} == {"e@x.test"}
    assert all(r.occurred_at.replace(tzinfo=None) > start and not r.undone_at for r in rows)
    assert (
        fill_adoptions(
            engine, publications, random.Random(1), 0, array("i"), array("d"), start, [], print
        )
        == 0
    )
    engine.dispose()


def test_a_table_the_generator_cannot_fill_is_named() -> None:
    meta = MetaData()
    odd = Table(
        "adoption_odd",
        meta,
        Column("id", Integer, primary_key=True),
        Column("ruling", String(20), nullable=False),
        Column("note", Text),
    )
    plan = TablePlan.of(odd, ["ruling"])
    assert plan.constants == {"note": None}  # nullable: filled with NULL
    with pytest.raises(Unfillable, match=r"adoption_odd\.ruling"):
        TablePlan.of(odd, ["id"])
    with pytest.raises(Unfillable, match=r"adoption_odd has no column grade"):
        TablePlan.of(odd, ["grade", "ruling"])


@pytest.mark.slow
def test_python_m_bench_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "bench", "--only", "smtp", "--count", "30", "--no-postgres"),
            *("--mode", "reuse8"),
            *("--out", str(out), "--workdir", str(tmp_path / "work"), "--time-limit", "120"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert "| 1 | accept 30, (b) 8 connections reused" in result.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    rows = {r["measure"]: r for r in data["rows"]}
    accept = rows["accept 30, (b) 8 connections reused"]
    assert len(accept["runs"]) == len(accept["baseline_runs"]) == 3
    assert accept["min"] <= accept["median"] <= accept["max"]
    assert accept["ratio_median"] == pytest.approx(
        sorted(m / b for m, b in zip(accept["runs"], accept["baseline_runs"], strict=True))[1]
    )
    filing = rows["file 30 (SQLite), sustained"]
    assert filing["target"] == "ratio ≥ 30%" and isinstance(filing["met"], bool)
    assert data["details"]["smtp"]["sqlite"]["reuse8"][0]["states"] == {"filed": 30}
    assert data["settings"]["runs"] == 3
