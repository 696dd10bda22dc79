"""Other units' near-identical items (撒网式报送): the band keys of recent items, the lookup of
a new item among them, and the pairs found (`parser.similar` says what is measured).

A lookup is one indexed query: the new item's 64 band keys against `similar_bands`, only rows
of other units received within the window, each key read for its latest `PER_KEY` items,
grouped by item; the few items that share most keys are then measured exactly on their
bodies. Rows older than the window are pruned as items are
filed, so the table holds about (items of the window) × 64 rows whatever the ledger's age.
Nothing here refuses anything: the pairs are shown to the editors, who decide.
"""

from __future__ import annotations

import functools
import hashlib
from array import array
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Dialect,
    Select,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from ledger.db import DriverStatement
from ledger.models import Base, SimilarBand, SimilarItem, Submission, Unit
from parser.similar import Fingerprint, overlap, shingles

# At most this many items sharing a band key are measured exactly (those sharing most keys
# first): a flood of look-alike items cannot make one filing slow.
CANDIDATES = 50
PER_KEY = 8  # of the items sharing one key, the latest so many are counted
_BANDS = Base.metadata.tables["similar_bands"]  # Core inserts: no ORM work for 64 rows
_PAIRS = Base.metadata.tables["similar_items"]
PRUNE_EVERY = 50
_PRUNE_LOCK = 0x5117_1A12  # PostgreSQL advisory lock: one filing prunes at a time


@dataclass(frozen=True)
class Match:
    """Another unit's item a new item resembles, with how much (0…1)."""

    item: Submission
    unit_code: str
    unit_name: str
    similarity: float


def find(
    session: Session,
    fingerprint: Fingerprint,
    *,
    unit_id: int,
    received_at: datetime,
    window: timedelta,
    threshold: float,
    exclude_id: int | None = None,
) -> list[Match]:
    """Filed items of other units received since `received_at - window` whose body reaches
    `threshold` against this one, the most similar first.

    The candidates are read as (id, body) only and measured on the hashes of their shingles
    (`_shingle_hashes`, kept for bodies measured lately); only the items that match are
    loaded whole."""
    if not fingerprint.keys:
        return []
    keys = sorted(set(fingerprint.keys))
    dialect = session.get_bind().dialect
    lookup = _lookup_on(dialect, exclude_id is not None, len(keys))
    params: dict[str, object] = {f"key_{n}": key for n, key in enumerate(keys)}
    params.update(since=lookup.bind("since", received_at - window), unit_id=unit_id)
    if exclude_id is not None:
        params["exclude_id"] = exclude_id
    own = _hashed(fingerprint.shingles)
    postgres = dialect.name == "postgresql"
    if postgres:
        # Executed often, the lookup becomes a prepared statement, and PostgreSQL's generic
        # plan for it (the window and the keys unknown) took 20–30 ms where a plan made for
        # the values takes 3–6: this one statement is always planned for its values.
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    try:
        candidates = lookup.execute(session, params).all()
    finally:
        if postgres:
            session.execute(text("SET LOCAL plan_cache_mode = auto"))
    scores: dict[int, float] = {}
    for item_id, body in candidates:
        score = overlap(own, _shingle_hashes(body))
        if score >= threshold:
            scores[item_id] = round(score, 3)
    if not scores:
        return []
    rows = session.execute(
        select(Submission, Unit.code, Unit.name)
        .join(Unit, Submission.unit_id == Unit.id)
        .where(Submission.id.in_(list(scores)))
    )
    found = [Match(item, code, name, scores[item.id]) for item, code, name in rows]
    found.sort(key=lambda m: (-m.similarity, m.item.received_at, m.item.id))
    return found


_LOW32 = 0xFFFFFFFF


def _hashed(found: frozenset[str]) -> frozenset[int]:
    """The shingles as the low 32 bits of their hashes: 4 bytes each in the cache, and two
    bodies of 2,000 shingles share a hash they do not share a shingle for about once in a
    thousand pairs, against the half of their shingles a look-alike shares."""
    return frozenset(hash(shingle) & _LOW32 for shingle in found)


class _HashCache:
    """The shingles of bodies measured lately, as a 32-bit hash of each shingle (4 bytes a
    shingle in an array), kept by a digest of the body text up to `budget` hashes in all, the least
    recently used dropped first. A candidate is measured again for many items filed after it;
    its shingles are computed once. Keyed by what the body says, an entry never answers for
    another text (an id rolled back and taken by another item reads that item's body), and
    the bodies themselves are not kept."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self.entries: OrderedDict[bytes, array[int]] = OrderedDict()

    def __call__(self, body: str) -> Collection[int]:
        """The distinct hashes of the body's shingles (as kept: not made a set again)."""
        key = hashlib.blake2b(body.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        kept = self.entries.get(key)
        if kept is not None:
            self.entries.move_to_end(key)
            return kept
        hashes = _hashed(shingles(body))
        kept = array("I", hashes)
        self.entries[key] = kept
        self.size += len(kept)
        while self.size > self.budget:
            _body, dropped = self.entries.popitem(last=False)
            self.size -= len(dropped)
        return hashes


CACHED_SHINGLES = 1_000_000  # hashes (about 4 MB): a window's candidates
_shingle_hashes = _HashCache(CACHED_SHINGLES)


@functools.cache
def _lookup(excluding: bool, keys: int) -> Select[int, str]:
    """The lookup of `keys` band keys, built once: the items of other units of the window that
    share a key with the new item (those sharing most first, at most `CANDIDATES`), by id and
    body. Each key is read for its latest `PER_KEY` items only (an index range read backwards,
    which stops there): a key that very many items share is a phrase of the genre, not a sign
    of a copy, and the work of a lookup stays bounded whatever the window holds, where
    counting every item of a common key grew with the window (1.2 ms at 700 items of the
    bench's load, and on with each item filed). A copy shares tens of keys with its original."""
    # The window and the unit are given once (a row of their own), not once a key.
    given = select(
        bindparam("since", type_=SimilarBand.received_at.type).label("since"),
        bindparam("unit_id", type_=SimilarBand.unit_id.type).label("unit_id"),
    ).cte("given")
    arms = []
    for n in range(keys):
        arm = select(SimilarBand.submission_id.label("id")).where(
            SimilarBand.key == bindparam(f"key_{n}"),
            SimilarBand.received_at >= given.c.since,
            SimilarBand.unit_id != given.c.unit_id,
        )
        if excluding:
            arm = arm.where(SimilarBand.submission_id != bindparam("exclude_id"))
        # The bounds written into the statement, not bound: 64 of them are no parameters.
        latest = (
            arm.order_by(SimilarBand.submission_id.desc())
            .limit(literal_column(str(PER_KEY)))
            .offset(literal_column("0"))
            .subquery()
        )
        arms.append(select(latest.c.id))
    sharing = union_all(*arms).subquery()
    hits = func.count().label("hits")
    shared = (
        select(sharing.c.id, hits)
        .group_by(sharing.c.id)
        .order_by(hits.desc(), sharing.c.id)
        .limit(literal_column(str(CANDIDATES)))
        .offset(literal_column("0"))
        .subquery()
    )
    return (
        select(Submission.id, Submission.body)
        .join(shared, shared.c.id == Submission.id)
        .where(Submission.status == "filed")
    )


@functools.lru_cache(maxsize=64)
def _lookup_on(dialect: Dialect, excluding: bool, keys: int) -> DriverStatement:
    """`_lookup` compiled for `dialect`, once."""
    return DriverStatement(_lookup(excluding, keys), dialect)


@functools.lru_cache(maxsize=8)
def _index_on(dialect: Dialect) -> DriverStatement:
    return DriverStatement(insert(_BANDS), dialect)


def index(session: Session, item: Submission, fingerprint: Fingerprint) -> None:
    """Keep the item's band keys, for the items filed after it (the item flushed first: its
    id is in every row). One executemany on the driver: the 64 rows differ by key only."""
    if not fingerprint.keys:
        return
    if item.id is None:
        session.flush()
    insert_bands = _index_on(session.get_bind().dialect)
    shared = {
        "submission_id": item.id,
        "unit_id": item.unit_id,
        "received_at": insert_bands.bind("received_at", item.received_at),
    }
    insert_bands.executemany(
        session, [{**shared, "key": key} for key in sorted(set(fingerprint.keys))]
    )


def prune(session: Session, before: datetime, item_id: int | None = None) -> int:
    """Drop the band keys of items received before `before` (outside every window from now
    on); on PostgreSQL only one transaction at a time does it, the others skip it. Given the
    id of the item being filed, only every `PRUNE_EVERY`th item prunes: a lookup filters on
    the window anyway, so rows a little past it cost nothing but their space."""
    if item_id is not None and item_id % PRUNE_EVERY:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        got = session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _PRUNE_LOCK})
        if not got.scalar_one():
            return 0
    result = session.execute(delete(SimilarBand).where(SimilarBand.received_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def record(session: Session, item: Submission, matches: list[Match], now: datetime) -> None:
    """Keep the pairs found for the item, for its views and `items similar`."""
    if matches:
        if item.id is None:
            session.flush()
        session.execute(
            insert(_PAIRS),
            [
                {
                    "submission_id": item.id,
                    "earlier_id": m.item.id,
                    "similarity": m.similarity,
                    "found_at": now,
                }
                for m in matches
            ],
        )


@dataclass(frozen=True)
class Related:
    """An item recorded as near-identical to another, seen from that other one: `earlier`
    when the related item came first (the one this item resembles), else it came later."""

    item: Submission
    unit_code: str
    unit_name: str
    similarity: float
    earlier: bool


def related(session: Session, item_id: int) -> list[Related]:
    """Every item recorded as near-identical to this one, either way, oldest first."""
    out = []
    pairs = session.scalars(
        select(SimilarItem).where(
            or_(SimilarItem.submission_id == item_id, SimilarItem.earlier_id == item_id)
        )
    ).all()
    for pair in pairs:
        earlier = pair.submission_id == item_id
        other_id = pair.earlier_id if earlier else pair.submission_id
        row = session.execute(
            select(Submission, Unit.code, Unit.name)
            .join(Unit, Submission.unit_id == Unit.id)
            .where(Submission.id == other_id)
        ).one()
        out.append(Related(row[0], row[1], row[2], pair.similarity, earlier))
    out.sort(key=lambda r: (r.item.received_at, r.item.id))
    return out


def related_numbers(session: Session, item_ids: list[int]) -> dict[int, list[str]]:
    """For each of these items, the tracking numbers recorded as near-identical to it."""
    out: dict[int, list[str]] = {}
    later = Submission.__table__.alias("later")
    earlier = Submission.__table__.alias("earlier")
    for start in range(0, len(item_ids), 500):  # bounded IN lists, however long the period
        chunk = item_ids[start : start + 500]
        rows = session.execute(
            select(SimilarItem.submission_id, SimilarItem.earlier_id, later.c.tracking_no,
                   earlier.c.tracking_no)
            .join(later, later.c.id == SimilarItem.submission_id)
            .join(earlier, earlier.c.id == SimilarItem.earlier_id)
            .where(or_(SimilarItem.submission_id.in_(chunk), SimilarItem.earlier_id.in_(chunk)))
        )  # fmt: skip
        wanted = set(chunk)
        for later_id, earlier_id, later_no, earlier_no in rows:
            if later_id in wanted:
                out.setdefault(later_id, []).append(earlier_no)
            if earlier_id in wanted:
                out.setdefault(earlier_id, []).append(later_no)
    return {k: sorted(set(v)) for k, v in out.items()}
