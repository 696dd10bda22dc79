"""A time budget for filing one message: past it, `TooSlow` is raised in the thread doing it.

Every parsing step is linear or capped by size, but a message is hostile input: should one
still take too long, it is set aside (`quarantined`, `too_slow`) and the next is filed. One
watchdog thread serves every budget of a process. The exception arrives between two Python
bytecodes of the budgeted thread, so a single long call into C code finishes first; what
does not come back at all is the filing process's parent's to stop (see `mailroom.filer`).

The budget is CPU time of the filing thread, not time on the wall: what a message costs is
what it makes Mailroom compute. A busy machine (the filing process runs at a lower priority
than the listener) or a wait on the database slows filing without being the message's doing;
waits are bounded apart, by the database's statement timeout and the parent's kill.
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


def thread_cpu_seconds(thread_id: int) -> float:
    """The CPU time a thread of this process has used (its `threading.get_ident()`)."""
    return time.clock_gettime(time.pthread_getcpuclockid(thread_id))


class Watchdog:
    """CPU-time deadlines of budgeted blocks, one per thread, watched by one daemon thread.

    A thread's CPU time grows at most as fast as the wall clock, so sleeping for what is left
    of the nearest deadline never sleeps past it.
    """

    def __init__(self, cpu_seconds: Callable[[int], float] = thread_cpu_seconds) -> None:
        self.cpu_seconds = cpu_seconds
        self._cond = threading.Condition()
        self._deadlines: dict[int, float] = {}
        self._fired: set[int] = set()
        self._thread: threading.Thread | None = None

    def _left(self, thread_id: int, deadline: float) -> float:
        try:
            return deadline - self.cpu_seconds(thread_id)
        except OSError:  # the thread is gone: nothing left to watch
            return float("inf")

    def _watch(self) -> None:
        with self._cond:
            while True:
                waits = []
                for thread_id, deadline in list(self._deadlines.items()):
                    left = self._left(thread_id, deadline)
                    if left <= 0:
                        del self._deadlines[thread_id]
                        self._fired.add(thread_id)
                        _raise_in(thread_id, TooSlow)
                    elif left != float("inf"):
                        waits.append(left)
                    else:
                        del self._deadlines[thread_id]
                self._cond.wait(max(min(waits, default=3600.0), 0.001))

    @contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        """Run the block with `seconds` of CPU time; past them `TooSlow` is raised in it."""
        thread_id = threading.get_ident()
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="budget", daemon=True)
                self._thread.start()
            self._deadlines[thread_id] = self.cpu_seconds(thread_id) + seconds
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
