"""Near-identical items of different units (撒网式报送): the LSH band keys of recent items'
bodies, and the pairs found when an item was filed.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "similar_bands",
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("submission_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_similar_bands_submission_id_submissions"),
        ),
        sa.PrimaryKeyConstraint("key", "submission_id", name=op.f("pk_similar_bands")),
    )
    op.create_index("ix_similar_bands_received_at", "similar_bands", ["received_at"])
    op.create_table(
        "similar_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("earlier_id", sa.Integer(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("found_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["earlier_id"], ["submissions.id"], name=op.f("fk_similar_items_earlier_id_submissions")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_similar_items_submission_id_submissions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_similar_items")),
        sa.UniqueConstraint(
            "submission_id", "earlier_id", name=op.f("uq_similar_items_submission_id_earlier_id")
        ),
    )
    op.create_index(
        op.f("ix_similar_items_earlier_id"), "similar_items", ["earlier_id"], unique=False
    )
    op.create_index(
        op.f("ix_similar_items_submission_id"), "similar_items", ["submission_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_similar_items_submission_id"), table_name="similar_items")
    op.drop_index(op.f("ix_similar_items_earlier_id"), table_name="similar_items")
    op.drop_table("similar_items")
    op.drop_index("ix_similar_bands_received_at", table_name="similar_bands")
    op.drop_table("similar_bands")
