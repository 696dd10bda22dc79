"""The ledger's engine keeps a transaction whole when savepoints come first in it, and a
statement compiled once for the driver binds as SQLAlchemy does."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    text,
)

from ledger.db import (
    BLOB_PIECE_BYTES,
    DriverStatement,
    Ledger,
    flush_with_bytes,
    make_engine,
    read_in_pieces,
)
from ledger.intake import new_intake
from ledger.models import OutboundMessage, RawMessage, UtcDateTime
from ledger.outbox import enqueue


class _Undone(Exception):
    pass


def _ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(make_engine(f"sqlite:///{tmp_path / 'l.db'}"))
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    return ledger


def _count(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())


def test_savepoints_that_open_a_transaction_are_undone_with_it(tmp_path: Path) -> None:
    # The filer's batch: each item in a savepoint of its own, the first statement of the
    # transaction. Were the first RELEASE to commit, the rows would outlive the rollback.
    ledger = _ledger(tmp_path)
    try:
        try:
            with ledger.transaction() as session:
                for n in range(3):
                    with session.begin_nested():
                        session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                raise _Undone
        except _Undone:
            pass
        assert _count(ledger) == 0
        with ledger.transaction() as session:
            for n in range(3):
                with session.begin_nested():
                    session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        assert _count(ledger) == 3
    finally:
        ledger.dispose()


def test_a_savepoint_after_a_write_nests_in_its_transaction(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    try:
        try:
            with ledger.transaction() as session:
                session.execute(text("INSERT INTO t VALUES (1)"))
                with session.begin_nested():
                    session.execute(text("INSERT INTO t VALUES (2)"))
                raise _Undone
        except _Undone:
            pass
        assert _count(ledger) == 0
    finally:
        ledger.dispose()


_PROBE = Table(
    "driver_probe",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("kind", String(8)),
    Column("at", UtcDateTime()),
)


def test_a_driver_statement_writes_and_reads_as_core_does(ledger: Ledger) -> None:
    # Values go to the driver as SQLAlchemy would send them (an aware datetime stored naive
    # in UTC, as text on SQLite), and the values written into a statement are sent with it.
    _PROBE.create(ledger.engine)
    at = datetime(2026, 4, 1, 7, 59, 58, 123456, tzinfo=timezone(timedelta(hours=8)))
    with ledger.transaction() as session:
        insert_rows = DriverStatement(insert(_PROBE), session.get_bind().dialect)
        shared = {"at": insert_rows.bind("at", at)}
        insert_rows.executemany(session, [{**shared, "id": n, "kind": "driver"} for n in (1, 2)])
        session.execute(insert(_PROBE), [{"id": 3, "kind": "core", "at": at}])
    with ledger.transaction() as session:
        stored = session.execute(text("SELECT DISTINCT at FROM driver_probe")).all()
        assert len(stored) == 1  # the same representation, whoever wrote it
        assert session.execute(select(_PROBE.c.at).where(_PROBE.c.id == 1)).scalar_one() == at
        since = select(_PROBE.c.id).where(
            _PROBE.c.kind == "driver", _PROBE.c.at >= bindparam("since", type_=UtcDateTime())
        )
        found = DriverStatement(since.order_by(_PROBE.c.id), session.get_bind().dialect)
        assert [r.id for r in found.execute(session, {"since": found.bind("since", at)})] == [1, 2]
        later = found.bind("since", at + timedelta(microseconds=1))
        assert found.execute(session, {"since": later}).all() == []


def test_only_the_columns_written_in_pieces_take_large_bytes(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """A column not in `PIECEWISE` is refused before anything is written to it; the raw
    message, which is, is read back in pieces as it was written."""
    path = tmp_path / "m.db"
    shutil.copyfile(sqlite_template, path)
    ledger = Ledger(make_engine(f"sqlite:///{path}"))
    big = bytes(range(256)) * (BLOB_PIECE_BYTES // 256 * 3 + 7)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with ledger.transaction() as session:
        row = enqueue(
            session, kind="desk", to_address="e@x.test", subject="s", message=b"m", now=now
        )
        session.flush()
        for name in ("subject", "message"):
            with pytest.raises(ValueError, match=rf"outbox\.{name}"):
                flush_with_bytes(session, row, name, big)
        assert (row.subject, row.message) == ("s", b"m")  # no zero blob put in their place
        intake = new_intake(
            session, big, spool_id="sp.1", channel="smtp", mailbox="daily", envelope_from="",
            envelope_to="inf@mailroom.test", received_at=now, imap=None, now=now,
        )  # fmt: skip
        key = intake.id
    with ledger.reader() as session:
        assert session.get(OutboundMessage, row.id).message == b"m"  # type: ignore[union-attr]
        pieces = list(read_in_pieces(session, RawMessage.data, key))
        assert len(pieces) == 4 and max(map(len, pieces)) == BLOB_PIECE_BYTES
        assert b"".join(pieces) == big
        with pytest.raises(LookupError):
            read_in_pieces(session, RawMessage.data, key + 1)  # at once, not when first read
