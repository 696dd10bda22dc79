"""The band keys of near-identical items made again under the cheaper MinHash (one hash per
shingle, one permutation, densified; `parser.similar.band_keys`): the keys of the items in
the window, kept under the former scheme, would match no new item's.

A downgrade cannot make the former keys again (that code is gone): it empties the table, and
items filed after it are looked up among those filed since.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from parser.similar import Fingerprint

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_CHUNK = 500  # items re-keyed per round: bounded memory whatever the window holds


def upgrade() -> None:
    bind = op.get_bind()
    bands = sa.table(
        "similar_bands",
        sa.column("key", sa.BigInteger()),
        sa.column("submission_id", sa.Integer()),
        sa.column("unit_id", sa.Integer()),
        sa.column("received_at", sa.DateTime()),
    )
    submissions = sa.table("submissions", sa.column("id", sa.Integer()), sa.column("body"))
    items = bind.execute(
        sa.select(bands.c.submission_id, bands.c.unit_id, bands.c.received_at)
        .distinct()
        .order_by(bands.c.submission_id)
    ).all()
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        ids = [row.submission_id for row in chunk]
        bodies = dict(
            bind.execute(
                sa.select(submissions.c.id, submissions.c.body).where(submissions.c.id.in_(ids))
            ).all()
        )
        bind.execute(sa.delete(bands).where(bands.c.submission_id.in_(ids)))
        rows = [
            {
                "key": key,
                "submission_id": row.submission_id,
                "unit_id": row.unit_id,
                "received_at": row.received_at,
            }
            for row in chunk
            for key in sorted(set(Fingerprint.of(bodies.get(row.submission_id) or "").keys))
        ]
        if rows:
            bind.execute(sa.insert(bands), rows)


def downgrade() -> None:
    op.execute("DELETE FROM similar_bands")
