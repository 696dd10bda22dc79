"""The filing budget counts the CPU time a message costs, not time on the wall: a thread that
computes past it is stopped, one that waits (a busy machine, a lock) is not."""

from __future__ import annotations

import threading
import time

import pytest

from ingest.budget import TooLong, TooSlow, Watchdog, kill_after, thread_cpu_seconds, wall_limit


def test_a_thread_computing_past_its_budget_is_stopped() -> None:
    watchdog = Watchdog()
    started = time.monotonic()
    spins = 0
    with pytest.raises(TooSlow), watchdog.budget(0.2):
        while time.monotonic() - started < 30:  # bounded: fails below rather than hangs
            spins += 1
    assert time.monotonic() - started < 30
    assert spins > 0


def test_a_thread_that_waits_past_its_budget_is_not_stopped() -> None:
    watchdog = Watchdog()
    with watchdog.budget(0.2):
        time.sleep(0.8)  # no CPU: what a niced filer on a loaded machine looks like
        threading.Event().wait(0.2)
    # and the budget, over, fires nothing later
    time.sleep(0.3)


def test_each_thread_is_measured_by_its_own_cpu_clock() -> None:
    spent: dict[str, float] = {}

    def idle() -> None:
        before = thread_cpu_seconds(threading.get_ident())
        time.sleep(0.5)
        spent["idle"] = thread_cpu_seconds(threading.get_ident()) - before

    other = threading.Thread(target=idle)
    other.start()
    started = time.monotonic()
    while time.monotonic() - started < 0.5:
        pass
    other.join(timeout=10)
    assert spent["idle"] < 0.1


def test_a_thread_waiting_past_the_wall_limit_is_stopped_too() -> None:
    """A wait that never ends (a name server that does not answer) uses no CPU: the limit on
    the wall stops it, before the parent would have to kill the process."""
    offset = [0.0]
    watchdog = Watchdog(wall_clock=lambda: time.monotonic() + offset[0])
    started = time.monotonic()
    with pytest.raises(TooLong), watchdog.budget(0.2):
        offset[0] = wall_limit(0.2)  # the wall moves past the limit while the thread waits
        while time.monotonic() - started < 10:  # bounded: fails below rather than hangs
            time.sleep(0.01)
    assert time.monotonic() - started < 2
    assert wall_limit(30) < kill_after(30)
