"""hostile senders: intake.written_hash (duplicates by what the sender wrote, indexed with the
Message-ID); outbox (kind, created_at) for the hourly refusal caps

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("intake", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("written_hash", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.create_index(
            "ix_intake_message_id_written_hash", ["message_id", "written_hash"], unique=False
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_kind_created_at", ["kind", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_kind_created_at")
    with op.batch_alter_table("intake", schema=None) as batch_op:
        batch_op.drop_index("ix_intake_message_id_written_hash")
        batch_op.drop_column("written_hash")
