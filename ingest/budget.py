"""A time budget for filing one message: past it, `TooSlow` is raised in the thread doing it.

Every parsing step is linear or capped by size, but a message is hostile input: should one
still take too long, it is set aside (`quarantined`, `too_slow`) and the next is filed. One
watchdog thread serves every budget of a process. The exception arrives between two Python
bytecodes of the budgeted thread, so a single long call into C code finishes first; what
does not come back at all is the filing process's parent's to stop (see `mailroom.filer`).
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

KILL_GRACE_SECONDS = 10


def kill_after(budget: float) -> float:
    """How long the filing process may hold one message before its parent kills it: well past
    the budget, which the process enforces itself unless it is stuck in C code."""
    return 2 * budget + KILL_GRACE_SECONDS


def statement_timeout(budget: float) -> float:
    """PostgreSQL cancels a filing statement that waits longer than this, so that the session
    of a filing process killed while waiting (the server does not notice it went) lets go of
    what it holds soon after, and the next filing process is not held up by it."""
    return kill_after(budget) + KILL_GRACE_SECONDS


class TooSlow(Exception):
    """The budgeted block ran past its time."""


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise `exc` in another thread at its next bytecode (None: take back one not yet raised)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )


class Watchdog:
    """Deadlines of budgeted blocks, one per thread, watched by one daemon thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._deadlines: dict[int, float] = {}
        self._fired: set[int] = set()
        self._thread: threading.Thread | None = None

    def _watch(self) -> None:
        with self._cond:
            while True:
                now = self.clock()
                for thread_id, deadline in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[thread_id]
                        self._fired.add(thread_id)
                        _raise_in(thread_id, TooSlow)
                wait = min(self._deadlines.values(), default=now + 3600) - now
                self._cond.wait(max(wait, 0.001))

    @contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        """Run the block with `seconds` to finish; past them `TooSlow` is raised in it."""
        thread_id = threading.get_ident()
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="budget", daemon=True)
                self._thread.start()
            self._deadlines[thread_id] = self.clock() + seconds
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._deadlines.pop(thread_id, None)
                if thread_id in self._fired:
                    self._fired.discard(thread_id)
                    _raise_in(thread_id, None)  # fired as the block ended: not raised after it


WATCHDOG = Watchdog()
