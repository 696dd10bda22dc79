"""Substring search over items: an FTS5 trigram table (SQLite) or pg_trgm GIN indexes
(PostgreSQL) on submissions' title and body (`ledger.search`); and an index that gives the
standings a period's items by unit and author from the index alone.

On PostgreSQL `CREATE EXTENSION pg_trgm` needs a superuser (or a database owner, pg_trgm
being a trusted extension since PostgreSQL 13); the database's LC_CTYPE must class Chinese
characters as letters (C.UTF-8, zh_CN.UTF-8), or no trigram is made of them
(docs/operations.md).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

FTS = "submissions_fts"


def upgrade() -> None:
    op.create_index(
        "ix_submissions_period", "submissions", ["received_at", "status", "unit_id", "author_id"]
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"CREATE VIRTUAL TABLE {FTS} USING fts5(title, body, content='submissions', "
            "content_rowid='id', tokenize='trigram')"
        )
        op.execute(
            f"CREATE TRIGGER {FTS}_ai AFTER INSERT ON submissions BEGIN "
            f"INSERT INTO {FTS}(rowid, title, body) VALUES (new.id, new.title, new.body); END"
        )
        op.execute(
            f"CREATE TRIGGER {FTS}_ad AFTER DELETE ON submissions BEGIN "
            f"INSERT INTO {FTS}({FTS}, rowid, title, body) "
            "VALUES ('delete', old.id, old.title, old.body); END"
        )
        op.execute(
            f"CREATE TRIGGER {FTS}_au AFTER UPDATE OF title, body ON submissions BEGIN "
            f"INSERT INTO {FTS}({FTS}, rowid, title, body) "
            "VALUES ('delete', old.id, old.title, old.body); "
            f"INSERT INTO {FTS}(rowid, title, body) VALUES (new.id, new.title, new.body); END"
        )
        op.execute(f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')")  # the items already filed
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in ("title", "body"):
        op.execute(
            f"CREATE INDEX ix_submissions_{column}_trgm ON submissions "
            f"USING gin ({column} gin_trgm_ops)"
        )


def downgrade() -> None:
    op.drop_index("ix_submissions_period", "submissions")
    if op.get_bind().dialect.name == "sqlite":
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS {FTS}_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {FTS}")
        return
    for column in ("title", "body"):
        op.execute(f"DROP INDEX IF EXISTS ix_submissions_{column}_trgm")
    # The extension stays: another database object may have come to use it.
