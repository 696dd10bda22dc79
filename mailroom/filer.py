"""The filing process: `mailroom serve` drains its spool in a child process of its own.

Parsing, judging and filing an item is CPU work in Python; run in a thread beside the SMTP
listener it would hold the interpreter lock while senders wait for their `250`. In its own
process it runs on another core, and at a lower CPU priority (`FILING_NICE`), so during a
quarter-end burst accepting mail comes first and filing catches up right behind.

The child is `python -m mailroom.filer`, given the parent's configuration on its standard
input. Two pipes join them. On the wake pipe the parent writes a byte when it has spooled a
message (never blocking: a full pipe already means "there is work"), and closes it to say
"stop"; on the report pipe the child writes `begin ID` and `end ID` around each message, a
line `filed N` after each drain that did something (the parent wakes its sender) and
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

import argparse
import contextlib
import ctypes
import faulthandler
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from typing import Any

from mailroom.config import Config

log = logging.getLogger("mailroom.filer")

FILING_NICE = 10  # CPU priority below the listener's: accepting first, filing right behind
POLL_SECONDS = 1.0  # the child looks at the spool at least this often
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
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


def _main(config: Config, wake_fd: int, report_fd: int) -> None:
    with contextlib.suppress(OSError):
        os.nice(FILING_NICE)
    stop = StopRequest()
    signal.signal(signal.SIGTERM, stop.on_signal)
    signal.signal(signal.SIGINT, stop.on_signal)

    from ingest.worker import drain
    from ledger.db import DatabaseLost
    from mailroom.app import App

    app = App.open(config)
    os.set_blocking(wake_fd, False)

    def woken() -> None:
        """Consume the wake bytes; a closed pipe (parent stopping or gone) means stop."""
        while True:
            try:
                if not os.read(wake_fd, 4096):
                    stop.set()
                    return
            except BlockingIOError:
                return

    def report(line: str) -> None:
        os.write(report_fd, line.replace("\n", " ").encode("utf-8", "replace") + b"\n")

    lost_told = False

    def database_down(exc: Exception) -> None:
        nonlocal lost_told
        reason = str(exc).strip()
        if isinstance(exc, DatabaseLost) and not lost_told:
            log.critical(
                "%s: filing stopped, every message stays in the spool (%s). Put the database "
                "back and restart mailroom serve.",
                reason,
                app.spool.root,
            )
            lost_told = True
        report("down " + (reason.splitlines()[0] if reason else repr(exc)))

    try:
        while not stop.is_set():
            woken()
            done = drain(
                app.spool,
                app.pipeline,
                should_stop=stop.is_set,
                on_database_error=database_down,
                on_begin=lambda spool_id: report(f"begin {spool_id}"),
                on_end=lambda spool_id: report(f"end {spool_id}"),
            )
            if done:
                report(f"filed {done}")
            if not stop.is_set():
                select.select([wake_fd], [], [], POLL_SECONDS)
    except BrokenPipeError:
        pass  # the parent is gone
    finally:
        app.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mailroom.filer", description=__doc__)
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--wake-fd", type=int, required=True)
    p.add_argument("--report-fd", type=int, required=True)
    p.add_argument("--log-level", type=int, default=logging.INFO)
    args = p.parse_args(argv)
    _die_with_parent(args.parent)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # as serve: stacks to the log
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s[filer]: %(message)s"
    )
    config = pickle.load(sys.stdin.buffer)  # from the parent, which read and checked it
    if not isinstance(config, Config):
        raise SystemExit("mailroom.filer: no configuration on standard input")
    _main(config, args.wake_fd, args.report_fd)
    return 0


class Filer:
    """The parent's handle on the filing process."""

    def __init__(self, config: Config) -> None:
        self.config = config
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
                    sys.executable,
                    "-m",
                    "mailroom.filer",
                    f"--parent={os.getpid()}",
                    f"--wake-fd={wake_r}",
                    f"--report-fd={report_w}",
                    f"--log-level={logging.getLogger().getEffectiveLevel()}",
                ],
                stdin=subprocess.PIPE,
                pass_fds=(wake_r, report_w),
            )
            assert self.process.stdin is not None
            self.process.stdin.write(pickle.dumps(self.config))
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


if __name__ == "__main__":
    sys.exit(main())
