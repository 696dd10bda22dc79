"""The filing process: `mailroom serve` files mail in a child process of its own.

Parsing, judging and filing an item is CPU work in Python; run in a thread beside the SMTP
listener it would hold the interpreter lock while senders wait for their `250`. In its own
process it runs on another core, and at a lower CPU priority (`FILING_NICE`), so during a
quarter-end burst accepting mail comes first and filing catches up right behind.

The child drains the spool the SMTP listener fills, and polls the IMAP folders beside it, in
threads: every message reaches filing through one door (`ingest.door.take`). The child's
program is the composition root's (`python -m mailroom.filer`, given the configuration on its
standard input); this module is its loop and the parent's handle on it.

Two pipes join them. On the wake pipe the parent writes a byte when it has spooled a message
(never blocking: a full pipe already means "there is work"), and closes it to say "stop"; on
the report pipe the child writes `begin ID` and `end ID` around each message, a
line `filed N` after each drain or IMAP message that did something (the parent wakes its
sender) and
`down REASON` when the database failed under it (the listener answers `451` at once).

A message that takes longer than its time budget is set aside by the child itself
(`ingest.budget`). One that holds the child far longer (stuck in C code, which the budget
cannot interrupt) is the parent's to end: it kills the child, counts a strike against the
message (`Spool.strike`) and starts a new child; so it does when the child dies holding one.
A message with two strikes is set aside unread, never retried first forever.
The child dies with its parent, even by SIGKILL (Linux `PR_SET_PDEATHSIG`; elsewhere it sees
the wake pipe close), so a killed `serve` never leaves a filer behind; whatever was spooled
stays in the spool for the next start.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from ingest.imap import ImapPoller, lease_for
from ingest.pipeline import Pipeline
from ingest.settings import ImapFolder
from ingest.spool import Spool
from ingest.worker import drain
from ledger.db import DatabaseLost

log = logging.getLogger(__name__)

FILING_NICE = 10  # CPU priority below the listener's: accepting first, filing right behind
POLL_SECONDS = 1.0  # the child looks at the spool at least this often
POLLER_STOP_SECONDS = 30.0  # how long a poller may take to finish the message in hand
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGKILL when the parent goes; leave at once if it already has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the wake pipe's end-of-file still ends an orphan
    if os.getppid() != parent_pid:
        os._exit(0)


class StopRequest:
    """A request to stop after the message in hand, by SIGTERM or by the wake pipe closing.

    A plain flag, not a `threading.Event`: a signal handler runs between two bytecodes of the
    main thread, and `Event.set` takes a lock. When the parent closed the wake pipe and sent
    SIGTERM at once, the handler could run while the main thread was inside `Event.set` for
    the pipe's end of file, wait for that thread's own lock, and never return: the filing
    process hung until it was killed (serve's "did not stop in 30 s").
    """

    def __init__(self) -> None:
        self.asked = False

    def set(self) -> None:
        self.asked = True

    def is_set(self) -> bool:
        return self.asked

    def on_signal(self, _signum: int, _frame: Any) -> None:
        self.asked = True


class _Report:
    """The child's side of the report pipe: one line per write (shorter than PIPE_BUF, so
    lines from the pollers' threads never interleave)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __call__(self, line: str) -> None:
        with contextlib.suppress(BrokenPipeError):  # the parent is gone: nobody to tell
            os.write(self.fd, line.replace("\n", " ").encode("utf-8", "replace")[:500] + b"\n")


def run_filing(
    spool: Spool,
    pipeline: Pipeline,
    folders: Sequence[ImapFolder],
    max_message_bytes: int,
    wake_fd: int,
    report_fd: int,
) -> None:
    """The child's life: drain the spool when woken (and at least every `POLL_SECONDS`),
    poll the IMAP folders in threads beside it, until SIGTERM or the wake pipe's end."""
    with contextlib.suppress(OSError):
        os.nice(FILING_NICE)
    stop = StopRequest()
    signal.signal(signal.SIGTERM, stop.on_signal)
    signal.signal(signal.SIGINT, stop.on_signal)
    os.set_blocking(wake_fd, False)
    report = _Report(report_fd)

    def woken() -> None:
        """Consume the wake bytes; a closed pipe (parent stopping or gone) means stop."""
        while True:
            try:
                if not os.read(wake_fd, 4096):
                    stop.set()
                    return
            except BlockingIOError:
                return

    lost_told = False

    def database_down(exc: Exception) -> None:
        nonlocal lost_told
        reason = str(exc).strip()
        if isinstance(exc, DatabaseLost) and not lost_told:
            log.critical(
                "%s: filing stopped, every message stays in the spool (%s). Put the database "
                "back and restart mailroom serve.",
                reason,
                spool.root,
            )
            lost_told = True
        report("down " + (reason.splitlines()[0] if reason else repr(exc)))

    pollers_stop = threading.Event()  # set here, never from a signal handler
    pollers = [
        ImapPoller(
            folder,
            pipeline,
            lease_for(pipeline.ledger.engine, folder),
            max_message_bytes,
            on_filed=lambda: report("filed 1"),
        )
        for folder in folders
    ]
    threads = [
        threading.Thread(
            target=poller.run, args=(pollers_stop,), name=f"imap-{poller.config.name}", daemon=True
        )
        for poller in pollers
    ]
    for poller, thread in zip(pollers, threads, strict=True):
        thread.start()
        log.info("polling %s", poller.where)
    try:
        while not stop.is_set():
            woken()
            done = drain(
                spool,
                pipeline,
                should_stop=stop.is_set,
                on_database_error=database_down,
                on_begin=lambda spool_id: report(f"begin {spool_id}"),
                on_end=lambda spool_id: report(f"end {spool_id}"),
            )
            if done:
                report(f"filed {done}")
            if not stop.is_set():
                select.select([wake_fd], [], [], POLL_SECONDS)
    finally:
        pollers_stop.set()
        for thread in threads:
            thread.join(POLLER_STOP_SECONDS)


class Filer:
    """The parent's handle on the filing process: `command` starts it, `payload` (its
    configuration) is written to its standard input."""

    def __init__(self, command: list[str], payload: bytes) -> None:
        self.command = command
        self.payload = payload
        self.process: subprocess.Popen[bytes] | None = None
        self.report_fd: int | None = None
        self._wake_fd: int | None = None
        self._partial = b""

    def start(self) -> None:
        """Start (or restart) the child."""
        wake_r, wake_w = os.pipe()
        report_r, report_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    *self.command,
                    f"--parent={os.getpid()}",
                    f"--wake-fd={wake_r}",
                    f"--report-fd={report_w}",
                    f"--log-level={logging.getLogger().getEffectiveLevel()}",
                ],
                stdin=subprocess.PIPE,
                pass_fds=(wake_r, report_w),
            )
            assert self.process.stdin is not None
            self.process.stdin.write(self.payload)
            self.process.stdin.close()
        finally:
            os.close(wake_r)
            os.close(report_w)
        os.set_blocking(wake_w, False)
        os.set_blocking(report_r, False)
        self._wake_fd, self.report_fd, self._partial = wake_w, report_r, b""

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def wake(self) -> None:
        """Tell the child there is work; never blocks (a full pipe already says so)."""
        if self._wake_fd is None:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._wake_fd, b"w")

    def messages(self) -> tuple[list[tuple[str, str]], bool]:
        """What the child said since last asked, and whether its end of the pipe is closed."""
        if self.report_fd is None:
            return [], True
        closed = False
        data = self._partial
        while True:
            try:
                chunk = os.read(self.report_fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                closed = True
                break
            data += chunk
        *lines, self._partial = data.split(b"\n")
        said = []
        for line in lines:
            what, _, detail = line.decode("utf-8", "replace").partition(" ")
            said.append((what, detail))
        return said, closed

    def _close_pipes(self) -> None:
        for fd in (self.report_fd, self._wake_fd):
            if fd is not None:
                os.close(fd)
        self.report_fd = self._wake_fd = None

    def reap(self) -> int | None:
        """After the child's pipe closed: wait (briefly) for it; its exit code."""
        if self.process is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self._close_pipes()
        return self.process.returncode

    def kill(self) -> None:
        """End the child at once (SIGKILL); its pipe closes and the parent restarts it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def stop(self, timeout: float) -> None:
        """Let the child finish the message in hand and exit (SIGKILL after `timeout`)."""
        if self._wake_fd is not None:
            os.close(self._wake_fd)  # end of file on the wake pipe: stop
            self._wake_fd = None
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: finish the message in hand
        deadline = time.monotonic() + timeout
        # Read on while waiting: a child blocked writing its report into a full pipe would
        # never get to exit.
        while self.process.poll() is None and time.monotonic() < deadline:
            self.messages()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(0.1)
        if self.process.poll() is None:
            log.warning("the filing process did not stop in %g s; killing it", timeout)
            self.process.kill()
            self.process.wait()
        self._close_pipes()
