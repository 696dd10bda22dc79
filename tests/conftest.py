"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL cluster."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command

from ledger.db import Ledger
from ledger.demo import load_demo
from mailroom.app import App
from mailroom.config import parse_config
from migrations import alembic_config
from tests.dovecot import Dovecot
from tests.pgcluster import PgCluster

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "corpus"  # real mail of other projects (corpus/SOURCES.md)

_db_counter = itertools.count(1)


def migrate(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    # Not under pytest's 0700 temp root: the cluster's owner must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="mailroom-pg-"))
    base.chmod(0o755)
    cluster = PgCluster(base / "cluster")
    try:
        cluster.start()
        cluster.execute("CREATE DATABASE mailroom_template")
        migrate(cluster.url("mailroom_template"))
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of each kind."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "mailroom.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    yield from _fresh_pg_database(request.getfixturevalue("pg_cluster"))


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A freshly migrated, empty PostgreSQL database (for tests that only make sense there)."""
    yield from _fresh_pg_database(pg_cluster)


def _fresh_pg_database(cluster: PgCluster) -> Iterator[str]:
    name = f"t_{next(_db_counter)}"
    cluster.execute(f"CREATE DATABASE {name} TEMPLATE mailroom_template")
    try:
        yield cluster.url(name)
    finally:
        cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    handle = Ledger.from_url(db_url)
    try:
        yield handle
    finally:
        handle.dispose()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A private Dovecot IMAP server on 127.0.0.1 with the mailboxes `inf` and `sfxx`."""
    server = Dovecot(users={"inf": "secret", "sfxx": "secret"})
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    """An office on each database with the demo registry, opened in this process (a module
    that needs another configuration defines its own `app`)."""
    config = parse_config({"database": {"url": db_url}}, tmp_path, environ={})
    office = App.open(config)
    with office.ledger.transaction() as session:
        load_demo(session)
    try:
        yield office
    finally:
        office.close()
