"""The filing process stops when asked, whenever the asking lands (SIGTERM and the wake pipe
closing come together when serve stops)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

# The main thread sets the stop request over and over while a timer signal, two thousand
# times a second, asks for it from a signal handler: the handler lands inside `set` again
# and again. A request that took a lock there (threading.Event) deadlocks within moments.
STORM = """
import signal, time
from ingest.filer import StopRequest
stop = StopRequest()
signal.signal(signal.SIGALRM, stop.on_signal)
signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
end, n = time.monotonic() + 1.0, 0
while time.monotonic() < end:
    stop.set()
    n += 1
signal.setitimer(signal.ITIMER_REAL, 0)
print(n, stop.is_set())
"""


def test_a_stop_signal_landing_while_the_stop_is_being_set_never_hangs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", STORM], capture_output=True, text=True, timeout=30, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    count, asked = done.stdout.split()
    assert int(count) > 1000 and asked == "True"
