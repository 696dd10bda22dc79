"""The spool's journal: shared fdatasyncs, rounds that never count a late record, torn tails,
done marks, segments removed once filed, and a kill at every point of a round."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest import journal as journal_module
from ingest.journal import JournalReader, JournalWriter
from ingest.spool import Spool, SpoolEnvelope, SpoolError
from tests.test_spool import put_from_eight_writers

REPO = Path(__file__).resolve().parent.parent
ENVELOPE = SpoolEnvelope("daily", "smtp", "a@b.test", "inf@mailroom.test", "")


def _spool(tmp_path: Path) -> Spool:
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    return spool


def _segments(spool: Spool) -> list[Path]:
    return sorted(spool.journal.glob("*.seg"))


def test_small_messages_go_to_the_journal_and_read_back_exactly(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    raws = [b"first\r\n", b"\n\nline breaks first", bytes(range(256)) * 1000, b""]
    ids = [spool.put(raw, ENVELOPE) for raw in raws]
    assert list(spool.new.iterdir()) == []  # no file of its own
    assert len(_segments(spool)) == 1
    assert spool.pending() == sorted(ids)
    for spool_id, raw in zip(ids, raws, strict=True):
        assert spool.read(spool_id) == (ENVELOPE, raw)
    # Another process (a new reader) finds them too, and the same bytes.
    other = Spool(spool.root)
    assert other.pending() == sorted(ids)
    assert [other.read(i)[1] for i in ids] == raws


def test_eight_writers_share_the_rounds_fdatasyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = _spool(tmp_path)
    synced: list[int] = []
    real = os.fdatasync

    def slow(fd: int) -> None:
        synced.append(fd)
        time.sleep(0.01)  # a slow disk, so that writers overlap
        real(fd)

    monkeypatch.setattr(journal_module.os, "fdatasync", slow)
    put_from_eight_writers(spool)
    assert 0 < len(synced) <= 40  # at least two messages a round on average


def test_a_record_handed_over_during_a_round_waits_for_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = _spool(tmp_path)
    in_round = threading.Event()
    rounds: list[tuple[float, float]] = []
    real = os.fdatasync

    def slow(fd: int) -> None:
        start = time.monotonic()
        in_round.set()
        time.sleep(0.2)
        real(fd)
        rounds.append((start, time.monotonic()))

    monkeypatch.setattr(journal_module.os, "fdatasync", slow)
    first, first_done = spool.stage(b"first", ENVELOPE)
    assert in_round.wait(10)
    handed = time.monotonic()
    second, second_done = spool.stage(b"second", ENVELOPE)
    first_done.result(timeout=10)
    assert not second_done.done()  # written after the round's write: not made durable by it
    second_done.result(timeout=10)
    assert len(rounds) == 2 and rounds[1][0] >= handed
    assert spool.pending() == sorted([first, second])


def test_a_failed_round_fails_its_writers_keeps_nothing_and_a_new_segment_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = _spool(tmp_path)
    before = spool.put(b"before", ENVELOPE)
    outcomes = iter([OSError("disk gone"), None])
    real = os.fdatasync

    def failing_once(fd: int) -> None:
        failure = next(outcomes)
        if failure is not None:
            raise failure
        real(fd)

    monkeypatch.setattr(journal_module.os, "fdatasync", failing_once)
    with pytest.raises(OSError, match="disk gone"):
        spool.put(b"lost", ENVELOPE)
    assert spool.pending() == [before]  # the failed round was cut off its segment
    after = spool.put(b"after", ENVELOPE)
    assert [spool.read(i)[1] for i in spool.pending()] == [b"before", b"after"]
    assert spool.pending() == [before, after]
    assert len(_segments(spool)) == 2  # the segment the failure ended, and a new one


def test_a_torn_tail_is_ignored_once_its_writer_is_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = _spool(tmp_path)
    ids = [spool.put(b"whole %d" % n, ENVELOPE) for n in range(3)]
    [segment] = _segments(spool)
    whole = segment.read_bytes().index(bytes(64))  # the zeros laid down after the records
    # A round cut off by a crash: a head and part of its body, never answered 250.
    with open(segment, "r+b") as fh:
        fh.seek(whole)
        fh.write(b"MRJ1 " + segment.name[:20].encode() + b" 1.2.3.abcd 5000 0badf00d\nMAIL")
    reader = Spool(spool.root)
    assert reader.pending() == ids  # the writer still holds the segment: read up to the tail
    spool.close()  # its writer is gone
    with caplog.at_level(logging.WARNING, logger="ingest.journal"):
        assert reader.pending() == ids
    assert f"a record cut off at byte {whole} ignored" in caplog.text
    for spool_id in ids:
        reader.remove(spool_id)
    assert reader.pending() == [] and _segments(spool) == []  # filed: the segment is gone


def test_a_record_being_written_is_read_once_it_is_whole(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    first = spool.put(b"first", ENVELOPE)
    [segment] = _segments(spool)
    reader = JournalReader(spool.journal)
    body = json.dumps({"x": 1}).encode() + b"\nsecond"
    head = journal_module._head(segment.name[:20], "2.3.4.beef", b"", body)
    with open(segment, "r+b") as fh:
        fh.seek(segment.read_bytes().index(bytes(64)))
        fh.write(head + body[:5])
        fh.flush()
        assert list(reader.pending()) == [first]  # half a record: not yet
        fh.write(body[5:])
    assert list(reader.pending()) == [first, "2.3.4.beef"]
    assert reader.body("2.3.4.beef") == body


def test_a_corrupt_record_is_not_read_and_nothing_after_it(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    ids = [spool.put(b"message %d" % n, ENVELOPE) for n in range(3)]
    [segment] = _segments(spool)
    data = bytearray(segment.read_bytes())
    data[data.index(b"message 1")] ^= 0x20  # one flipped bit: its checksum fails
    spool.close()
    segment.write_bytes(bytes(data))
    assert Spool(spool.root).pending() == ids[:1]


def test_done_marks_are_kept_across_readers_and_a_filed_segment_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "SEGMENT_BYTES", 1)  # a segment a round
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    ids = [spool.put(b"message %d" % n, ENVELOPE) for n in range(4)]
    assert len(_segments(spool)) == 4
    spool.remove(ids[0])
    spool.remove(ids[2])
    assert len(_segments(spool)) == 2  # each ended, and all of it filed: removed
    other = Spool(spool.root)
    assert other.pending() == [ids[1], ids[3]]
    other.remove(ids[1])
    assert spool.pending() == [ids[3]]  # the first reader learns the other's marks
    with pytest.raises(FileNotFoundError):
        spool.read(ids[1])


def test_a_filed_segment_is_written_over_and_its_old_records_are_never_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "SEGMENT_BYTES", 64 * 1024)  # three records a segment
    spool = _spool(tmp_path)
    body = b"x" * (20 * 1024)
    first = [spool.put(b"a%d" % n + body, ENVELOPE) for n in range(3)]
    [segment] = _segments(spool)
    assert segment.stat().st_size == 64 * 1024  # laid down whole before the first record
    inode = segment.stat().st_ino
    second = [spool.put(b"b%d" % n + body, ENVELOPE) for n in range(3)]  # a new segment
    for spool_id in first:
        spool.remove(spool_id)
    [kept] = (spool.journal / "free").iterdir()  # all filed: kept to be written over
    assert kept.stat().st_ino == inode
    third = spool.put(b"c0" + body, ENVELOPE)  # the second segment is full: the kept one
    assert list((spool.journal / "free").iterdir()) == []
    assert [p.stat().st_ino for p in _segments(spool)][-1] == inode
    # Its old records (another serial) lie behind the new one: a reader stops before them.
    for reader in (spool, Spool(spool.root)):
        assert reader.pending() == [*second, third]
        assert [reader.read(i)[1][:2] for i in reader.pending()] == [b"b0", b"b1", b"b2", b"c0"]


def test_at_most_two_filed_segments_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "SEGMENT_BYTES", 1)  # a segment a round
    spool = _spool(tmp_path)
    ids = [spool.put(b"message %d" % n, ENVELOPE) for n in range(5)]
    spool.close()
    for spool_id in ids:
        spool.remove(spool_id)
    assert _segments(spool) == [] and len(list((spool.journal / "free").iterdir())) == 2


def test_the_listener_begins_its_segment_before_its_first_message(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.prepare_journal()
    [segment] = _segments(spool)
    stored = spool.put(b"first", ENVELOPE)
    assert _segments(spool) == [segment] and spool.read(stored)[1] == b"first"


def test_a_segment_still_written_stays_when_all_of_it_is_filed(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    stored = spool.put(b"one", ENVELOPE)
    spool.remove(stored)
    assert spool.pending() == [] and len(_segments(spool)) == 1  # its writer goes on in it
    later = spool.put(b"two", ENVELOPE)
    assert spool.pending() == [later]
    spool.remove(later)
    spool.close()
    assert spool.pending() == [] and _segments(spool) == []


def test_a_message_set_aside_leaves_the_journal_for_bad(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    stored = spool.put(b"raw bytes", ENVELOPE)
    spool.set_aside(stored)
    assert spool.pending() == []
    aside = Spool(spool.root)
    aside.new = spool.bad  # a file in bad/ is read as a spool file is
    assert aside.read(stored) == (ENVELOPE, b"raw bytes")


def test_a_record_with_a_broken_envelope_is_refused(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    writer = JournalWriter(spool.journal)
    writer.append("3.4.5.cafe", b"MAILROOM-SPOOL-1 {not json\n", b"raw").result(timeout=10)
    with pytest.raises(SpoolError, match="broken envelope"):
        spool.read("3.4.5.cafe")


def test_large_messages_stay_files_of_their_own(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    raw = b"x" * (2 * 1024 * 1024)
    stored = spool.put(raw, ENVELOPE)
    assert [p.name for p in spool.new.iterdir()] == [stored]
    assert spool.read(stored)[1] == raw and spool.pending() == [stored]


def killed_mid_round(when: str, at_round: int) -> str:
    """Python that makes its process kill itself by SIGKILL at a point of its journal's
    `at_round`th round: before the round's write (`before_write`), with all of it but the last
    byte written (`mid_write`), before its fdatasync (`before_sync`) or after it, before any
    writer is told (`after_sync`)."""
    return f"""
import os, signal, threading
import ingest.journal as journal

WHEN, AT = {when!r}, {at_round}
synced = 0  # rounds made durable
real_write, real_sync = journal._write_all, os.fdatasync

def in_round(data=journal.RECORD_MAGIC):
    # The journal's thread writing records (not a new segment's zeros).
    return (
        threading.current_thread().name == journal.JournalWriter.THREAD_NAME
        and data.startswith(journal.RECORD_MAGIC)
    )

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def write(fd, data):
    if in_round(data) and synced == AT - 1:
        if WHEN == "before_write":
            die()
        if WHEN == "mid_write":
            real_write(fd, data[:-1])
            die()
    real_write(fd, data)

def sync(fd):
    global synced
    if in_round() and synced == AT - 1 and WHEN == "before_sync":
        die()
    real_sync(fd)
    if in_round():
        synced += 1
        if synced == AT and WHEN == "after_sync":
            die()

journal._write_all = write
journal.os.fdatasync = sync
"""


# A writer killed in its sixth round (`killed_mid_round`). Eight threads append; each id whose
# future is done is printed, flushed, as a sender's 250.
_EIGHT_WRITERS = """
import sys, threading
from pathlib import Path
from ingest.spool import Spool, SpoolEnvelope

spool = Spool(Path(sys.argv[1]))
spool.ensure()
out = threading.Lock()

def sender(n):
    for i in range(1000):
        envelope = SpoolEnvelope("daily", "smtp", None, "x", "")
        spool_id = spool.put(b"message %d.%d" % (n, i), envelope)
        with out:
            print(spool_id, flush=True)

threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
sys.exit("never killed")
"""


@pytest.mark.parametrize("when", ["before_write", "mid_write", "before_sync", "after_sync"])
def test_a_kill_in_the_middle_of_a_round_keeps_every_message_answered(
    tmp_path: Path, when: str
) -> None:
    root = tmp_path / "spool"
    killed = subprocess.run(
        [sys.executable, "-c", killed_mid_round(when, 6) + _EIGHT_WRITERS, str(root)],
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode(errors="replace")
    answered = killed.stdout.decode().split()
    assert answered  # five rounds were answered before the kill
    spool = Spool(root)
    pending = spool.pending()
    assert set(answered) <= set(pending)  # every message answered is kept
    assert len(set(pending)) == len(pending)  # and each once
    for spool_id in pending:
        envelope, raw = spool.read(spool_id)
        assert raw.startswith(b"message ") and envelope.rcpt == "x"
        spool.remove(spool_id)
    assert spool.pending() == [] and _segments(spool) == []
