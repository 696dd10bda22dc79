"""Engines and transactions: one transaction per unit of work, on SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ClauseElement,
    CursorResult,
    Dialect,
    Engine,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import InstrumentedAttribute, set_committed_value
from sqlalchemy.sql.compiler import SQLCompiler


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin_before_savepoint(conn: Any, _name: str) -> None:
    """The sqlite3 module begins a transaction before the first INSERT, UPDATE or DELETE
    only: a SAVEPOINT that comes first starts one of its own, and its RELEASE commits it, so
    a group of savepoints (the filer's batch) would be kept item by item, not whole. Begin
    the transaction first, IMMEDIATE so it holds the write lock from here as it would from
    that first write (a deferred read upgraded later can fail at once instead of waiting)."""
    dbapi = conn.connection.dbapi_connection
    if not dbapi.in_transaction:
        dbapi.execute("BEGIN IMMEDIATE")


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the only PostgreSQL driver installed)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL (None for another database or one in memory)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.endswith(":memory:"):
        return None
    return Path(url[len(prefix) :])


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "savepoint", _sqlite_begin_before_savepoint)
        return engine
    return create_engine(url, pool_pre_ping=True)


BLOB_PIECE_BYTES = 1024 * 1024  # bytes over this are written to SQLite in pieces this big
# The (table, column) pairs `flush_with_bytes` writes. Each is its table's last column: SQLite
# stores a zero blob without making it only there (before it, the row is built in memory with
# every zero, twice over). A desk forward's large original is attached by reference (the
# outbox's `original_tail`), so no mail needs it.
PIECEWISE = (("raw_messages", "data"),)


def flush_with_bytes(session: Session, row: object, name: str, data: bytes) -> None:
    """Set the bytes column `name` of `row` to `data` and flush. On SQLite, `data` over
    `BLOB_PIECE_BYTES` goes in as a zero blob of its size and is then written into it piece
    by piece, in the same transaction: bound as a parameter it is copied twice, and the driver
    keeps one copy with its cached statement until that statement is next used (a 25 MB
    message held for the rest of the filing). The column is one of `PIECEWISE`."""
    if len(data) <= BLOB_PIECE_BYTES or session.get_bind().dialect.name != "sqlite":
        setattr(row, name, data)
        session.flush()
        return
    state = inspect(row)
    mapper = state.mapper
    table, column = mapper.local_table.name, mapper.columns[name].name
    if (table, column) not in PIECEWISE:
        raise ValueError(f"{table}.{column} is not a column written in pieces")
    setattr(row, name, func.zeroblob(len(data)))
    session.flush()
    (key_column,) = mapper.primary_key
    (key,) = state.identity or (None,)
    dbapi = session.connection().connection.dbapi_connection
    assert isinstance(dbapi, sqlite3.Connection) and key is not None
    rowid = _rowid(dbapi, table, key_column.name, key)
    assert rowid is not None  # just flushed
    view = memoryview(data)
    with dbapi.blobopen(table, column, rowid) as blob:
        for at in range(0, len(view), BLOB_PIECE_BYTES):
            blob.write(view[at : at + BLOB_PIECE_BYTES])
    set_committed_value(row, name, data)  # as written: read back without a query


def read_in_pieces(
    session: Session, column: InstrumentedAttribute[bytes], key: object
) -> Iterator[bytes]:
    """The bytes of `column` in the row whose primary key is `key`, piece by piece: on SQLite
    read from the blob `BLOB_PIECE_BYTES` at a time, never whole (a 25 MB original as a desk
    forward goes out); elsewhere in one piece. The row is looked up at once: `LookupError`
    when there is none, before any piece is read."""
    mapper = column.parent.mapper
    table, name = mapper.tables[0].name, mapper.columns[column.key].name
    (key_column,) = mapper.primary_key
    dbapi = session.connection().connection.dbapi_connection
    if not isinstance(dbapi, sqlite3.Connection):
        data = session.scalar(select(column).where(key_column == key))
        if data is None:
            raise LookupError(f"no row of {table} with {key_column.name} {key}")
        return iter((data,))
    rowid = _rowid(dbapi, table, key_column.name, key)
    if rowid is None:
        raise LookupError(f"no row of {table} with {key_column.name} {key}")
    # Opened now, read as the pieces are asked for: a blob that cannot be opened fails here.
    return _blob_pieces(dbapi.blobopen(table, name, rowid, readonly=True))


def _rowid(dbapi: sqlite3.Connection, table: str, key_column: str, key: object) -> int | None:
    """The SQLite rowid of the row of `table` whose `key_column` is `key` (a blob is opened
    by it); None when there is none."""
    found = dbapi.execute(f'SELECT rowid FROM "{table}" WHERE "{key_column}" = ?', (key,))
    row = found.fetchone()
    return None if row is None else int(row[0])


def _blob_pieces(blob: sqlite3.Blob) -> Iterator[bytes]:
    with blob:
        while piece := blob.read(BLOB_PIECE_BYTES):
            yield piece
            del piece  # let go before the next is read: one piece held at a time


_Columns = tuple[Any, ...]  # a result row of any columns


class DriverStatement:
    """A Core statement compiled once for one dialect and run on the driver itself: for the
    statements of the filing path that run for every item, where SQLAlchemy's per-execution
    work (the cache key, each row's parameters taken through the compiled statement's binds)
    costs more than the database. The parameters are given by name; `bind` turns a value into
    what the driver takes (on SQLite a datetime is stored as text), once for a value that
    every row of an executemany shares. The SQL goes through the connection's
    `exec_driver_sql`, so the engine's events still see it."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        self._processors = {
            name: bind.type._cached_bind_processor(dialect) for name, bind in compiled.binds.items()
        }
        # The values written into the statement itself (`status == "filed"`), as the driver
        # takes them; the caller gives the others.
        self._fixed = {
            name: self.bind(name, bind.effective_value)
            for name, bind in compiled.binds.items()
            if not bind.required
        }

    def bind(self, name: str, value: object) -> object:
        """`value` as the driver takes it for the parameter `name`."""
        process = self._processors[name]
        return value if process is None or value is None else process(value)

    def _driver(self, values: Mapping[str, object]) -> Any:
        if self._fixed:
            values = {**self._fixed, **values}
        return tuple(values[name] for name in self.order) if self.order is not None else values

    def execute(self, session: Session, values: Mapping[str, object]) -> CursorResult[*_Columns]:
        """Run once with `values` (driver values already: see `bind`)."""
        return session.connection().exec_driver_sql(self.sql, self._driver(values))

    def executemany(self, session: Session, rows: list[Mapping[str, object]]) -> None:
        """Run once a row, in one executemany."""
        session.connection().exec_driver_sql(self.sql, [self._driver(row) for row in rows])


class DatabaseLost(RuntimeError):
    """The SQLite file was deleted or replaced under the running service: writing on would
    commit into a file that no longer exists. Nothing is written until a restart."""


READER = "mailroom.reader"  # in Session.info: the session only reads


class Ledger:
    """The database handle the services share: an engine and its session factory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._path = sqlite_path(str(engine.url)) if engine.dialect.name == "sqlite" else None
        self._identity: tuple[int, int] | None = None
        if self._path is not None:
            event.listen(engine, "connect", self._note_identity)

    def _note_identity(self, *_args: object) -> None:
        if self._identity is None and self._path is not None:
            with contextlib.suppress(OSError):
                st = os.stat(self._path)
                self._identity = (st.st_dev, st.st_ino)

    def file_lost(self) -> str | None:
        """SQLite: why the file at the database's path is no longer the one this ledger opened
        (deleted, or replaced by another), else None. Connections already open would go on
        writing into the old file, and what they commit would be gone with it."""
        if self._path is None or self._identity is None:
            return None
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return f"the database file {self._path} was deleted while the service ran"
        except OSError as exc:
            return f"the database file {self._path} cannot be looked at: {exc.strerror or exc}"
        if (st.st_dev, st.st_ino) != self._identity:
            return f"the database file {self._path} was replaced while the service ran"
        return None

    @classmethod
    def from_url(cls, url: str) -> Ledger:
        return cls(make_engine(url))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error.

        Raises `DatabaseLost` instead, before anything is written, when the SQLite file was
        deleted or replaced under the running service (`file_lost`)."""
        lost = self.file_lost()
        if lost is not None:
            raise DatabaseLost(lost)
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A session for reading only: nothing it does is committed, and what it computed
        from the ledger once (`session.info[READER]`) it may reuse rather than read again."""
        with self._sessions() as session:
            session.info[READER] = True
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
