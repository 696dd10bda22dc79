"""Bench 6: cross-unit duplicates (撒网式报送) — what the comparison costs a filed item, and
one lookup on the decade.

- **Filing with and without.** The test set's 110 items (tests/data/similar/) filed one by one
  through the pipeline in this process, on a fresh database with the demo registry, once with
  `[similar] window_days = 30` and once with 0; CPU time per item (`time.process_time`).
- **Lookup on the decade.** The decade (`bench.decade`) holds the band keys of its last window.
  Its bodies are one template sentence, so their keys are random: they stand for distinct
  items. So that each lookup meets as many false candidates as among real items, every item of
  the window also shares a key with each query with probability p, the share of the test set's
  non-duplicate pairs that share a key (measured here, about 0.7 %: same-topic items are in it,
  so this is on the heavy side). Into that window go the test set's 20 items as other units'
  items; each of their 60 rewrites is then looked up (`ledger.similar.find`) as the pipeline
  does when it files one. Time per lookup, and whether it found its original.
"""

from __future__ import annotations

import email.policy
import itertools
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.decade import TablePlan, _table, bulk_insert
from bench.stats import Row
from ingest.pipeline import Arrival
from ledger import similar
from ledger.db import Ledger
from ledger.demo import load_demo
from ledger.models import Intake, Person, SimilarBand, Submission, Unit
from mailroom.app import App, migrate
from mailroom.config import SimilarConfig, parse_config
from parser.similar import Fingerprint
from tests.similar_set import Version, load

WINDOW = timedelta(days=SimilarConfig.window_days)


def false_candidate_rate(versions: list[Version], prints: list[Fingerprint]) -> float:
    """The share of the test set's non-duplicate pairs whose bodies share a band key."""
    others = shared = 0
    for i, j in itertools.combinations(range(len(versions)), 2):
        if versions[i].duplicates(versions[j]):
            continue
        others += 1
        shared += bool(set(prints[i].keys) & set(prints[j].keys))
    return shared / others


# --- the lookup on the decade --------------------------------------------------------------


def _plant(ledger: Ledger, bases: list[Version], units: list[int], at: datetime) -> list[int]:
    """The test set's items, filed as items of these units just before `at`, with their keys."""
    ids = []
    with ledger.transaction() as s:
        for n, (version, unit_id) in enumerate(zip(bases, units, strict=True)):
            received = at - timedelta(hours=len(bases) - n)
            intake = Intake(channel="file", mailbox="daily", received_at=received, state="filed")
            s.add(intake)
            s.flush()
            item = Submission(
                tracking_no=f"SIM-{n + 1:06d}", intake_id=intake.id, unit_id=unit_id,
                mailbox="daily", received_at=received, title=version.title, body=version.body,
                body_chars=len(version.body), status="filed", warnings=[],
            )  # fmt: skip
            s.add(item)
            s.flush()
            similar.index(s, item, Fingerprint.of(version.body))
            ids.append(item.id)
    return ids


def _false_candidates(
    ledger: Ledger, queries: list[Fingerprint], rate: float, rng: random.Random
) -> int:
    """Give every item already in the window one key of each query with probability `rate`."""
    with ledger.reader() as s:
        window = s.execute(
            select(SimilarBand.submission_id, SimilarBand.unit_id, SimilarBand.received_at)
            .where(~SimilarBand.submission_id.in_(select(Submission.id).where(
                Submission.tracking_no.like("SIM-%"))))
            .distinct()
        ).all()  # fmt: skip
    plan = TablePlan.of(_table("similar_bands"), ["key", "submission_id", "unit_id", "received_at"])
    rows = set()
    for item_id, unit_id, received in window:
        for query in queries:
            if rng.random() < rate:
                rows.add((rng.choice(query.keys), item_id, unit_id, received.replace(tzinfo=None)))
    return bulk_insert(ledger.engine, plan, sorted(rows))


def decade_lookup(url: str, runs: int, size: str, kind: str, say: Any) -> tuple[list[Row], Any]:
    """Rows of bench 6 on a generated decade (see the module's docstring)."""
    versions = load()
    bases = [v for v in versions if v.kind == "base"]
    rewrites = [v for v in versions if v.kind in ("edited", "shortened", "relayed")]
    prints = [Fingerprint.of(v.body) for v in versions]
    rate = false_candidate_rate(versions, prints)
    rng = random.Random(6)
    ledger = Ledger.from_url(url)
    try:
        with ledger.reader() as s:
            units = list(s.scalars(select(Unit.id).where(Unit.sequence != "office")))
            newest = s.scalar(select(func.max(Submission.received_at)))
            window_items = s.scalar(select(func.count(func.distinct(SimilarBand.submission_id))))
        assert newest is not None
        at = newest + timedelta(minutes=1)
        asking = rng.choice(units)  # the unit whose items are looked up
        others = [rng.choice([u for u in units if u != asking]) for _ in bases]
        planted = dict(zip((v.topic for v in bases), _plant(ledger, bases, others, at),
                           strict=True))  # fmt: skip
        queries = [Fingerprint.of(v.body) for v in rewrites]
        added = _false_candidates(ledger, queries, rate, rng)
        say(
            f"decade on {kind}: {window_items:,} items in the window, false candidates at "
            f"p = {rate:.4f} ({added:,} keys); {len(queries)} lookups a run"
        )
        per_run: list[float] = []
        fingerprint_ms: list[float] = []
        found = 0
        examined: list[int] = []
        for run in range(runs + 1):  # the first run warms the caches, uncounted
            times = []
            for version, query in zip(rewrites, queries, strict=True):
                with ledger.reader() as s:
                    s.execute(select(1))  # the connection is the pipeline's already
                    clock = time.perf_counter()
                    Fingerprint.of(version.body)
                    made = time.perf_counter()
                    matches = similar.find(
                        s, query, unit_id=asking, received_at=at, window=WINDOW,
                        threshold=SimilarConfig.threshold,
                    )  # fmt: skip
                    done = time.perf_counter()
                    if run == 0:
                        examined.append(_candidates(s, query, at))
                times.append((done - made) * 1000)
                if run == 0:
                    fingerprint_ms.append((made - clock) * 1000)
                    found += planted[version.topic] in {m.item.id for m in matches}
            if run:
                per_run.append(statistics.median(times))
    finally:
        ledger.dispose()
    note = (
        f"median of {len(queries)} lookups a run; {window_items:,} items in the window, "
        f"candidates per lookup {statistics.median(examined):.0f} (max {max(examined)}); "
        f"found its original: {found} of {len(queries)}"
    )
    rows = [
        Row("6", f"similar: lookup of one item, {size} ({kind})", "ms", runs=per_run, note=note),
    ]
    details = {
        "window_items": window_items,
        "false_candidate_rate": rate,
        "false_candidate_keys": added,
        "candidates_median": statistics.median(examined),
        "candidates_max": max(examined),
        "found_original": found,
        "lookups": len(queries),
        "fingerprint_ms_median": statistics.median(fingerprint_ms),
        "lookup_ms_runs": per_run,
    }
    return rows, details


def _candidates(session: Any, query: Fingerprint, at: datetime) -> int:
    """How many items of the window share a key with the query (what the lookup ranks)."""
    return int(
        session.scalar(
            select(func.count(func.distinct(SimilarBand.submission_id))).where(
                SimilarBand.key.in_(query.keys), SimilarBand.received_at >= at - WINDOW
            )
        )
        or 0
    )


# --- filing with and without ------------------------------------------------------------------

RECEIVED = datetime(2026, 6, 2, 1, 0, tzinfo=UTC)


def _mails(officers: list[tuple[str, str, str, str, str]], versions: list[Version]) -> list[bytes]:
    """The test set as the demo registry's officers send it, unit after unit in turn."""
    out = []
    day = RECEIVED.date()
    for n, version in enumerate(versions):
        unit, mark, name, address, phone = officers[n % len(officers)]
        msg = EmailMessage()
        msg["From"] = f"{name} <{address}>"
        msg["To"] = "inf@mailroom.test"
        msg["Subject"] = f"{mark}{version.title}"
        msg["Date"] = "Tue, 02 Jun 2026 09:00:00 +0800"
        msg["Message-ID"] = f"<bench-similar-{n}@{address.partition('@')[2]}>"
        msg.set_content(
            f"{version.title}\n\n{version.body}\n\n作者单位：{unit}人民政府办公室\n姓名：{name}\n"
            f"联系电话：{phone}\n日期：{day.year}年{day.month}月{day.day}日\n",
            charset="utf-8",
        )
        out.append(msg.as_bytes(policy=email.policy.SMTP))
    return out


def _file_all(url: str, root: Path, window_days: int, distinct: bool = False) -> tuple[float, int]:
    """CPU ms per item filing the test set (or only its 50 distinct items: the originals and
    the unrelated ones) on a fresh database; and how many were named."""
    migrate(url)
    config = parse_config(
        {"database": {"url": url}, "similar": {"window_days": window_days}}, root, environ={}
    )
    app = App.open(config)
    try:
        with app.ledger.transaction() as s:
            load_demo(s)
        with app.ledger.reader() as s:
            officers = [
                (unit.name, unit.mark, person.name, person.email, person.phone)
                for person, unit in s.execute(
                    select(Person, Unit)
                    .join(Unit, Person.unit_id == Unit.id)
                    .where(Person.role == "officer", Unit.sequence == "district")
                    .order_by(Unit.id)
                )
            ]
        versions = load()
        if distinct:
            versions = [v for v in versions if v.kind in ("base", "unrelated")]
        mails = _mails(officers, versions)
        spent = 0.0
        named = 0
        for n, raw in enumerate(mails):
            arrival = Arrival("daily", "file", RECEIVED + timedelta(minutes=n))
            clock = time.process_time()
            outcome = app.pipeline.process(raw, arrival)
            spent += time.process_time() - clock
            if outcome.state != "filed":
                raise RuntimeError(f"bench item {n} was {outcome.state}: {outcome.reasons}")
        with app.ledger.reader() as s:
            named = sum(bool(i.details.get("similar_to")) for i in s.scalars(select(Intake)))
        return spent / len(mails) * 1000, named
    finally:
        app.close()


WORKLOADS = {
    False: "the test set's 110 items (60 are copies)",
    True: "its 50 distinct items (no copy)",
}


def run_similar(settings: Any, databases: Any, kinds: list[str]) -> tuple[list[Row], Any]:
    """Bench 6 (filing): CPU time per filed item with the comparison and without, on the test
    set (most items have a copy among the others) and on its distinct items alone (the
    usual case: nothing found, the lookup and the keys are the whole cost)."""
    rows: list[Row] = []
    details: dict[str, Any] = {}
    for kind, distinct in itertools.product(kinds, (True, False)):
        on: list[float] = []
        off: list[float] = []
        named: list[int] = []
        for run in range(settings.runs):
            for window, into in ((0, off), (SimilarConfig.window_days, on)):
                root = settings.work / f"similar-{kind}-{int(distinct)}-{run}-{window}"
                root.mkdir(parents=True)
                url = databases.url(kind, root)
                try:
                    ms, flagged = _file_all(url, root, window, distinct)
                finally:
                    databases.drop(url)
                into.append(ms)
                if window:
                    named.append(flagged)
        what = WORKLOADS[distinct]
        settings.say(
            f"similar on {kind}, {what}: {statistics.median(on):.1f} ms an item with, "
            f"{statistics.median(off):.1f} without"
        )
        rows.append(
            Row(
                "6",
                f"similar: file one item, comparison on, {'distinct' if distinct else 'copies'}"
                f" ({kind})",
                "ms",
                runs=on,
                baseline=off,
                baseline_name="comparison off",
                note=f"CPU time per item, {what} filed in-process",
            )
        )
        details[f"{kind}-{'distinct' if distinct else 'copies'}"] = {
            "on_ms": on, "off_ms": off, "named": named,
        }  # fmt: skip
    return rows, details
