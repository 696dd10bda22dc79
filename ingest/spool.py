"""The durable spool: a raw message is on disk (fsynced) before the sender hears `250`.

A message up to `JOURNAL_MAX_BYTES` is appended to the spool's journal (`ingest.journal`):
one `fdatasync` a round for every message appended since the last. A larger one is a file of
its own, Maildir-style: write to `tmp/`, fsync the file, rename into `new/`, fsync the directory.
The fsyncs are done in groups (`_GroupCommit`, a thread of its own): a writer hands its
written file over and waits; the thread takes every file handed over since its last round,
fsyncs each, renames them all into `new/` and fsyncs the directory once. On a journaling
filesystem the first fsync of a round commits the data of all its files at once, so eight
connections delivering together pay for about two disk flushes a round, not two a message,
and the SMTP event loop never waits on a disk itself (`Spool.stage` returns a future).
Each file starts with one line of envelope JSON, then the message bytes exactly as received.
A large message is written to a draft in `tmp/` while it arrives (`SpoolDraft`), and copied
behind its envelope line once it is whole. A file in `tmp/` was never answered `250` (the
process died while writing it): it is removed at the next start.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from ingest.journal import JournalReader, JournalWriter, Rounds, _fsync_dir, _write_all

MAGIC = b"MAILROOM-SPOOL-1 "
ENVELOPE_BLOCK = 4096  # the envelope line is looked for in blocks of this size
COPY_BYTES = 256 * 1024  # a draft is written, and copied into the spool, this much at a time
JOURNAL_MAX_BYTES = 1024 * 1024  # a message up to this size goes to the journal, not a file


@dataclass(frozen=True)
class SpoolEnvelope:
    mailbox: str
    channel: str
    mail_from: str | None
    rcpt: str
    received_at: str  # ISO 8601, UTC


class SpoolError(Exception):
    """A spool file that cannot be read back (kept aside in `bad/` for a person)."""


def _writer_alive(spool_id: str) -> bool:
    """Whether the process that named this spool file (`<ns>.<pid>.<seq>.<hex>`) still runs."""
    try:
        pid = int(spool_id.split(".")[1])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _GroupCommit(Rounds[tuple[str, int]]):
    """Makes written spool files durable in rounds, on a thread of its own (`Rounds`).

    `submit` hands over a file written (not yet synced) in `tmp/` with its open descriptor;
    the future it returns is done once the file is fsynced, renamed into `new/` and the
    directory fsynced, or failed with the OSError that stopped the round.
    """

    THREAD_NAME = "spool-sync"

    def __init__(self, tmp: Path, new: Path) -> None:
        super().__init__()
        self.tmp = tmp
        self.new = new

    def submit(self, name: str, fd: int) -> Future[None]:
        return self._hand_over((name, fd))

    def _commit(self, items: list[tuple[str, int]]) -> None:
        try:
            for _name, fd in items:
                os.fsync(fd)
        finally:
            for _name, fd in items:
                os.close(fd)
        for name, _fd in items:
            os.rename(self.tmp / name, self.new / name)
        _fsync_dir(self.new)

    def _failed(self, items: list[tuple[str, int]]) -> None:
        for name, _fd in items:
            # Its writer answers 451 and the sender sends it again: not kept twice.
            (self.tmp / name).unlink(missing_ok=True)
            (self.new / name).unlink(missing_ok=True)


def _envelope_line(envelope: SpoolEnvelope) -> bytes:
    return MAGIC + json.dumps(asdict(envelope), ensure_ascii=True).encode() + b"\n"


def _read_entry(path: Path) -> tuple[bytes, bytes | None]:
    """A spool file's envelope line and the message after it (None: the file has no line
    break). The message is read into one buffer of its size: a 25 MB message is held once,
    not also as the whole file it was cut from."""
    with open(path, "rb", buffering=0) as fh:
        fd = fh.fileno()
        size = os.fstat(fd).st_size
        head = b""
        while True:
            block = os.pread(fd, ENVELOPE_BLOCK, len(head))
            cut = block.find(b"\n")
            if cut >= 0:
                head += block[:cut]
                break
            head += block
            if not block or len(head) >= size:
                return head, None
        os.lseek(fd, len(head) + 1, os.SEEK_SET)
        raw = fh.readall()
    return head, raw


class SpoolDraft:
    """A message being received, written to `tmp/` line by line as it arrives, so that a
    large message is never held in memory whole. Never answered `250` until `Spool.stage_draft`
    has stored it; a draft left by a dead process is removed like any file in `tmp/`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self._file: BinaryIO | None = os.fdopen(fd, "wb", buffering=COPY_BYTES)
        self.size = 0

    def write(self, data: bytes | bytearray) -> None:
        if self._file is None:
            raise ValueError("the draft is closed")
        self._file.write(data)
        self.size += len(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        try:
            self.close()
        finally:
            self.path.unlink(missing_ok=True)


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.new = root / "new"
        self.bad = root / "bad"
        # One small file per message that stopped the filing process (killed or stalled it),
        # holding how many times: such a message is set aside, never retried first forever.
        self.strikes = root / "strikes"
        self.journal = root / "journal"
        self._seq = itertools.count()
        self._commit = _GroupCommit(self.tmp, self.new)
        self._writer = JournalWriter(self.journal)
        self._reader = JournalReader(self.journal)

    def ensure(self) -> None:
        for d in (self.tmp, self.new, self.bad, self.strikes, self.journal):
            d.mkdir(parents=True, exist_ok=True)

    def prepare_journal(self) -> None:
        """Have a journal segment ready for this process's first message."""
        self._writer.prepare()

    def close(self) -> None:
        """End this process's journal segment (readers may then remove it once filed)."""
        self._writer.close()

    def writable(self) -> bool:
        return all(os.access(d, os.W_OK) for d in (self.new, self.journal))

    @staticmethod
    def arrived(spool_id: str) -> float | None:
        """When the message was spooled (seconds since the epoch), read from its id."""
        try:
            return int(spool_id.split(".")[0]) / 1e9
        except ValueError:
            return None

    def clear_unfinished(self) -> int:
        """Remove half-written files that dead processes left in `tmp/` (and journal segments
        they were beginning); returns how many."""
        removed = 0
        for path in self.tmp.iterdir():
            if _writer_alive(path.name):
                continue
            path.unlink(missing_ok=True)
            removed += 1
        for path in self.journal.glob(".*.new"):  # `.<serial>.<pid>.seg.new`
            if not _writer_alive(path.name[1:]):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _new_id(self) -> str:
        # Sortable by time of arrival, unique across processes and hosts sharing a database.
        return f"{time.time_ns():020d}.{os.getpid()}.{next(self._seq)}.{secrets.token_hex(4)}"

    def stage(self, raw: bytes, envelope: SpoolEnvelope) -> tuple[str, Future[None]]:
        """Hand the message to the journal's next round (up to `JOURNAL_MAX_BYTES`), or write
        it to `tmp/` and hand it to the group commit: its spool id, and a future done once it
        is durably kept (or failed: then nothing is). Raises OSError when a file cannot even
        be written."""
        if len(raw) <= JOURNAL_MAX_BYTES:
            spool_id = self._new_id()
            return spool_id, self._writer.append(spool_id, _envelope_line(envelope), raw)
        return self._stage(envelope, lambda fd: _write_all(fd, raw))

    def put(self, raw: bytes, envelope: SpoolEnvelope) -> str:
        """Store durably; returns the spool id. Raises OSError when it cannot."""
        spool_id, done = self.stage(raw, envelope)
        done.result()
        return spool_id

    def draft(self) -> SpoolDraft:
        """A file in `tmp/` to write a message into as it arrives; `stage_draft` stores it."""
        return SpoolDraft(self.tmp / f"{self._new_id()}.draft")

    def stage_draft(self, draft: SpoolDraft, envelope: SpoolEnvelope) -> tuple[str, Future[None]]:
        """Stage a received draft, as `stage` stages bytes (the draft itself stays, for the
        next mailbox of the same message, until it is discarded)."""
        draft.close()

        def copy(fd: int) -> None:
            with open(draft.path, "rb") as source:
                while chunk := source.read(COPY_BYTES):
                    _write_all(fd, chunk)

        return self._stage(envelope, copy)

    def _stage(
        self, envelope: SpoolEnvelope, write: Callable[[int], object]
    ) -> tuple[str, Future[None]]:
        spool_id = self._new_id()
        tmp_path = self.tmp / spool_id
        header = _envelope_line(envelope)
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            _write_all(fd, header)
            write(fd)
        except BaseException:
            os.close(fd)
            tmp_path.unlink(missing_ok=True)
            raise
        return spool_id, self._commit.submit(spool_id, fd)

    def pending(self) -> list[str]:
        """Every message spooled and not yet filed, oldest first (journal and files)."""
        journal = self._reader.pending()
        try:
            files = [p.name for p in self.new.iterdir() if not p.name.startswith(".")]
        except FileNotFoundError:
            files = []
        return sorted(journal + files)

    def _in_journal(self, spool_id: str) -> bool:
        if not self._reader.holds(spool_id):
            self._reader.scan()  # appended since this process last looked
        return self._reader.holds(spool_id)

    def read(self, spool_id: str) -> tuple[SpoolEnvelope, bytes]:
        raw: bytes | None
        if self._in_journal(spool_id):
            body = self._reader.body(spool_id)
            cut = body.find(b"\n")
            head, raw = body[:cut], body[cut + 1 :]
        else:
            head, raw = _read_entry(self.new / spool_id)
        if raw is None or not head.startswith(MAGIC):
            raise SpoolError(f"spool file {spool_id} has no envelope line")
        try:
            fields = json.loads(head[len(MAGIC) :])
            return SpoolEnvelope(**fields), raw
        except (ValueError, TypeError) as exc:
            raise SpoolError(f"spool file {spool_id} has a broken envelope: {exc}") from None

    def remove(self, spool_id: str) -> None:
        if self._in_journal(spool_id):
            self._reader.mark_done(spool_id)
        else:
            (self.new / spool_id).unlink(missing_ok=True)
        (self.strikes / spool_id).unlink(missing_ok=True)

    def set_aside(self, spool_id: str) -> None:
        """Keep the message in `bad/` for a person, as a spool file, and out of the queue."""
        if self._in_journal(spool_id):
            (self.bad / spool_id).write_bytes(self._reader.body(spool_id))
            self._reader.mark_done(spool_id)
        else:
            os.replace(self.new / spool_id, self.bad / spool_id)
        (self.strikes / spool_id).unlink(missing_ok=True)

    def strikes_of(self, spool_id: str) -> int:
        """How many times this message stopped the filing process."""
        try:
            return int((self.strikes / spool_id).read_text(encoding="ascii") or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def strike(self, spool_id: str) -> int:
        """Count one more time this message stopped the filing process; returns the count."""
        count = self.strikes_of(spool_id) + 1
        self.strikes.mkdir(parents=True, exist_ok=True)
        (self.strikes / spool_id).write_text(str(count), encoding="ascii")
        return count
