"""The ledger's engine keeps a transaction whole when savepoints come first in it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from ledger.db import Ledger, make_engine


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
