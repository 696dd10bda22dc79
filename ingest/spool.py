"""The durable spool: a raw message is on disk (fsynced) before the sender hears `250`.

Maildir-style: write to `tmp/`, fsync the file, rename into `new/`, fsync the directory.
Concurrent writers share the directory fsync (group commit): a writer whose rename is done
waits for a directory fsync that *started after* it, and at most one runs at a time, so eight
connections delivering at once pay for a few directory fsyncs, not eight.
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
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"MAILROOM-SPOOL-1 "
ENVELOPE_BLOCK = 4096  # the envelope line is looked for in blocks of this size
COPY_BYTES = 256 * 1024  # a draft is written, and copied into the spool, this much at a time


@dataclass(frozen=True)
class SpoolEnvelope:
    mailbox: str
    channel: str
    mail_from: str | None
    rcpt: str
    received_at: str  # ISO 8601, UTC


class SpoolError(Exception):
    """A spool file that cannot be read back (kept aside in `bad/` for a person)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


class _GroupSync:
    """Run `action` on behalf of every caller, sharing one run among callers that overlap.

    `sync()` returns once a run that started after the call has finished; a run already in
    progress when it is called does not count (it may have missed the caller's change).
    """

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action
        self._cond = threading.Condition()
        self._started = 0  # the number of the newest run started
        self._done = 0  # the number of the newest run finished
        self._running = False

    def sync(self) -> None:
        with self._cond:
            needed = self._started + 1
            while self._done < needed:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                self._started += 1
                number = self._started
                self._cond.release()
                try:
                    self.action()
                finally:
                    self._cond.acquire()
                    self._running = False
                    self._cond.notify_all()
                # Reached only when the action succeeded (an exception propagates above).
                self._done = max(self._done, number)
                self._cond.notify_all()


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
    large message is never held in memory whole. Never answered `250` until `Spool.put_draft`
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
        self._seq = itertools.count()
        self._dir_sync = _GroupSync(lambda: _fsync_dir(self.new))

    def ensure(self) -> None:
        for d in (self.tmp, self.new, self.bad, self.strikes):
            d.mkdir(parents=True, exist_ok=True)

    def clear_unfinished(self) -> int:
        """Remove half-written files that dead processes left in `tmp/`; returns how many."""
        removed = 0
        for path in self.tmp.iterdir():
            if _writer_alive(path.name):
                continue
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def _new_id(self) -> str:
        # Sortable by time of arrival, unique across processes and hosts sharing a database.
        return f"{time.time_ns():020d}.{os.getpid()}.{next(self._seq)}.{secrets.token_hex(4)}"

    def put(self, raw: bytes, envelope: SpoolEnvelope) -> str:
        """Store durably; returns the spool id. Raises OSError when it cannot."""
        return self._store(envelope, lambda fh: fh.write(raw))

    def draft(self) -> SpoolDraft:
        """A file in `tmp/` to write a message into as it arrives; `put_draft` stores it."""
        return SpoolDraft(self.tmp / f"{self._new_id()}.draft")

    def put_draft(self, draft: SpoolDraft, envelope: SpoolEnvelope) -> str:
        """Store a received draft durably, as `put` stores bytes (the draft itself stays, for
        the next mailbox of the same message, until it is discarded)."""
        draft.close()

        def copy(fh: BinaryIO) -> None:
            with open(draft.path, "rb") as source:
                shutil.copyfileobj(source, fh, COPY_BYTES)

        return self._store(envelope, copy)

    def _store(self, envelope: SpoolEnvelope, write: Callable[[BinaryIO], object]) -> str:
        spool_id = self._new_id()
        tmp_path = self.tmp / spool_id
        header = MAGIC + json.dumps(asdict(envelope), ensure_ascii=True).encode() + b"\n"
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(header)
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(tmp_path, self.new / spool_id)
            self._dir_sync.sync()
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        return spool_id

    def pending(self) -> list[str]:
        try:
            return sorted(p.name for p in self.new.iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def read(self, spool_id: str) -> tuple[SpoolEnvelope, bytes]:
        head, raw = _read_entry(self.new / spool_id)
        if raw is None or not head.startswith(MAGIC):
            raise SpoolError(f"spool file {spool_id} has no envelope line")
        try:
            fields = json.loads(head[len(MAGIC) :])
            return SpoolEnvelope(**fields), raw
        except (ValueError, TypeError) as exc:
            raise SpoolError(f"spool file {spool_id} has a broken envelope: {exc}") from None

    def remove(self, spool_id: str) -> None:
        (self.new / spool_id).unlink(missing_ok=True)
        (self.strikes / spool_id).unlink(missing_ok=True)

    def set_aside(self, spool_id: str) -> None:
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
