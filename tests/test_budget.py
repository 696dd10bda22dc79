"""The filing budget counts the CPU time a message costs, not time on the wall: a thread that
computes past it is stopped, one that waits (a busy machine, a lock) is not."""

from __future__ import annotations

import threading
import time

import pytest

from ingest.budget import TooSlow, Watchdog, thread_cpu_seconds


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
