"""The filing process: `mailroom serve` drains its spool in a child process of its own.

Parsing, judging and filing an item is CPU work in Python; run in a thread beside the SMTP
listener it would hold the interpreter lock while senders wait for their `250`. In its own
process it runs on another core, and at a slightly lower CPU priority (`FILING_NICE`), so
during a quarter-end burst accepting mail comes first and filing catches up behind it.

The parent sets a shared `wake` event when it has spooled a message (setting it never blocks
the listener) and a `stop` event on shutdown; over a one-way pipe the child says `filed` after
each drain that did something (the parent wakes its sender) and `down` when the database
failed under it (the listener answers `451` at once). The child dies with its parent, even
by SIGKILL (Linux `PR_SET_PDEATHSIG`, and a check of its parent's PID), so a killed `serve`
never leaves a filer behind; whatever was spooled stays in the spool for the next start.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from mailroom.config import Config

log = logging.getLogger("mailroom.filer")

FILING_NICE = 5  # CPU priority below the listener's: accepting first, filing right behind
POLL_SECONDS = 1.0  # the child looks at the spool at least this often
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGKILL when the parent goes; leave at once if it already has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the PID check below still ends an orphan within POLL_SECONDS
    if os.getppid() != parent_pid:
        os._exit(0)


def _main(
    config: Config,
    wake: Any,
    stop_event: Any,
    conn: Connection,
    parent_pid: int,
    log_level: int,
) -> None:
    _die_with_parent(parent_pid)
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(name)s[filer]: %(message)s"
    )
    with contextlib.suppress(OSError):
        os.nice(FILING_NICE)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from ingest.worker import drain
    from mailroom.app import App

    app = App.open(config)

    def stopping() -> bool:
        return stop.is_set() or bool(stop_event.is_set()) or os.getppid() != parent_pid

    def database_down(exc: Exception) -> None:
        conn.send(("down", str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)))

    try:
        while not stopping():
            wake.clear()
            done = drain(
                app.spool, app.pipeline, should_stop=stopping, on_database_error=database_down
            )
            if done:
                conn.send(("filed", done))
            wake.wait(POLL_SECONDS)
    except (BrokenPipeError, OSError):
        pass  # the parent is gone
    finally:
        app.close()


class Filer:
    """The parent's handle on the filing process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._ctx = multiprocessing.get_context("spawn")
        self._wake = self._ctx.Event()
        self._stop = self._ctx.Event()
        self.conn: Connection | None = None
        self.process: Any = None

    def start(self) -> None:
        """Start (or restart) the child."""
        reader, writer = self._ctx.Pipe(duplex=False)
        self.conn = reader
        self.process = self._ctx.Process(
            target=_main,
            args=(
                self.config,
                self._wake,
                self._stop,
                writer,
                os.getpid(),
                logging.getLogger().getEffectiveLevel(),
            ),
            name="mailroom-filer",
        )
        self.process.start()
        writer.close()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else int(self.process.pid)

    def alive(self) -> bool:
        return self.process is not None and bool(self.process.is_alive())

    def wake(self) -> None:
        self._wake.set()

    def messages(self) -> tuple[list[tuple[str, Any]], bool]:
        """What the child said since last asked, and whether its end of the pipe is closed."""
        said: list[tuple[str, Any]] = []
        if self.conn is None:
            return said, True
        try:
            while self.conn.poll():
                said.append(self.conn.recv())
        except (EOFError, OSError):
            return said, True
        return said, False

    def reap(self) -> int | None:
        """After the pipe closed: wait (briefly) for the child; its exit code."""
        if self.process is None:
            return None
        self.process.join(5)
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        code = self.process.exitcode
        return None if code is None else int(code)

    def stop(self, timeout: float) -> None:
        """Let the child finish the message in hand and exit (SIGKILL after `timeout`)."""
        self._stop.set()
        self._wake.set()
        if self.process is None:
            return
        if self.process.is_alive():
            self.process.terminate()  # SIGTERM: finish the message in hand
        self.process.join(timeout)
        if self.process.is_alive():
            log.warning("the filing process did not stop in %g s; killing it", timeout)
            self.process.kill()
            self.process.join()
        if self.conn is not None:
            self.conn.close()
