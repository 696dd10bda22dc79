"""Alembic environment and versions; `mailroom init` and the tests drive it programmatically."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config as AlembicConfig

HERE = Path(__file__).resolve().parent


def alembic_config(url: str) -> AlembicConfig:
    """An Alembic config bound to a database URL, with no alembic.ini needed."""
    from ledger.db import normalise_url

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg
