"""On SQLite, the outbox's `message` made the last column of its table.

A mail over a megabyte (a desk forward with a large original) is written to SQLite as a zero
blob of its size and then piece by piece (`ledger.db.flush_with_bytes`). SQLite writes a zero
blob without making it only when it is the row's last column; before it, the row is built in
memory with every zero in it, twice over: a 34 MB forward cost 68 MB while it was inserted.
The column is added again at the end, its bytes copied, and the former one dropped
(SQLite 3.35 or later). The new column keeps the empty default it was added with; every
row is written with its message.

PostgreSQL keeps a large value out of the row whatever its place: nothing to do there. A
downgrade leaves the order as it is; it changes nothing the code can see.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlite3

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if sqlite3.sqlite_version_info < (3, 35, 0):
        raise RuntimeError(
            f"SQLite {sqlite3.sqlite_version} cannot drop a column; Mailroom needs 3.35 or later"
        )
    # In place, not by making the table again: that drops it, and the rows of report_sends
    # that point at it would fail their check.
    op.execute("ALTER TABLE outbox ADD COLUMN message_last BLOB NOT NULL DEFAULT X''")
    op.execute("UPDATE outbox SET message_last = message")
    op.execute("ALTER TABLE outbox DROP COLUMN message")
    op.execute("ALTER TABLE outbox RENAME COLUMN message_last TO message")


def downgrade() -> None:
    pass
