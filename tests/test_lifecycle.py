"""The service's life: SIGKILL at any moment, SIGTERM mid-transaction, a database that goes
away, and one instance per SQLite database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, select, text

from ingest.health import DatabaseHealth
from ingest.spool import Spool, SpoolEnvelope
from ingest.worker import drain
from ledger.db import Ledger
from ledger.demo import load_demo
from ledger.models import Intake
from mailroom.app import App
from mailroom.config import parse_config
from tests.conftest import REPO
from tests.pgcluster import PgCluster
from tests.service import LedgerView, MailroomInstance, pid_alive, wait_for, with_message_id
from tests.test_journal import killed_mid_round

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock

VALID = (REPO / "examples" / "valid.eml").read_bytes()


def states(db_url: str) -> list[tuple[str, str | None]]:
    view = LedgerView(db_url)
    try:
        return view.rows()
    finally:
        view.close()


@pytest.fixture
def mailroom(tmp_path: Path, db_url: str) -> Iterator[MailroomInstance]:
    instance = MailroomInstance(tmp_path / "office", db_url)
    instance.init()
    try:
        yield instance
    finally:
        instance.close()


class PatientSender:
    """Sends like a real MTA: on a dropped connection, a refused one or a 4xx, it waits a
    moment and tries again, until the message is answered 250 (within a deadline)."""

    def __init__(self, port: int, deadline: float) -> None:
        self.port = port
        self.deadline = deadline
        self.accepted: list[str] = []  # Message-IDs answered 250
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def send_all(self, messages: list[tuple[str, bytes]]) -> None:
        smtp: smtplib.SMTP | None = None
        for message_id, raw in messages:
            while time.monotonic() < self.deadline:
                try:
                    if smtp is None:
                        smtp = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
                    smtp.sendmail("liming@th.gz.test", ["inf@mailroom.test"], raw)
                except smtplib.SMTPResponseException as exc:
                    if exc.smtp_code >= 500:
                        with self.lock:
                            self.errors.append(f"{message_id}: {exc.smtp_code} {exc.smtp_error!r}")
                        break
                    smtp = _closed(smtp)
                except (OSError, smtplib.SMTPException):
                    smtp = _closed(smtp)
                else:
                    with self.lock:
                        self.accepted.append(message_id)
                    break
                time.sleep(0.05)
        _closed(smtp)


def _closed(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()


@pytest.mark.slow
def test_sigkill_at_any_moment_loses_nothing_answered_250(tmp_path: Path, pg_url: str) -> None:
    # On PostgreSQL, the production database; SQLite's restart after SIGKILL is covered by
    # the single-instance test below and by test_service.
    mailroom = MailroomInstance(tmp_path / "office", pg_url)
    mailroom.init()
    messages = [
        (f"<kill-{n}@th.gz.test>", with_message_id(VALID, f"kill-{n}@th.gz.test"))
        for n in range(500)
    ]
    sender = PatientSender(mailroom.port, deadline=time.monotonic() + 150)
    threads = [
        threading.Thread(target=sender.send_all, args=(messages[i::4],), daemon=True)
        for i in range(4)
    ]
    # Kill points spread over the run (answered-250 counts), a little different each time.
    jitter = random.Random()
    kill_at = [point + jitter.randint(-15, 15) for point in (40, 110, 180, 250, 320, 390)]
    kills = 0
    try:
        mailroom.start()
        for thread in threads:
            thread.start()
        for point in kill_at:
            wait_for(
                lambda point=point: len(sender.accepted) >= point, timeout=60, what=f"{point} sent"
            )
            mailroom.kill()  # SIGKILL: no chance to finish anything
            kills += 1
            mailroom.start()
        for thread in threads:
            thread.join(timeout=max(sender.deadline - time.monotonic(), 1))
        assert not sender.errors
        assert sorted(sender.accepted) == sorted(mid for mid, _ in messages)  # all got 250
        mailroom.wait(lambda: not mailroom.spooled(), timeout=120, what="the spool drained")
        mailroom.stop()
    finally:
        mailroom.close()
    assert kills == 6
    rows = states(pg_url)
    filed = Counter(mid for state, mid in rows if state == "filed")
    assert filed == Counter({mid: 1 for mid, _ in messages})
    # A message spooled just before a kill, whose 250 the sender never heard, came again:
    # that second copy is a duplicate, never a second item.
    assert {state for state, _ in rows} <= {"filed", "duplicate"}


@pytest.mark.slow
@pytest.mark.parametrize("when", ["mid_write", "after_sync"])
def test_a_kill_in_the_middle_of_a_spool_round_files_every_250_once(
    tmp_path: Path, db_url: str, when: str
) -> None:
    mailroom = MailroomInstance(tmp_path / "office", db_url)
    mailroom.init()
    messages = [
        (f"<round-{n}@th.gz.test>", with_message_id(VALID, f"round-{n}@th.gz.test"))
        for n in range(200)  # at least 25 rounds, however many messages each round takes
    ]
    sender = PatientSender(mailroom.port, deadline=time.monotonic() + 120)
    threads = [
        threading.Thread(target=sender.send_all, args=(messages[i::8],), daemon=True)
        for i in range(8)
    ]
    try:
        # Killed in the middle of its spool's 10th round (`killed_mid_round`).
        mailroom.start(prelude=killed_mid_round(when, 10))
        for thread in threads:
            thread.start()
        assert mailroom.proc is not None
        assert mailroom.proc.wait(timeout=60) == -signal.SIGKILL  # it killed itself mid-round
        answered_before = len(sender.accepted)
        mailroom.proc = None
        mailroom.start()
        for thread in threads:
            thread.join(timeout=max(sender.deadline - time.monotonic(), 1))
        assert not sender.errors
        assert 0 < answered_before < len(messages)
        assert sorted(sender.accepted) == sorted(mid for mid, _ in messages)  # all got 250
        mailroom.wait(lambda: not mailroom.spooled(), timeout=120, what="the spool drained")
        mailroom.stop()
    finally:
        mailroom.close()
    rows = states(db_url)
    filed = Counter(mid for state, mid in rows if state == "filed")
    assert filed == Counter({mid: 1 for mid, _ in messages})
    # A message of the round cut off, whose 250 the sender never heard, came again: kept
    # once, and its second copy a duplicate, never a second item.
    assert {state for state, _ in rows} <= {"filed", "duplicate"}
    if when == "mid_write":
        assert "a record cut off at byte" in mailroom.log.read_text()


def _data_in_two_halves(smtp: smtplib.SMTP, raw: bytes) -> tuple[bytes, bytes]:
    code, _ = smtp.docmd("DATA")
    assert code == 354
    stuffed = re.sub(rb"(?m)^\.", b"..", raw)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    middle = len(stuffed) // 2
    return stuffed[:middle], stuffed[middle:] + b".\r\n"


@pytest.mark.slow
def test_sigterm_lets_a_transaction_in_progress_finish(
    mailroom: MailroomInstance, db_url: str
) -> None:
    mailroom.start()
    assert mailroom.proc is not None
    pid = mailroom.proc.pid
    idle = smtplib.SMTP("127.0.0.1", mailroom.port, timeout=10)
    idle.ehlo()
    busy = smtplib.SMTP("127.0.0.1", mailroom.port, timeout=10)
    busy.ehlo()
    busy.mail("liming@th.gz.test")
    busy.rcpt("inf@mailroom.test")
    first, rest = _data_in_two_halves(busy, VALID)
    busy.send(first)

    mailroom.proc.send_signal(signal.SIGTERM)
    # The idle session is told to come back later and closed; no new connection is taken.
    code, text = idle.getreply()
    assert code == 421 and b"shutting down" in text
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", mailroom.port), timeout=2).close()
    time.sleep(0.5)
    assert pid_alive(pid)  # still waiting for the message in progress

    busy.send(rest)
    code, _ = busy.getreply()
    assert code == 250
    assert mailroom.proc.wait(timeout=30) == 0
    mailroom.proc = None
    _closed(idle)
    _closed(busy)

    mailroom.start()  # whatever was answered 250 is filed at the next start
    wait_for(lambda: states(db_url) == [("filed", "<202611221015320911274@th.gz.test>")])
    mailroom.stop()


@pytest.mark.slow
def test_a_second_instance_on_one_sqlite_database_is_refused(tmp_path: Path) -> None:
    first = MailroomInstance(tmp_path / "one", f"sqlite:///{tmp_path}/shared.db")
    first.init()
    second = MailroomInstance(tmp_path / "two", f"sqlite:///{tmp_path}/shared.db")
    try:
        first.start()
        refused = second.cli("serve", check=False)
        assert refused.returncode != 0
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
        assert "SQLite allows one instance" in refused.stderr
        first.kill()  # even a SIGKILL frees the database for the next instance
        second.start()
    finally:
        first.close()
        second.close()


@pytest.mark.slow
def test_database_outage_answers_451_and_the_retry_is_filed(tmp_path: Path) -> None:
    # A cluster of its own: the shared one must stay up for the other tests.
    base = Path(tempfile.mkdtemp(prefix="mailroom-pg-outage-"))
    base.chmod(0o755)
    cluster = PgCluster(base / "cluster")
    mailroom: MailroomInstance | None = None
    try:
        cluster.start()
        cluster.execute("CREATE DATABASE outage")
        db_url = cluster.url("outage")
        mailroom = MailroomInstance(tmp_path / "office", db_url)
        mailroom.init()
        mailroom.start()
        first = with_message_id(VALID, "before@th.gz.test")
        second = with_message_id(VALID, "during@th.gz.test")
        with smtplib.SMTP("127.0.0.1", mailroom.port, timeout=30) as smtp:
            smtp.sendmail("liming@th.gz.test", ["inf@mailroom.test"], first)
        wait_for(lambda: [s for s, _ in states(db_url)] == ["filed"], what="the first item")

        cluster.stop()
        time.sleep(1.5)  # longer than the listener trusts its last look at the database
        with (
            smtplib.SMTP("127.0.0.1", mailroom.port, timeout=30) as smtp,
            pytest.raises(smtplib.SMTPDataError) as refused,
        ):
            smtp.sendmail("liming@th.gz.test", ["inf@mailroom.test"], second)
        assert refused.value.smtp_code == 451
        assert not mailroom.spooled()  # nothing was taken on

        cluster.start()
        sender = PatientSender(mailroom.port, deadline=time.monotonic() + 60)
        sender.send_all([("<during@th.gz.test>", second)])
        assert sender.accepted == ["<during@th.gz.test>"]
        mailroom.wait(lambda: len(states(db_url)) == 2, what="the retried item")
        assert states(db_url) == [
            ("filed", "<before@th.gz.test>"),
            ("filed", "<during@th.gz.test>"),
        ]
        assert "database unavailable" in mailroom.log.read_text()
    finally:
        if mailroom is not None:
            mailroom.close()
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_a_healthy_database_is_asked_once_per_interval_not_per_message(tmp_path: Path) -> None:
    ledger = Ledger.from_url(f"sqlite:///{tmp_path}/health.db")
    probes: list[str] = []
    event.listen(ledger.engine, "before_cursor_execute", lambda *args: probes.append(str(args[2])))
    now = [100.0]
    health = DatabaseHealth(ledger, ttl=1.0, clock=lambda: now[0])

    async def answers(count: int) -> list[bool]:
        return [await health.usable() for _ in range(count)]

    try:
        assert asyncio.run(answers(50)) == [True] * 50
        assert probes == ["SELECT 1"]  # fifty messages, one look
        now[0] += 1.5
        assert asyncio.run(answers(10)) == [True] * 10
        assert probes == ["SELECT 1", "SELECT 1"]
        # A worker saw the connection fail: the next answers are "no" without asking.
        health.mark_down("connection refused")
        assert asyncio.run(answers(3)) == [False] * 3
        assert len(probes) == 2
        now[0] += 1.5  # then it looks again, and the database is back
        assert asyncio.run(answers(1)) == [True]
    finally:
        ledger.dispose()


def test_half_written_spool_files_of_dead_processes_are_cleared(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    dead = subprocess.Popen(["true"])
    dead.wait()
    left_by_the_dead = spool.tmp / f"{time.time_ns():020d}.{dead.pid}.0.abcd1234"
    being_written = spool.tmp / f"{time.time_ns():020d}.{os.getpid()}.1.abcd1234"
    left_by_the_dead.write_bytes(b"MAILROOM-SPOOL-1 {half")
    being_written.write_bytes(b"MAILROOM-SPOOL-1 {half")
    assert spool.clear_unfinished() == 1
    assert not left_by_the_dead.exists() and being_written.exists()


def test_a_message_the_database_refuses_never_blocks_the_spool(db_url: str, tmp_path: Path) -> None:
    # The database refuses to store the judged intake row of one message (a rule added to this
    # test's database, as a constraint an operator might add or a column limit would do). The
    # message is kept (quarantined, raw bytes stored) and the one behind it is filed.
    refused_raw = re.sub(
        rb"(?m)^Subject: .*$",
        b"Subject: REFUSE-ME",
        with_message_id(VALID, "nul@th.gz.test"),
        count=1,
    )
    app = App.open(parse_config({"database": {"url": db_url}}, tmp_path, environ={}))
    try:
        with app.ledger.transaction() as session:
            load_demo(session)
            if db_url.startswith("postgresql"):
                session.execute(
                    text(
                        "ALTER TABLE intake ADD CONSTRAINT refuse_marked "
                        "CHECK (subject NOT LIKE '%REFUSE-ME%')"
                    )
                )
            else:
                session.execute(
                    text(
                        "CREATE TRIGGER refuse_marked BEFORE UPDATE ON intake "
                        "WHEN NEW.subject LIKE '%REFUSE-ME%' "
                        "BEGIN SELECT RAISE(ABORT, 'refused by the database'); END"
                    )
                )
        app.spool.ensure()
        for raw in (refused_raw, VALID):
            app.spool.put(
                raw,
                SpoolEnvelope(
                    "daily", "smtp", "liming@th.gz.test", "inf@x", "2026-11-22T02:00:00+00:00"
                ),
            )
        assert drain(app.spool, app.pipeline) == 2
        assert app.spool.pending() == []
        view = LedgerView(db_url)
        try:
            rows = view.rows()
        finally:
            view.close()
        assert rows[1] == ("filed", "<202611221015320911274@th.gz.test>")
        assert rows[0] == ("quarantined", None)
        with app.ledger.reader() as session:
            kept = session.scalars(select(Intake).order_by(Intake.id)).first()
            assert kept is not None and kept.raw is not None and kept.raw.data == refused_raw
            assert kept.error and "refuse" in kept.error.lower()
    finally:
        app.close()


# The filing process, killed by SIGKILL at a point of a group commit (`ingest.worker.drain`):
# just before the batch's COMMIT reaches the database, or just after it, before the first of
# its spool files is removed. Run as a program of its own, so that the kill is real.
_KILLED_MID_BATCH = """
import os, signal, sys
from pathlib import Path
from sqlalchemy import event
import ingest.worker
from mailroom.app import App
from mailroom.config import parse_config

url, base, when = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
ingest.worker.BATCH_SECONDS = 600.0  # one batch for them all, however slow the machine
app = App.open(parse_config({"database": {"url": url}}, base, environ={}))

def die(*_args):
    os.kill(os.getpid(), signal.SIGKILL)

if when == "before_commit":
    event.listen(app.ledger.engine, "commit", die)
else:
    app.spool.remove = die
ingest.worker.drain(app.spool, app.pipeline)
sys.exit("the drain ended without being killed")
"""


@pytest.mark.parametrize("when", ["before_commit", "after_commit"])
def test_a_kill_in_the_middle_of_a_group_commit_files_each_message_once(
    db_url: str, tmp_path: Path, when: str
) -> None:
    app = App.open(parse_config({"database": {"url": db_url}}, tmp_path, environ={}))
    ids = [f"<batch-{n}@th.gz.test>" for n in range(12)]
    try:
        with app.ledger.transaction() as session:
            load_demo(session)
        app.spool.ensure()
        for message_id in ids:
            app.spool.put(
                with_message_id(VALID, message_id.strip("<>")),
                SpoolEnvelope(
                    "daily", "smtp", "liming@th.gz.test", "inf@x", "2026-11-22T02:00:00+00:00"
                ),
            )
        app.ledger.dispose()  # the killed program opens its own connections
        killed = subprocess.run(
            [sys.executable, "-c", _KILLED_MID_BATCH, db_url, str(tmp_path), when],
            cwd=REPO,
            capture_output=True,
            timeout=120,
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode(errors="replace")
        assert len(app.spool.pending()) == len(ids)  # nothing removed before its commit
        committed = states(db_url)
        if when == "before_commit":
            assert committed == []  # the batch in hand was not half kept
        else:
            assert Counter(state for state, _ in committed) == {"filed": len(ids)}
        assert drain(app.spool, app.pipeline) == len(ids)
        assert app.spool.pending() == []
        rows = states(db_url)
        assert Counter(mid for state, mid in rows if state == "filed") == {mid: 1 for mid in ids}
        assert len(rows) == len(ids)  # what was committed before the kill is not taken twice
    finally:
        app.close()
