"""The spool's group commit: fewer fsyncs, and never a round that started too early."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest import spool as spool_module
from ingest.spool import Spool, SpoolEnvelope, SpoolError
from tests.measure import peak_of


@pytest.fixture
def files_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every message a file of its own, as a large one is (none goes to the journal)."""
    monkeypatch.setattr(spool_module, "JOURNAL_MAX_BYTES", -1)


def test_a_file_written_during_a_round_waits_for_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files_only: None
) -> None:
    """A round's directory fsync may have begun before a later file was renamed: that file
    is made durable by a round of its own, never counted as done by the one in progress."""
    rounds: list[tuple[float, float]] = []
    real = spool_module._fsync_dir
    in_round = threading.Event()

    def slow(path: Path) -> None:
        start = time.monotonic()
        in_round.set()
        time.sleep(0.2)
        real(path)
        rounds.append((start, time.monotonic()))

    monkeypatch.setattr(spool_module, "_fsync_dir", slow)
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    envelope = SpoolEnvelope("daily", "smtp", "a@b.test", "inf@mailroom.test", "")
    first, first_done = spool.stage(b"first", envelope)
    assert in_round.wait(10)
    written = time.monotonic()
    second, second_done = spool.stage(b"second", envelope)
    first_done.result(timeout=10)
    assert not second_done.done()  # the round in progress does not count for it
    second_done.result(timeout=10)
    assert len(rounds) == 2 and rounds[1][0] >= written
    assert spool.pending() == sorted([first, second])


def test_a_failed_round_fails_its_writers_keeps_nothing_and_the_next_round_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files_only: None
) -> None:
    outcomes = iter([OSError("disk gone"), None])
    real = spool_module._fsync_dir

    def failing_once(path: Path) -> None:
        failure = next(outcomes)
        if failure is not None:
            raise failure
        real(path)

    monkeypatch.setattr(spool_module, "_fsync_dir", failing_once)
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    envelope = SpoolEnvelope("daily", "smtp", "a@b.test", "inf@mailroom.test", "")
    with pytest.raises(OSError, match="disk gone"):
        spool.put(b"lost", envelope)
    assert list(spool.tmp.iterdir()) == [] and spool.pending() == []  # nothing half kept
    kept = spool.put(b"kept", envelope)  # a fresh round, which succeeds
    assert spool.read(kept)[1] == b"kept"


def test_eight_concurrent_puts_are_all_stored_with_fewer_directory_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files_only: None
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
    put_from_eight_writers(spool)
    assert 0 < len(synced) < 80


def test_received_at_is_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    when = datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC).isoformat()
    stored = spool.put(b"x", SpoolEnvelope("daily", "smtp", None, "inf@mailroom.test", when))
    assert spool.read(stored)[0].received_at == when


def test_a_large_message_is_read_back_whole_and_held_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    raw = bytes(range(256)) * (16 * 1024)  # 4 MB, line breaks included
    # An envelope line longer than one read block is found as well.
    envelope = SpoolEnvelope("daily", "smtp", "a" * 6000 + "@b.test", "inf@mailroom.test", "")
    stored = spool.put(raw, envelope)
    (read_envelope, read_raw), peak = peak_of(lambda: spool.read(stored))
    assert read_raw == raw and read_envelope == envelope
    assert peak < 1.2 * len(raw)  # not the whole file and then the message cut from it


def test_a_spool_file_without_its_envelope_line_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    for name, data in (("a.1.0.x", b"no line break at all" * 500), ("b.1.0.x", b"")):
        (spool.new / name).write_bytes(data)
        with pytest.raises(SpoolError, match="no envelope line"):
            spool.read(name)
    (spool.new / "c.1.0.x").write_bytes(b"MAILROOM-SPOOL-1 {not json\nraw")
    with pytest.raises(SpoolError, match="broken envelope"):
        spool.read("c.1.0.x")


def put_from_eight_writers(spool: Spool) -> list[str]:
    """Eight threads put ten messages each at once; every one is pending and reads back."""
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
    return ids
