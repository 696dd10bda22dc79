"""The clock of a test run that `scripts/at` moved: every Python process started with this
folder on PYTHONPATH (the test process, each `mailroom serve`, its filing process, each CLI
command) reads the wall clock shifted by the same `MAILROOM_TEST_CLOCK_OFFSET` seconds and
running on at the normal rate, so they all agree on what time it is.

Only the wall clock moves (`time.time`, `datetime.now`, `date.today`, …, through time-machine);
the monotonic clock that timeouts and sleeps use stays the machine's. PostgreSQL and Dovecot
keep the real time: nothing in Mailroom reads the time from them.
"""

import os

_offset = os.environ.get("MAILROOM_TEST_CLOCK_OFFSET")
if _offset:
    import time

    import time_machine

    time_machine.travel(time.time() + float(_offset), tick=True).start()
    # time-machine starts the tick at the first read of the clock, not at start(): read it now,
    # or a process that waits before it first asks (a filing process starting up, a sleep)
    # lives that much behind the others.
    time.time()
