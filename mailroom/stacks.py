"""SIGUSR1: every thread's stack to standard error, and nothing else changes.

`faulthandler.register(signal, all_threads=True)` would do it from inside the C signal handler,
without the interpreter lock, walking the other threads while they run: when a thread starts or
ends during the walk the process dies of SIGSEGV (seen on a busy `serve`). Here the handler is
a Python one: it runs in the main thread between two bytecodes, holding the lock, so every other
thread stands still while its stack is written. The main thread gets there within moments
(waits such as `select`, `sleep` and lock acquisition are interrupted by the signal).
"""

from __future__ import annotations

import faulthandler
import signal
import sys
from types import FrameType


def _write_stacks(signum: int, frame: FrameType | None) -> None:
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)


def write_stacks_on_sigusr1() -> None:
    """Install the handler (the main thread only may); where there is no SIGUSR1, nothing."""
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, _write_stacks)
