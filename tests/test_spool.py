"""The spool's shared directory fsync: fewer fsyncs, and never one that started too early."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest import spool as spool_module
from ingest.spool import Spool, SpoolEnvelope, _GroupSync


def test_overlapping_callers_share_runs_that_started_after_them() -> None:
    runs: list[tuple[float, float]] = []

    def action() -> None:
        start = time.monotonic()
        time.sleep(0.02)
        runs.append((start, time.monotonic()))

    group = _GroupSync(action)
    calls: list[tuple[float, float]] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(5):
            called = time.monotonic()
            group.sync()
            with lock:
                calls.append((called, time.monotonic()))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(calls) == 40
    assert len(runs) < 40  # shared: eight callers at a time do not each pay for a run
    for called, returned in calls:
        # Some run began after the call and ended before it returned.
        assert any(called <= start and end <= returned for start, end in runs)
    starts = sorted(runs)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(starts))  # one at a time


def test_a_failed_run_fails_its_caller_and_the_next_caller_runs_again() -> None:
    outcomes = iter([OSError("disk gone"), None])

    def action() -> None:
        failure = next(outcomes)
        if failure is not None:
            raise failure

    group = _GroupSync(action)
    with pytest.raises(OSError, match="disk gone"):
        group.sync()
    group.sync()  # a fresh run, which succeeds


def test_eight_concurrent_puts_are_all_stored_with_fewer_directory_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    real = spool_module._fsync_dir

    def counting(path: Path) -> None:
        synced.append(path)
        time.sleep(0.01)  # a slow disk, so that writers overlap
        real(path)

    monkeypatch.setattr(spool_module, "_fsync_dir", counting)
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    envelope = SpoolEnvelope("daily", "smtp", "a@b.test", "inf@mailroom.test", "")
    ids: list[str] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(10):
            stored = spool.put(b"message %d.%d" % (n, i), envelope)
            with lock:
                ids.append(stored)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(ids) == spool.pending() and len(ids) == 80
    assert {spool.read(i)[1] for i in ids} == {
        b"message %d.%d" % (n, i) for n in range(8) for i in range(10)
    }
    assert 0 < len(synced) < 80


def test_received_at_is_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    when = datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC).isoformat()
    stored = spool.put(b"x", SpoolEnvelope("daily", "smtp", None, "inf@mailroom.test", when))
    assert spool.read(stored)[0].received_at == when
