"""intake: where each IMAP-polled message came from (account, folder, UIDVALIDITY, UID)

Revision ID: 0003
Revises: 0004
Create Date: 2026-11-22 03:51:31.672397
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ledger.models

revision = "0003"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=320), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("intake_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", ledger.models.UtcDateTime(), nullable=False),
        sa.Column("acted_at", ledger.models.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["intake_id"], ["intake.id"], name=op.f("fk_imap_messages_intake_id_intake")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imap_messages")),
        sa.UniqueConstraint(
            "account",
            "folder",
            "uidvalidity",
            "uid",
            name=op.f("uq_imap_messages_account_folder_uidvalidity_uid"),
        ),
    )
    with op.batch_alter_table("imap_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_imap_messages_intake_id"), ["intake_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("imap_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imap_messages_intake_id"))
    op.drop_table("imap_messages")
