"""Bounces of our own mail: the outbox keeps each message's Message-ID (to know a bounce of it)
and when a bounce of it came back (state `bounced`).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ledger.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.String(length=998), nullable=True))
        batch_op.add_column(sa.Column("bounced_at", ledger.models.UtcDateTime(), nullable=True))
        batch_op.create_index("ix_outbox_message_id", ["message_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message_id")
        batch_op.drop_column("bounced_at")
        batch_op.drop_column("message_id")
