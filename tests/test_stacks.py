"""SIGUSR1 writes every thread's stack and changes nothing else, even while threads come and go.

`faulthandler.register(SIGUSR1, all_threads=True)`, which serve used before, walks the threads
from inside the C signal handler while they run; a thread ending during the walk killed the
process with SIGSEGV (a busy serve died of it in CI). The churn below kills such a process within
a few signals; the handler serve and the filer install must survive every one.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

VICTIM = r"""
import sys, threading, time
from mailroom.stacks import write_stacks_on_sigusr1

write_stacks_on_sigusr1()

def nest(n):
    try:
        if n % 7 == 0:
            raise ValueError(n)
    except ValueError:
        pass
    return n if n < 2 else nest(n - 1) + sum(i for i in range(3))

def churn():
    while True:
        nest(30)
        t = threading.Thread(target=nest, args=(5,))
        t.start()
        t.join()

for _ in range(6):
    threading.Thread(target=churn, daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""

SIGNALS = 200


def test_sigusr1_among_threads_that_start_and_end_writes_stacks_and_the_process_lives() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", VICTIM],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 20
        sent = 0
        while sent < SIGNALS and time.monotonic() < deadline and proc.poll() is None:
            proc.send_signal(signal.SIGUSR1)
            sent += 1
            time.sleep(0.005)
        time.sleep(0.2)
        assert proc.poll() is None, f"died of signal {-(proc.returncode or 0)} after {sent}"
        assert sent == SIGNALS
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    # the dumps hold the main thread's stack (it writes them) and the churning threads'
    assert "Current thread" in err and "in churn" in err
