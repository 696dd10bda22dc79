"""The outbox's `original_tail`: a desk forward of a large item attaches the original by
reference. Its row holds the forward without the original's base64, and `original_tail` says
how many bytes before the end of `message` it goes; the sender reads the original from
`raw_messages` in pieces and writes it in as the mail goes out. None on every other row.

A downgrade writes the original into each such row's message first, a row at a time, so
that the former code sends it whole.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.compose import with_original

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("original_tail", sa.Integer(), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    outbox = sa.table(
        "outbox",
        sa.column("id", sa.Integer()),
        sa.column("intake_id", sa.Integer()),
        sa.column("message", sa.LargeBinary()),
        sa.column("original_tail", sa.Integer()),
    )
    raw = sa.table(
        "raw_messages", sa.column("intake_id", sa.Integer()), sa.column("data", sa.LargeBinary())
    )
    ids = bind.scalars(
        sa.select(outbox.c.id).where(outbox.c.original_tail.is_not(None)).order_by(outbox.c.id)
    ).all()
    for row_id in ids:
        message, tail, original = bind.execute(
            sa.select(outbox.c.message, outbox.c.original_tail, raw.c.data)
            .select_from(outbox.outerjoin(raw, raw.c.intake_id == outbox.c.intake_id))
            .where(outbox.c.id == row_id)
        ).one()
        if original is None:
            raise RuntimeError(f"outbox row {row_id}: its original is not in raw_messages")
        whole = b"".join(with_original(message, tail, [original]))
        bind.execute(
            sa.update(outbox).where(outbox.c.id == row_id).values(message=whole, original_tail=None)
        )
    op.drop_column("outbox", "original_tail")
