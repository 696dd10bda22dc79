"""The spool's journal: a small message is written to a segment file after the one before
it, and every message handed over since the last round is made durable by one `fdatasync`
before any of them is answered `250`.

A file per message costs an fsync of its own, a rename and a directory fsync; eight
connections delivering at once share the journal's rounds instead (`JournalWriter`, a thread
of its own, so the SMTP event loop never waits on a disk). Large messages, written to a draft
as they arrive, stay files of their own (`ingest.spool`).

A segment is `journal/<serial>.<pid>.seg`, written by one process, which holds an exclusive
`flock` on it while it may still append: a reader that can take the lock knows the writer is
gone (it ended, or rotated to a new segment) and the segment is final. Each record is a head
line, `MRJ1 <serial> <spool id> <length> <crc32>`, then `length` bytes: the envelope line
(JSON) and the message exactly as received. A reader stops at the first record that is not
whole or whose checksum fails: in a segment still being written that is the round in
progress (read again later); in a final one it is the torn tail a crash left, never answered
`250`, and ignored.

A segment is made at its full size, full of zeros, before its first record: each round then
writes over blocks that exist, and its `fdatasync` flushes the data alone, where a growing
file also had its new size committed (0.12 against 0.24 ms a round on this ext4). A reader
stops at the zeros, as at the records of a segment's earlier life: those carry another serial.

A message filed (or set aside) is marked done by appending its id to `<segment>.done`,
without an fsync: a mark lost in a crash only means the message is taken again, and filing is
idempotent on the spool id. A final segment whose every record is done goes to `free/`, to be
written over by the next segment begun (`KEPT_FREE` are kept; others are removed).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

RECORD_MAGIC = b"MRJ1 "
SEGMENT_BYTES = (
    8 * 1024 * 1024
)  # each segment is made this size; a round that would pass its end goes to a new one
_HEAD = re.compile(rb"MRJ1 ([0-9]{20}) ([0-9A-Za-z.]{1,100}) ([0-9]{1,12}) ([0-9a-f]{8})\n")
HEAD_MAX = 4096  # a record head is read in one block of this size (a head is far shorter)
SUFFIX = ".seg"
DONE_SUFFIX = ".done"
FREE = "free"  # segments all filed, kept to be written over (`KEPT_FREE` at most)
KEPT_FREE = 2
ZERO_PIECE = 64 * 1024  # under glibc's mmap threshold: a larger buffer, freed, raises it for good


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Rounds(Generic[T]):
    """A thread that makes what writers hand over durable in rounds: `_hand_over` returns a
    future, done once the round that took the item has committed (`_commit`), or failed with
    what stopped it (after `_failed`). A round takes every item handed over before it began,
    so none waits on a round that started before it was handed over. The thread ends after
    `IDLE_SECONDS` without work and starts again on demand."""

    IDLE_SECONDS = 2.0
    THREAD_NAME = "spool-rounds"

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[T, Future[None]]] = []
        self._running = False

    def _hand_over(self, item: T) -> Future[None]:
        done: Future[None] = Future()
        with self._cond:
            self._queue.append((item, done))
            if self._running:
                self._cond.notify()
            else:
                self._running = True
                threading.Thread(target=self._run, name=self.THREAD_NAME, daemon=True).start()
        return done

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._cond.wait(self.IDLE_SECONDS)
                if not self._queue:
                    self._running = False
                    return
                round_, self._queue = self._queue, []
            items = [item for item, _done in round_]
            try:
                self._commit(items)
            except Exception as exc:  # OSError: the disk; anything else still fails them all
                self._failed(items)
                for _item, done in round_:
                    done.set_exception(exc)
            else:
                for _item, done in round_:
                    done.set_result(None)

    def _commit(self, items: list[T]) -> None:
        raise NotImplementedError

    def _failed(self, items: list[T]) -> None:
        """Undo what a failed round left behind (nothing, unless a subclass says)."""


_Record = tuple[str, bytes, bytes]  # spool id, envelope line, message


def _head(serial: str, spool_id: str, envelope_line: bytes, raw: bytes) -> bytes:
    crc = zlib.crc32(raw, zlib.crc32(envelope_line))
    length = len(envelope_line) + len(raw)
    return b"MRJ1 %s %s %d %08x\n" % (serial.encode(), spool_id.encode(), length, crc)


class JournalWriter(Rounds[_Record]):
    """Appends records to this process's segment and makes them durable in rounds.

    `append` hands over a record; the future it returns is done once the record is written
    and the segment `fdatasync`ed, or failed with the OSError that stopped its round (then
    the round is cut off the segment again, and the next round begins a new segment).
    The segment stays open (and locked) until `close` or the process's end.
    """

    THREAD_NAME = "spool-journal"

    def __init__(self, directory: Path, segment_bytes: int | None = None) -> None:
        super().__init__()
        self.directory = directory
        self.segment_bytes = SEGMENT_BYTES if segment_bytes is None else segment_bytes
        self._disk = threading.Lock()  # the segment: written by a round, ended by `close`
        self._fd: int | None = None
        self._offset = 0
        self._serial = ""

    def append(self, spool_id: str, envelope_line: bytes, raw: bytes) -> Future[None]:
        return self._hand_over((spool_id, envelope_line, raw))

    def prepare(self) -> None:
        """Begin a segment now (the listener, before its first message), so that the first
        round does not wait for a new segment's zeros."""
        with self._disk:
            if self._fd is None:
                self._begin_segment()

    def close(self) -> None:
        with self._disk:
            self._end_segment()

    def _commit(self, items: list[_Record]) -> None:
        with self._disk:
            self._write_round(items)

    def _write_round(self, round_: list[_Record]) -> None:
        if self._fd is None:
            self._begin_segment()
        data = self._round_bytes(round_)
        if self._offset and self._offset + len(data) > self.segment_bytes:
            self._end_segment()  # the round goes to a new segment, not past this one's end
            self._begin_segment()
            data = self._round_bytes(round_)  # under the new segment's serial
        fd = self._fd
        assert fd is not None
        start = self._offset
        try:
            _write_all(fd, data)
            os.fdatasync(fd)
            if os.fstat(fd).st_nlink == 0:
                # The segment was deleted under us (the spool directory removed while the
                # service ran): the bytes went nowhere a reader will look.
                raise OSError(f"spool journal segment {self._serial} was deleted")
        except BaseException:
            # Cut the round off, if the disk lets us; a reader never files a record of it
            # unless the cut fails too (then its sender, answered 451, sends it again and
            # the copy is a duplicate, never a second item). After a failed fdatasync this
            # segment is not to be trusted: the next round begins a new one.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            self._end_segment()
            raise
        self._offset = start + len(data)
        if self._offset >= self.segment_bytes:
            self._end_segment()

    def _round_bytes(self, round_: list[_Record]) -> bytes:
        parts = []
        for spool_id, envelope_line, raw in round_:
            parts += [_head(self._serial, spool_id, envelope_line, raw), envelope_line, raw]
        return b"".join(parts)

    def _begin_segment(self) -> None:
        """A segment of `segment_bytes` already on disk: one kept free (its old records
        carry another serial, so a reader stops at them as at zeros), or a new one written
        full of zeros and fsynced. Writing over blocks that exist, each round's `fdatasync`
        flushes the data alone; appending, it also had to commit the file's growth (twice
        the time on ext4)."""
        serial = f"{time.time_ns():020d}"
        name = f"{serial}.{os.getpid()}{SUFFIX}"
        fresh = self.directory / f".{name}.new"
        if not self._take_free(fresh):
            self._lay_zeros(fresh)
        fd = os.open(fresh, os.O_WRONLY, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the segment is ended
            os.rename(fresh, self.directory / name)
            _fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            fresh.unlink(missing_ok=True)
            raise
        self._fd, self._offset, self._serial = fd, 0, serial

    def _take_free(self, to: Path) -> bool:
        free = self.directory / FREE
        try:
            kept = sorted(free.iterdir())
        except FileNotFoundError:
            return False
        for path in kept:
            try:
                if path.stat().st_size >= self.segment_bytes:
                    os.rename(path, to)
                    return True
                path.unlink()  # kept under another size: not worth writing over
            except FileNotFoundError:
                continue  # another writer took it
        return False

    def _lay_zeros(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            zeros = bytes(min(ZERO_PIECE, self.segment_bytes))
            left = self.segment_bytes
            while left > 0:
                _write_all(fd, zeros[:left])
                left -= len(zeros)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)

    def _end_segment(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # the lock goes with it: readers may now take the segment as final


@dataclass
class _Segment:
    path: Path
    scanned: int = 0  # records before this offset are read
    done_read: int = 0  # bytes of the done file read
    final: bool = False
    entries: dict[str, tuple[int, int]] = field(default_factory=dict)  # id → (offset, length)
    done: set[str] = field(default_factory=set)

    @property
    def done_path(self) -> Path:
        return self.path.with_name(self.path.name + DONE_SUFFIX)


def _unlocked(fd: int) -> bool:
    """Whether no writer holds the segment (a shared lock can be had, and is let go)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


class JournalReader:
    """The records of every segment not yet done, found incrementally: each call of `scan`
    reads only what was appended since the last one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._segments: dict[str, _Segment] = {}
        self._where: dict[str, _Segment] = {}  # spool id → its segment, while not done

    def pending(self) -> list[str]:
        self.scan()
        return list(self._where)

    def holds(self, spool_id: str) -> bool:
        return spool_id in self._where

    def scan(self) -> None:
        try:
            found = [p.name for p in self.directory.iterdir()]
            names = sorted(n for n in found if n.endswith(SUFFIX) and not n.startswith("."))
        except FileNotFoundError:
            names = []
        for gone in set(self._segments) - set(names):
            self._forget(self._segments.pop(gone))
        for name in names:
            segment = self._segments.setdefault(name, _Segment(self.directory / name))
            if not segment.final:
                self._read_records(segment)
            self._read_done(segment)
            self._retire_if_done(segment)

    def body(self, spool_id: str) -> bytes:
        """The record's bytes (envelope line and message); FileNotFoundError when it is done."""
        segment = self._where.get(spool_id)
        if segment is None:
            raise FileNotFoundError(spool_id)
        offset, length = segment.entries[spool_id]
        with open(segment.path, "rb", buffering=0) as fh:
            data = os.pread(fh.fileno(), length, offset)
        if len(data) != length:
            raise FileNotFoundError(spool_id)
        return data

    def mark_done(self, spool_id: str) -> None:
        segment = self._where.get(spool_id)
        if segment is None:
            return
        fd = os.open(segment.done_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            _write_all(fd, spool_id.encode() + b"\n")
        finally:
            os.close(fd)
        del self._where[spool_id]
        segment.entries.pop(spool_id, None)
        segment.done.add(spool_id)
        self._retire_if_done(segment)

    def _read_records(self, segment: _Segment) -> None:
        try:
            fh = open(segment.path, "rb", buffering=0)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        with fh:
            fd = fh.fileno()
            # Asked before reading: a segment found final stays as it is read now.
            final = _unlocked(fd)
            size = os.fstat(fd).st_size
            serial = segment.path.name[:20].encode()
            position = segment.scanned
            while position < size:
                head = os.pread(fd, HEAD_MAX, position)
                match = _HEAD.match(head)
                if match is None or match[1] != serial:
                    break
                start = position + match.end()
                length = int(match[3])
                if start + length > size:
                    break
                data = os.pread(fd, length, start)
                if len(data) != length or zlib.crc32(data) != int(match[4], 16):
                    break
                spool_id = match[2].decode()
                if spool_id not in segment.done:
                    segment.entries[spool_id] = (start, length)
                    self._where[spool_id] = segment
                position = start + length
            segment.scanned = position
            if final:
                segment.final = True
                if os.pread(fd, len(RECORD_MAGIC) + 20, position) == RECORD_MAGIC + serial:
                    log.warning(
                        "spool journal %s: a record cut off at byte %d ignored "
                        "(a write cut off by a crash, never answered 250)",
                        segment.path.name,
                        position,
                    )

    def _read_done(self, segment: _Segment) -> None:
        try:
            with open(segment.done_path, "rb") as fh:
                fh.seek(segment.done_read)
                data = fh.read()
        except FileNotFoundError:
            return
        whole = data.rfind(b"\n") + 1  # a line being appended is read next time
        segment.done_read += whole
        for line in data[:whole].split(b"\n"):
            if line:
                spool_id = line.decode("ascii", "replace")
                segment.done.add(spool_id)
                if segment.entries.pop(spool_id, None) is not None:
                    self._where.pop(spool_id, None)

    def _retire_if_done(self, segment: _Segment) -> None:
        if segment.final and not segment.entries:
            free = self.directory / FREE
            try:
                free.mkdir(exist_ok=True)
                if len(list(free.iterdir())) < KEPT_FREE:
                    os.rename(segment.path, free / segment.path.name)
            except FileNotFoundError:
                pass  # retired by another reader
            segment.path.unlink(missing_ok=True)
            segment.done_path.unlink(missing_ok=True)
            self._segments.pop(segment.path.name, None)
            self._forget(segment)

    def _forget(self, segment: _Segment) -> None:
        for spool_id in segment.entries:
            self._where.pop(spool_id, None)
        segment.entries.clear()
