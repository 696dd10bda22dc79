"""Alembic environment wired to the ledger's models (batch mode for SQLite's ALTER TABLE)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ledger.db import make_engine
from ledger.models import Base
from ledger.search import schema_objects

config = context.config
target_metadata = Base.metadata


SEARCH_OBJECTS = schema_objects()  # made by migration 0014 in SQL of each dialect's own


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (reflected and name in SEARCH_OBJECTS)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=_include,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Mailroom's migrations run online only (mailroom init).")
run_migrations_online()
