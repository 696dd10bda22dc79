"""The IMAP poller against a real Dovecot: filed once, moved after the commit, renumbering.

Messages are put into the office's mailbox with IMAP APPEND, as the office's mail server would
deliver them; the poller runs in-process on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from ingest.imap import AdvisoryLease, ImapPoller, SoleInstanceLease, lease_for
from ledger.db import make_engine
from ledger.demo import load_demo
from ledger.models import ImapMessage, Intake, OutboundMessage, Submission
from mailroom.app import App
from mailroom.config import parse_config
from tests.conftest import DATA, REPO
from tests.dovecot import Dovecot
from tests.measure import statements_run
from tests.pgcluster import PgCluster
from tests.service import with_message_id

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock

VALID = (REPO / "examples" / "valid.eml").read_bytes()
PROCESSED = "已处理"  # a Chinese folder name travels as modified UTF-7


def items(count: int, start: int = 0) -> list[bytes]:
    return [with_message_id(VALID, f"imap-{n}@th.gz.test") for n in range(start, start + count)]


def office(db_url: str, tmp_path: Path, dovecot: Dovecot, **imap: object) -> App:
    table = {
        "host": "127.0.0.1",
        "port": dovecot.port,
        "ssl": False,
        "username": "inf",
        "password": dovecot.users["inf"],
        "processed_folder": PROCESSED,
        **imap,
    }
    config = parse_config(
        {
            "database": {"url": db_url},
            "imap": {"inf": table},
            "smtp": {"max_message_bytes": 60_000},
        },
        tmp_path,
        environ={},
    )
    app = App.open(config)
    with app.ledger.transaction() as session:
        load_demo(session)
    return app


@pytest.fixture
def app(db_url: str, tmp_path: Path, dovecot: Dovecot) -> Iterator[App]:
    handle = office(db_url, tmp_path, dovecot)
    try:
        yield handle
    finally:
        handle.close()


def poller_for(app: App) -> ImapPoller:
    imap = app.config.imap[0]
    return ImapPoller(
        imap, app.pipeline, lease_for(app.ledger.engine, imap), app.config.smtp.max_message_bytes
    )


def filed_message_ids(app: App) -> list[str]:
    with app.ledger.reader() as s:
        return sorted(
            s.scalars(
                select(Intake.message_id).where(Intake.state == "filed").order_by(Intake.id)
            ).all()
        )


def intake_count(app: App) -> int:
    with app.ledger.reader() as s:
        return s.scalar(select(func.count(Intake.id))) or 0


def renumber(dovecot: Dovecot, user: str = "inf") -> None:
    """What a server rebuild or migration does: a new UIDVALIDITY, UIDs counted from 1 again."""
    dovecot.stop()
    # Dovecot's new UIDVALIDITY is the time in seconds: within the second the folder was made
    # it would be the old one, with UIDs handed out again (which no real server does).
    time.sleep(1.1)
    for path in glob.glob(str(dovecot.root / "mail" / user / "dovecot*")):
        if os.path.isfile(path) and "keywords" not in path:
            os.remove(path)
    dovecot.start()


def test_200_messages_are_filed_once_moved_and_survive_renumbering(
    app: App, dovecot: Dovecot
) -> None:
    batch = items(200)
    dovecot.append(batch)
    poller = poller_for(app)
    assert poller.poll_once() == 200

    expected = sorted(f"<imap-{n}@th.gz.test>" for n in range(200))
    assert filed_message_ids(app) == expected
    assert dovecot.uids("INBOX") == []
    assert len(dovecot.uids(PROCESSED)) == 200
    with app.ledger.reader() as s:
        assert s.scalar(select(func.count(Submission.id))) == 200
        receipts = select(func.count(OutboundMessage.id)).where(OutboundMessage.kind == "receipt")
        assert s.scalar(receipts) == 200  # one receipt each
        origins = s.scalars(select(ImapMessage)).all()
        assert len(origins) == 200 and all(o.acted_at is not None for o in origins)
        assert {o.account for o in origins} == {"inf@127.0.0.1"}

    # The listing is one SEARCH without CHARSET (Chinese providers reject it), then FETCH in
    # batches, not one round trip per message.
    commands = dovecot.commands_received()
    searches = [c for c in commands if " SEARCH " in c]
    assert searches and all(c.endswith(" UID SEARCH ALL") for c in searches)
    body_fetches = [c for c in commands if "BODY.PEEK[]" in c]
    assert 4 <= len(body_fetches) <= 10

    # A second run finds nothing new.
    assert poller.poll_once() == 0
    assert intake_count(app) == 200

    # The server is rebuilt: new UIDVALIDITY, UIDs from 1 again. Meanwhile 30 new items
    # arrived, and a backup put 5 already filed ones back into the inbox.
    old_validity = dovecot.uidvalidity()
    dovecot.append(items(30, start=200) + batch[:5])
    renumber(dovecot)
    assert dovecot.uidvalidity() != old_validity
    assert dovecot.uids("INBOX") == list(range(1, 36))  # the UIDs of already filed messages

    assert poller_for(app).poll_once() == 35
    assert filed_message_ids(app) == sorted(f"<imap-{n}@th.gz.test>" for n in range(230))
    assert intake_count(app) == 230  # the 5 restored ones are recognised, not logged again
    assert dovecot.uids("INBOX") == []
    assert len(dovecot.uids(PROCESSED)) == 235


def test_flag_mode_keeps_messages_in_place_and_marks_them(
    db_url: str, tmp_path: Path, dovecot: Dovecot
) -> None:
    app = office(db_url, tmp_path, dovecot, processed_folder="")
    try:
        dovecot.append(items(20))
        assert poller_for(app).poll_once() == 20
        flags = dovecot.flags()
        assert len(flags) == 20
        assert all({"\\Seen", "$Mailroom"} <= f for f in flags.values())
        assert poller_for(app).poll_once() == 0

        renumber(dovecot)  # every filed message now has a UID the ledger has never seen
        dovecot.append(items(5, start=20))
        poller_for(app).poll_once()
        assert len(filed_message_ids(app)) == 25
        assert intake_count(app) == 25
        assert poller_for(app).poll_once() == 0
    finally:
        app.close()


def test_a_bad_message_never_stops_its_folder(app: App, dovecot: Dovecot) -> None:
    over_size = with_message_id(VALID, "big@th.gz.test") + b"\r\n" + b"A" * 76 * 1000
    # An encoded-word hiding a NUL: PostgreSQL refuses it in a text column.
    nul_subject = with_message_id(VALID, "nul@th.gz.test").replace(
        b"Subject: =?GBK?B?", b"Subject: =?utf-8?B?AA==?= =?GBK?B?", 1
    )
    not_mime = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR garbage that no mail client wrote\r\n"
    dovecot.append([items(1)[0], over_size, nul_subject, not_mime, items(1, start=1)[0]])

    assert poller_for(app).poll_once() == 5
    assert dovecot.uids("INBOX") == []
    with app.ledger.reader() as s:
        rows = {r.message_id or r.reasons[0]: r for r in s.scalars(select(Intake))}
    assert rows["<imap-0@th.gz.test>"].state == "filed"
    assert rows["<imap-1@th.gz.test>"].state == "filed"
    big = next(r for r in rows.values() if r.reasons == ["too_large"])
    assert big.state == "quarantined" and big.error is not None and "60000" in big.error
    assert all(r.state != "received" for r in rows.values())
    assert len(rows) == 5


def test_origin_is_recorded_with_the_intake(app: App, dovecot: Dovecot) -> None:
    delivered = datetime(2026, 11, 22, 2, 14, 5, tzinfo=UTC)  # as the office's server says
    dovecot.append(items(3), at=delivered)
    validity = dovecot.uidvalidity()
    poller_for(app).poll_once()
    with app.ledger.reader() as s:
        rows = s.execute(
            select(Intake.channel, Intake.received_at, ImapMessage.folder, ImapMessage.uidvalidity)
            .join(ImapMessage, ImapMessage.intake_id == Intake.id)
            .order_by(ImapMessage.uid)
        ).all()
        uids = s.scalars(select(ImapMessage.uid).order_by(ImapMessage.uid)).all()
    assert uids == [1, 2, 3]
    assert {(r.channel, r.folder, r.uidvalidity) for r in rows} == {("imap", "INBOX", validity)}
    # The receive time is when the mailbox got it (INTERNALDATE), not when Mailroom looked.
    assert {r.received_at for r in rows} == {delivered}


def test_a_folder_lease_belongs_to_one_connection_and_dies_with_it(pg_cluster: PgCluster) -> None:
    engine_a = make_engine(pg_cluster.url("postgres"))
    engine_b = make_engine(pg_cluster.url("postgres"))
    try:
        first = AdvisoryLease(engine_a, "inf@127.0.0.1", "INBOX")
        second = AdvisoryLease(engine_b, "inf@127.0.0.1", "INBOX")
        other_folder = AdvisoryLease(engine_b, "inf@127.0.0.1", "Drafts")
        assert first.acquire() and first.held()
        assert not second.acquire()
        assert other_folder.acquire()

        # The holder dies (its connection is cut): the lease passes to the other instance.
        pg_cluster.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name LIKE 'mailroom imap pid=%' AND pid IN "
            "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = "
            f"{first.key & 0xFFFFFFFF})"
        )
        assert not first.held()
        assert second.acquire() and second.held()
        second.release()
        other_folder.release()
        assert first.acquire()
        first.release()
    finally:
        engine_a.dispose()
        engine_b.dispose()


def test_a_mailbox_copy_with_a_null_return_path_gets_no_reply(app: App, dovecot: Dovecot) -> None:
    # An out-of-office notice with an ordinary subject, from a registered officer: only the
    # Return-Path the final delivery recorded (<>) shows it is automatic.
    raw = (DATA / "null_return_path_reply.eml").read_bytes()
    dovecot.append([raw])
    poller_for(app).poll_once()
    with app.ledger.reader() as s:
        row = s.scalars(select(Intake)).one()
        assert (row.state, row.reasons) == ("ignored", ["bounce"])
        assert s.scalar(select(func.count(OutboundMessage.id))) == 0


def test_two_pollers_racing_on_one_folder_still_file_each_message_once(
    app: App, dovecot: Dovecot
) -> None:
    # What happens if a lease is lost while its holder still polls: the ledger's key on
    # (account, folder, UIDVALIDITY, UID) lets only one of them record each message.
    dovecot.append(items(60))
    imap = app.config.imap[0]
    pollers = [
        ImapPoller(imap, app.pipeline, SoleInstanceLease(), app.config.smtp.max_message_bytes)
        for _ in range(2)
    ]
    errors: list[BaseException] = []

    def poll(poller: ImapPoller) -> None:
        try:
            poller.poll_once()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=poll, args=(p,)) for p in pollers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    poller_for(app).poll_once()  # whatever a loser left unmoved
    assert filed_message_ids(app) == sorted(f"<imap-{n}@th.gz.test>" for n in range(60))
    assert intake_count(app) == 60
    assert dovecot.uids("INBOX") == []


def test_a_message_the_server_lost_is_skipped_and_the_rest_go_on(
    app: App, dovecot: Dovecot
) -> None:
    dovecot.append(items(3))
    # The message file disappears behind the server's back: its content comes back as NIL.
    mail = dovecot.root / "mail" / "inf"
    files = [*(mail / "new").iterdir(), *(mail / "cur").iterdir()]
    [lost] = [path for path in files if b"imap-1@" in path.read_bytes()]
    lost.unlink()
    assert poller_for(app).poll_once() == 2
    assert filed_message_ids(app) == ["<imap-0@th.gz.test>", "<imap-2@th.gz.test>"]
    assert poller_for(app).poll_once() == 0  # the server has noticed and expunged it
    assert dovecot.uids("INBOX") == []


def test_a_fetched_batch_is_filed_in_one_transaction(app: App, dovecot: Dovecot) -> None:
    """Group commit, as for the spool: 40 messages of one FETCH are committed together (and
    then moved, and their move recorded), not a transaction each."""
    dovecot.append(items(40))
    commits: list[int] = []

    def count(_conn: object) -> None:
        commits.append(1)

    event.listen(app.ledger.engine, "commit", count)
    try:
        assert poller_for(app).poll_once() == 40
    finally:
        event.remove(app.ledger.engine, "commit", count)
    assert filed_message_ids(app) == sorted(f"<imap-{n}@th.gz.test>" for n in range(40))
    assert dovecot.uids("INBOX") == []
    assert len(commits) <= 3  # the batch, the record of the move (and the folder's lease)


def test_a_folder_never_renumbered_costs_no_lookup_of_earlier_copies_a_message(
    app: App, dovecot: Dovecot
) -> None:
    # The look for a renumbered folder's earlier copy (by content, under another UIDVALIDITY)
    # is asked once a batch whether it can find anything, not made for every message.
    dovecot.append(items(40))
    with statements_run(app.ledger.engine) as statements:
        assert poller_for(app).poll_once() == 40
    other_numbering = [s for s in statements if "uidvalidity !=" in s.lower()]
    assert 1 <= len(other_numbering) <= 2  # one FETCH batch (two if the server splits it)
    assert len(filed_message_ids(app)) == 40


def test_a_filed_batch_is_moved_while_the_next_one_is_filed(
    app: App, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's move of one batch and the filing of the next overlap (on a real network
    both take their time); the connection is never used by both at once, every message is
    filed once and moved, and each move is recorded."""
    import ingest.imap

    monkeypatch.setattr(ingest.imap, "FETCH_COUNT", 4)
    dovecot.append(items(12))  # three batches
    poller = poller_for(app)
    batches_begun = 0
    second_begun = threading.Event()
    seen_while_moving: list[bool] = []
    move_threads: set[str] = set()
    messages, move = poller._messages, poller._move_or_flag

    def counted(*args: object, **kwargs: object) -> Iterator[tuple[bytes, object]]:
        nonlocal batches_begun
        batches_begun += 1
        if batches_begun == 2:
            second_begun.set()
        yield from messages(*args, **kwargs)  # type: ignore[arg-type]

    def slow_move(client: object, uids: list[int]) -> None:
        move_threads.add(threading.current_thread().name)
        if not seen_while_moving:
            # The first batch's move: the second batch is being filed meanwhile, or never
            # (without the overlap it waits for this move, which gives up after 10 s).
            seen_while_moving.append(second_begun.wait(timeout=10))
        move(client, uids)  # type: ignore[arg-type]

    monkeypatch.setattr(poller, "_messages", counted)
    monkeypatch.setattr(poller, "_move_or_flag", slow_move)
    assert poller.poll_once() == 12
    assert seen_while_moving == [True]
    assert any(name.startswith("imap-move") for name in move_threads)
    assert filed_message_ids(app) == sorted(f"<imap-{n}@th.gz.test>" for n in range(12))
    assert dovecot.uids("INBOX") == []
    with app.ledger.reader() as s:
        assert s.scalar(select(func.count()).where(ImapMessage.acted_at.is_(None))) == 0
    assert poller_for(app).poll_once() == 0


def test_a_batch_that_fails_to_be_filed_still_lets_the_move_before_it_finish(
    app: App, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away while the second batch is filed: the first batch's move, under
    way meanwhile, is waited for and recorded before the error goes out; the next poll files
    the rest."""
    import ingest.imap

    monkeypatch.setattr(ingest.imap, "FETCH_COUNT", 4)
    dovecot.append(items(8))  # two batches
    calls = 0
    real_take_batch = ingest.imap.take_batch

    def failing_second(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("the database went away")
        return real_take_batch(*args, **kwargs)

    monkeypatch.setattr(ingest.imap, "take_batch", failing_second)
    with pytest.raises(OSError, match="went away"):
        poller_for(app).poll_once()
    assert filed_message_ids(app) == sorted(f"<imap-{n}@th.gz.test>" for n in range(4))
    assert len(dovecot.uids("INBOX")) == 4  # the first batch moved
    with app.ledger.reader() as s:
        assert s.scalar(select(func.count()).where(ImapMessage.acted_at.is_(None))) == 0
    monkeypatch.setattr(ingest.imap, "take_batch", real_take_batch)
    assert poller_for(app).poll_once() == 4
    assert dovecot.uids("INBOX") == []
