"""The load client: smtplib in its own process, so it does not share the server's event loop.

`python -m bench.client --port P --mode MODE --workload FILE` sends every letter of the
workload file and prints one JSON object: how many were accepted, the wall time, and for each
message the time from the end of DATA (the final `.` sent) to the server's reply.

Modes: `reuse1` one connection for everything; `reuse8` eight concurrent connections, each
reused; `new8` eight concurrent senders that open a new connection per message.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import re
import smtplib
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.workload import DAILY, read_workload

MODES = {"reuse1": (1, True), "reuse8": (8, True), "new8": (8, False)}
SOCKET_TIMEOUT = 120.0


class Refused(Exception):
    """The server answered something other than the expected code."""


def stuffed(data: bytes) -> bytes:
    """The DATA payload: dot-stuffed, CRLF-terminated, with the final `.` line."""
    body = re.sub(rb"(?m)^\.", b"..", data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def send_one(smtp: smtplib.SMTP, mail_from: str, payload: bytes) -> float:
    """One transaction; returns seconds from the end of DATA to the `250`."""
    code, reply = smtp.mail(mail_from)
    if code != 250:
        raise Refused(f"MAIL FROM: {code} {reply!r}")
    code, reply = smtp.rcpt(DAILY)
    if code not in (250, 251):
        raise Refused(f"RCPT TO: {code} {reply!r}")
    smtp.putcmd("data")
    code, reply = smtp.getreply()
    if code != 354:
        raise Refused(f"DATA: {code} {reply!r}")
    smtp.send(payload)
    start = time.perf_counter()
    code, reply = smtp.getreply()
    elapsed = time.perf_counter() - start
    if code != 250:
        raise Refused(f"end of DATA: {code} {reply!r}")
    return elapsed


@dataclass
class Sender:
    """One client thread's results."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run(
    port: int, mode: str, letters: list[tuple[str, bytes]], time_limit: float
) -> dict[str, Any]:
    threads_n, reuse = MODES[mode]
    counter = itertools.count()
    start_line = threading.Barrier(threads_n + 1)
    deadline = [float("inf")]
    senders = [Sender() for _ in range(threads_n)]

    def next_letter() -> tuple[str, bytes] | None:
        i = next(counter)
        if i >= len(letters) or time.monotonic() > deadline[0]:
            return None
        return letters[i]

    def connect() -> smtplib.SMTP:
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=SOCKET_TIMEOUT)
        smtp.ehlo("bench.localhost")
        return smtp

    def reused(me: Sender) -> None:
        smtp = connect()
        start_line.wait()
        try:
            while (letter := next_letter()) is not None:
                try:
                    me.latencies.append(send_one(smtp, *letter))
                except Refused as exc:
                    me.errors.append(str(exc))
                    smtp.rset()
        finally:
            smtp.quit()

    def fresh(me: Sender) -> None:
        start_line.wait()
        while (letter := next_letter()) is not None:
            try:
                smtp = connect()
                try:
                    me.latencies.append(send_one(smtp, *letter))
                finally:
                    smtp.quit()
            except (Refused, smtplib.SMTPException, OSError) as exc:
                me.errors.append(f"{type(exc).__name__}: {exc}")

    def guarded(me: Sender) -> None:
        try:
            (reused if reuse else fresh)(me)
        except Exception as exc:
            me.errors.append(f"{type(exc).__name__}: {exc}")
            start_line.abort()

    threads = [threading.Thread(target=guarded, args=(s,), daemon=True) for s in senders]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a sender failed: it says why
        start_line.wait(timeout=60)
    started = time.monotonic()
    deadline[0] = started + time_limit
    for t in threads:
        t.join(timeout=time_limit + 2 * SOCKET_TIMEOUT)
    finished = time.monotonic()
    latencies = [x for s in senders for x in s.latencies]
    errors = [e for s in senders for e in s.errors]
    return {
        "mode": mode,
        "total": len(letters),
        "accepted": len(latencies),
        "failed": len(errors),
        "errors": errors[:5],
        "started": started,
        "finished": finished,
        "wall": finished - started,
        "latencies_ms": [round(x * 1000, 3) for x in latencies],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.client")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=sorted(MODES), required=True)
    p.add_argument("--workload", type=Path, required=True)
    p.add_argument("--time-limit", type=float, default=600.0, help="stop sending after this")
    args = p.parse_args(argv)
    letters = [(x.mail_from, stuffed(x.data)) for x in read_workload(args.workload)]
    result = run(args.port, args.mode, letters, args.time_limit)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0 if result["accepted"] == result["total"] else 1


if __name__ == "__main__":
    sys.exit(main())
