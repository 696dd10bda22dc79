"""A time budget for filing one message: past it, `TooSlow` is raised in the thread doing it.

Every parsing step is linear or capped by size, but a message is hostile input: should one
still take too long, it is set aside (`quarantined`, `too_slow`) and the next is filed. One
watchdog thread serves every budget of a process. The exception arrives between two Python
bytecodes of the budgeted thread, so a single long call into C code finishes first; what
does not come back at all is the filing process's parent's to stop (see `mailroom.filer`).

The budget is CPU time of the filing thread, not time on the wall: what a message costs is
what it makes Mailroom compute. A busy machine (the filing process runs at a lower priority
than the listener) or a wait on the database slows filing without being the message's doing;
waits are bounded on the wall apart: by `wall_limit` here, by the database's statement
timeout, and (for a process stuck in C code) by the parent's kill.
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
    """The budgeted block used up its CPU time."""


class TooLong(TooSlow):
    """The budgeted block ran past its time on the wall (`wall_limit`): it waits on something
    that does not answer (a name server, a lock), or the machine gives it no time at all."""


def wall_limit(budget: float) -> float:
    """How long on the wall a budgeted block may take, whatever CPU time it used: past the
    budget and a grace, but before the parent's kill (`kill_after`), so that the filing process
    sets the message aside itself whenever it still runs Python."""
    return budget + KILL_GRACE_SECONDS


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise `exc` in another thread at its next bytecode (None: take back one not yet raised)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )


def thread_cpu_seconds(thread_id: int) -> float:
    """The CPU time a thread of this process has used (its `threading.get_ident()`)."""
    return time.clock_gettime(time.pthread_getcpuclockid(thread_id))


WATCH_FLOOR_SECONDS = 0.05  # the watchdog looks at most this often; a deadline may pass by it


class Watchdog:
    """Deadlines of budgeted blocks, one per thread, watched by one daemon thread: the thread's
    CPU time, and a later one on the wall (`wall_limit`).

    A thread's CPU time grows at most as fast as the wall clock, so sleeping for what is left
    of the nearest deadline never sleeps past it. An entry is removed (under the lock) before
    its thread leaves the block, so a thread's CPU clock is only read while it lives.
    """

    def __init__(
        self,
        cpu_seconds: Callable[[int], float] = thread_cpu_seconds,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cpu_seconds = cpu_seconds
        self.wall_clock = wall_clock
        self._cond = threading.Condition()
        self._deadlines: dict[int, tuple[float, float]] = {}  # thread → (CPU, wall)
        self._fired: set[int] = set()
        self._thread: threading.Thread | None = None

    def _watch(self) -> None:
        with self._cond:
            while True:
                waits = [3600.0]
                now = self.wall_clock()
                for thread_id, (cpu_deadline, wall_deadline) in list(self._deadlines.items()):
                    cpu_left = cpu_deadline - self.cpu_seconds(thread_id)
                    wall_left = wall_deadline - now
                    if cpu_left <= 0 or wall_left <= 0:
                        del self._deadlines[thread_id]
                        self._fired.add(thread_id)
                        _raise_in(thread_id, TooSlow if cpu_left <= 0 else TooLong)
                    else:
                        waits.append(min(cpu_left, wall_left))
                self._cond.wait(max(min(waits), WATCH_FLOOR_SECONDS))

    @contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        """Run the block with `seconds` of CPU time (and `wall_limit(seconds)` on the wall);
        past them `TooSlow` (`TooLong`) is raised in it."""
        thread_id = threading.get_ident()
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="budget", daemon=True)
                self._thread.start()
            self._deadlines[thread_id] = (
                self.cpu_seconds(thread_id) + seconds,
                self.wall_clock() + wall_limit(seconds),
            )
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
