"""Benches 1, 2 and 5: SMTP acceptance, filing, and memory, each against the bare sink.

Each run pairs a baseline run and a Mailroom run back to back with the same client load, so a
ratio compares two measurements taken under the same machine noise. Every Mailroom run starts
a fresh `mailroom serve` on a fresh database with the demo registry.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.procs import (
    Client,
    Databases,
    Sink,
    each_kib,
    mailroom,
    proc_kib,
    run_client,
    serve_pid,
    tree_kib,
)
from bench.stats import Row, Target, percentile
from bench.workload import Letter, big_item, make_workload, write_workload
from ledger.db import Ledger
from ledger.models import Intake, OutboundMessage
from tests.service import MailroomInstance

MODES = {
    "reuse1": "(a) 1 connection reused",
    "reuse8": "(b) 8 connections reused",
    "new8": "(c) 8 senders, new connection each",
}
TARGET_RATIO = {"reuse8": 0.60, "new8": 0.50}


@dataclass
class Settings:
    count: int
    runs: int
    work: Path
    time_limit: float
    big_bytes: int = 25_000_000
    profile: Path | None = None
    modes: tuple[str, ...] = tuple(MODES)
    log: list[str] = field(default_factory=list)

    started: float = field(default_factory=time.monotonic)
    checkpoint: Callable[[list[Row], dict[str, Any]], None] | None = None

    def say(self, text: str) -> None:
        line = f"[{(time.monotonic() - self.started) / 60:5.1f} min] {text}"
        print(f"bench: {line}", flush=True)
        self.log.append(line)


@dataclass
class LoadRun:
    """One client load against one server, and what the server did with it."""

    client: dict[str, Any]
    hwm_kib: int
    idle_kib: int = 0
    hwm_each_kib: list[int] = field(default_factory=list)  # serve, then its children
    filed_s: float | None = None
    states: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return float(self.client["accepted"]) / float(self.client["wall"])

    @property
    def filed_rate(self) -> float:
        assert self.filed_s is not None
        return float(self.client["total"]) / self.filed_s

    def p(self, q: float) -> float:
        return percentile(self.client["latencies_ms"], q)

    def summary(self) -> dict[str, Any]:
        lat = self.client["latencies_ms"]
        return {
            "accepted": self.client["accepted"],
            "wall_s": self.client["wall"],
            "msgs_per_s": self.rate,
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "max_ms": max(lat),
            "peak_rss_kib": self.hwm_kib,
            "peak_rss_each_kib": self.hwm_each_kib,
            "idle_rss_kib": self.idle_kib,
            "filed_s": self.filed_s,
            "states": self.states,
            "outbox": self.outbox,
        }


class Workloads:
    """Workload files, rebuilt every few minutes so `Date:` stays within the clock-skew check."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.built: dict[str, float] = {}

    def _fresh(self, name: str, make: Any) -> Path:
        path = self.settings.work / f"{name}.bin"
        if time.monotonic() - self.built.get(name, -1e9) > 300:
            letters: list[Letter] = make()
            write_workload(letters, path)
            self.built[name] = time.monotonic()
        return path

    def burst(self) -> Path:
        return self._fresh("burst", lambda: make_workload(self.settings.count))

    def big(self) -> Path:
        return self._fresh("big", lambda: [big_item(self.settings.big_bytes)])


def sink_run(settings: Settings, mode: str, workload: Path) -> LoadRun:
    with Sink(settings.work / "sink.log") as sink:
        client = run_client(sink.port, mode, workload, settings.time_limit)
        return LoadRun(client, hwm_kib=proc_kib(sink.pid, "VmHWM"))


def _counts(ledger: Ledger) -> tuple[int, dict[str, int], dict[str, int]]:
    with ledger.reader() as session:
        states = {
            state: n
            for state, n in session.execute(
                select(Intake.state, func.count()).group_by(Intake.state)
            )
        }
        outbox = {
            kind: n
            for kind, n in session.execute(
                select(OutboundMessage.kind, func.count()).group_by(OutboundMessage.kind)
            )
        }
    return sum(states.values()), states, outbox


def mailroom_run(
    settings: Settings,
    databases: Databases,
    kind: str,
    mode: str,
    workload: Path,
    *,
    wait_filed: bool,
    tag: str,
    profile_to: Path | None = None,
    serve_args: tuple[str, ...] = (),
) -> LoadRun:
    """One load against `mailroom serve`; with `wait_filed`, also the time until all are filed.

    Filed means every message has its intake row in a final state, committed in the same
    transaction as its receipt (and, once the desk lands, its desk forwards).
    """
    root = settings.work / f"{tag}-{time.monotonic_ns()}"
    with mailroom(databases, root, kind, serve_args=serve_args) as instance:
        pid = serve_pid(instance)
        idle = tree_kib(pid, "VmRSS")
        spy = _start_profile(pid, profile_to) if profile_to else None
        client = Client(instance.port, mode, workload, settings.time_limit)
        try:
            return _measure(
                settings, instance, client, pid, idle, workload, wait_filed, tag, spy, profile_to
            )
        finally:
            for proc in (client.proc, spy):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _measure(
    settings: Settings,
    instance: MailroomInstance,
    client: Client,
    pid: int,
    idle: int,
    workload: Path,
    wait_filed: bool,
    tag: str,
    spy: subprocess.Popen[bytes] | None,
    profile_to: Path | None,
) -> LoadRun:
    """Wait (bounded) for the client and, with `wait_filed`, for every message to be filed."""
    filed_at: float | None = None
    states: dict[str, int] = {}
    outbox: dict[str, int] = {}
    if wait_filed:
        ledger = Ledger.from_url(instance.db_url)
        try:
            total = sum(1 for _ in _letters_in(workload))
            deadline = time.monotonic() + settings.time_limit
            while time.monotonic() < deadline:
                done, states, outbox = _counts(ledger)
                if done >= total:
                    filed_at = time.monotonic()
                    break
                if client.proc.poll() not in (None, 0):
                    break  # the client failed; result() says why
                time.sleep(0.2)
        finally:
            ledger.dispose()
    result = client.result()
    if wait_filed and filed_at is None:
        raise RuntimeError(f"{tag}: not all messages were filed in {settings.time_limit} s")
    if spy is not None and profile_to is not None:
        _stop_profile(spy, profile_to, settings)
    each = each_kib(pid, "VmHWM")
    run = LoadRun(
        result, hwm_kib=sum(each), idle_kib=idle, states=states, outbox=outbox, hwm_each_kib=each
    )
    if filed_at is not None:
        run.filed_s = filed_at - float(result["started"])
        if set(states) != {"filed"}:
            settings.say(f"warning: {tag} ended in states {states} (expected all filed)")
    return run


def _letters_in(workload: Path) -> Any:
    from bench.workload import read_workload

    return read_workload(workload)


def _start_profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    from bench.profile import py_spy

    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [py_spy(), "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop_profile(spy: subprocess.Popen[bytes], out: Path, settings: Settings) -> None:
    from bench.profile import top_frames

    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()
    if out.exists():
        settings.say(f"profile of mailroom serve written to {out}")
        for line in top_frames(out, 15):
            settings.say("  " + line)


def run_intake(
    settings: Settings, databases: Databases, *, postgres: bool
) -> tuple[list[Row], dict[str, Any]]:
    """Benches 1, 2 and 5 (burst part): the table rows, and each run's figures."""
    loads = Workloads(settings)
    # (b) always runs: filing and memory are measured on it.
    modes = [m for m in MODES if m in settings.modes or m == "reuse8"]
    sink: dict[str, list[LoadRun]] = {m: [] for m in modes}
    mr: dict[str, list[LoadRun]] = {m: [] for m in modes}
    pg: list[LoadRun] = []
    spool_only: list[LoadRun] = []
    pg_failures: list[str] = []
    for i in range(settings.runs):
        for mode in modes:
            workload = loads.burst()
            settings.say(f"run {i + 1}/{settings.runs} {mode}: bare sink")
            sink[mode].append(sink_run(settings, mode, workload))
            settings.say(f"run {i + 1}/{settings.runs} {mode}: mailroom serve (SQLite)")
            profile = (
                settings.profile / "serve-sqlite-reuse8.raw"
                if settings.profile and i == 0 and mode == "reuse8"
                else None
            )
            mr[mode].append(
                mailroom_run(
                    settings,
                    databases,
                    "sqlite",
                    mode,
                    workload,
                    wait_filed=mode == "reuse8",
                    tag=f"sqlite-{mode}",
                    profile_to=profile,
                )
            )
        settings.say(f"run {i + 1}/{settings.runs} reuse8: mailroom serve --no-process")
        spool_only.append(
            mailroom_run(
                settings,
                databases,
                "sqlite",
                "reuse8",
                loads.burst(),
                wait_filed=False,
                tag="spool-reuse8",
                serve_args=("--no-process",),
            )
        )
        if postgres:
            settings.say(f"run {i + 1}/{settings.runs} reuse8: mailroom serve (PostgreSQL)")
            try:
                pg.append(
                    mailroom_run(
                        settings,
                        databases,
                        "postgresql",
                        "reuse8",
                        loads.burst(),
                        wait_filed=True,
                        tag="pg-reuse8",
                    )
                )
            except RuntimeError as exc:  # keep the SQLite figures; the row shows fewer runs
                pg_failures.append(str(exc))
                settings.say(f"PostgreSQL run {i + 1} failed: {exc}")
        settings.say(_progress(sink, mr, pg))
        if settings.checkpoint is not None:
            settings.checkpoint(
                *_intake_result(settings, sink, mr, pg, spool_only, pg_failures, postgres)
            )
    settings.say(
        "median idle RSS of mailroom serve: "
        f"{statistics.median(r.idle_kib for r in mr['reuse8']) / 1024:.1f} MB"
    )
    return _intake_result(settings, sink, mr, pg, spool_only, pg_failures, postgres)


def _intake_result(
    settings: Settings,
    sink: dict[str, list[LoadRun]],
    mr: dict[str, list[LoadRun]],
    pg: list[LoadRun],
    spool_only: list[LoadRun],
    pg_failures: list[str],
    postgres: bool,
) -> tuple[list[Row], dict[str, Any]]:
    modes = list(mr)
    details = {
        "sink": {m: [r.summary() for r in runs] for m, runs in sink.items()},
        "sqlite": {m: [r.summary() for r in runs] for m, runs in mr.items()},
        "postgresql": {"reuse8": [r.summary() for r in pg]},
        "spool_only": {"reuse8": [r.summary() for r in spool_only]},
        "postgresql_failures": pg_failures,
    }
    rows = _intake_rows(settings, sink, mr, pg, postgres)
    n = f"{settings.count:,}"
    rows.insert(
        3 * len(modes),
        Row(
            "1",
            f"accept {n}, (b), serve --no-process (spool only)",
            "msgs/s",
            runs=[r.rate for r in spool_only],
            baseline=[r.rate for r in sink["reuse8"]],
            baseline_name="sink",
            note="the durable spool alone, without the filing worker in the same process",
        ),
    )
    rows.insert(
        3 * len(modes) + 1,
        Row(
            "1",
            "  spool only: end of DATA → 250, p99",
            "ms",
            runs=[r.p(99) for r in spool_only],
            baseline=[r.p(99) for r in sink["reuse8"]],
            baseline_name="sink",
        ),
    )
    return rows, details


def _progress(
    sink: dict[str, list[LoadRun]], mr: dict[str, list[LoadRun]], pg: list[LoadRun]
) -> str:
    parts = [f"{mode} {mr[mode][-1].rate:.0f}/{sink[mode][-1].rate:.0f} msgs/s" for mode in mr]
    if pg:
        parts.append(f"pg filed in {pg[-1].filed_s:.1f} s")
    return "; ".join(parts)


def _intake_rows(
    settings: Settings,
    sink: dict[str, list[LoadRun]],
    mr: dict[str, list[LoadRun]],
    pg: list[LoadRun],
    postgres: bool,
) -> list[Row]:
    n = f"{settings.count:,}"
    rows: list[Row] = []
    for mode in mr:
        label = MODES[mode]
        ratio = TARGET_RATIO.get(mode)
        rows.append(
            Row(
                "1",
                f"accept {n}, {label}",
                "msgs/s",
                runs=[r.rate for r in mr[mode]],
                baseline=[r.rate for r in sink[mode]],
                baseline_name="sink",
                target=Target(">=", ratio, "ratio") if ratio else None,
            )
        )
        for q in (50, 99):
            rows.append(
                Row(
                    "1",
                    f"  {mode}: end of DATA → 250, p{q}",
                    "ms",
                    runs=[r.p(q) for r in mr[mode]],
                    baseline=[r.p(q) for r in sink[mode]],
                    baseline_name="sink",
                    target=Target("<=", 25) if mode == "reuse8" and q == 99 else None,
                )
            )
    base_b = [r.rate for r in sink["reuse8"]]
    rows.append(
        Row(
            "2",
            f"file {n} (SQLite), sustained",
            "msgs/s",
            runs=[r.filed_rate for r in mr["reuse8"]],
            baseline=base_b,
            baseline_name="sink (b)",
            target=Target(">=", 0.30, "ratio"),
            note="from the first message sent to the last intake row committed",
        )
    )
    rows.append(
        Row(
            "2",
            "  time until all filed (SQLite)",
            "s",
            runs=[r.filed_s or 0.0 for r in mr["reuse8"]],
        )
    )
    if postgres:
        rows.append(
            Row(
                "2",
                f"file {n} (PostgreSQL), sustained",
                "msgs/s",
                runs=[r.filed_rate for r in pg],
                baseline=base_b,
                baseline_name="sink (b)",
                target=Target(">=", 0.30, "ratio"),
            )
        )
        rows.append(
            Row("2", "  time until all filed (PostgreSQL)", "s", runs=[r.filed_s or 0 for r in pg])
        )
        rows.append(
            Row(
                "1",
                f"accept {n}, (b) on PostgreSQL",
                "msgs/s",
                runs=[r.rate for r in pg],
                baseline=base_b,
                baseline_name="sink",
                target=Target(">=", 0.60, "ratio"),
            )
        )
    else:
        rows.append(Row("2", f"file {n} (PostgreSQL)", "", skipped="--no-postgres"))
    for name, runs in (("SQLite", mr["reuse8"]), ("PostgreSQL", pg)):
        if not runs:
            continue
        rows.append(
            Row(
                "5",
                f"peak RSS, {n} burst (b) until filed ({name})",
                "MB",
                runs=[r.hwm_kib / 1024 for r in runs],
                baseline=[r.hwm_kib / 1024 for r in sink["reuse8"]],
                baseline_name="sink",
                target=Target("<=", 150),
                note="VmHWM of serve + its filing process, summed (MiB)",
            )
        )
    return rows


def run_big(settings: Settings, databases: Databases) -> tuple[list[Row], list[dict[str, Any]]]:
    """Bench 5 (large message): peak RSS while taking one 25 MB item and filing it."""
    loads = Workloads(settings)
    sink_hwm: list[float] = []
    mr_hwm: list[float] = []
    spool_hwm: list[float] = []
    details: list[dict[str, Any]] = []
    for i in range(settings.runs):
        workload = loads.big()
        settings.say(f"run {i + 1}/{settings.runs} one {settings.big_bytes:,}-byte item")
        base = sink_run(settings, "reuse1", workload)
        run = mailroom_run(
            settings, databases, "sqlite", "reuse1", workload, wait_filed=True, tag="big"
        )
        spool = mailroom_run(
            settings,
            databases,
            "sqlite",
            "reuse1",
            workload,
            wait_filed=False,
            tag="big-spool",
            serve_args=("--no-process",),
        )
        sink_hwm.append(base.hwm_kib / 1024)
        mr_hwm.append(run.hwm_kib / 1024)
        spool_hwm.append(spool.hwm_kib / 1024)
        details.append(
            {"sink": base.summary(), "mailroom": run.summary(), "spool_only": spool.summary()}
        )
    size = workload.stat().st_size
    row = Row(
        "5",
        f"peak RSS, one {size / 1e6:.0f} MB item until filed",
        "MB",
        runs=mr_hwm,
        baseline=sink_hwm,
        baseline_name="sink",
        target=Target("<=", 150),
        note="VmHWM of mailroom serve and its filing process, summed (MiB), SQLite",
    )
    spool_row = Row(
        "5",
        "  same item, serve --no-process (spool only)",
        "MB",
        runs=spool_hwm,
        baseline=sink_hwm,
        baseline_name="sink",
        note="what taking the message costs before any filing",
    )
    return [row, spool_row], details
