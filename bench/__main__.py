"""`python -m bench`: run every benchmark the landed features allow; print the table; write JSON.

python -m bench                 the full run: 5,000-item bursts, 3 runs, 10,000-message IMAP
python -m bench --quick         small counts, to check the harness (a few minutes)
python -m bench --only smtp     one part: smtp (benches 1, 2, 5), big, imap, decade (4, 6), similar
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.decade import run_decade
from bench.imap import run_imap
from bench.intake import MODES, Settings, run_big, run_intake
from bench.procs import REPO, Databases, workdir_filesystem
from bench.similar import run_similar
from bench.stats import Row, render

# Quick parts first, so a run cut short still has their figures in the JSON.
PARTS = ("big", "imap", "similar", "decade", "smtp")
RESULTS = REPO / "bench" / "results"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small counts to check the harness")
    p.add_argument("--runs", type=int, help="runs per figure (at least 3; default 3)")
    p.add_argument("--count", type=int, help="items per SMTP burst (default 5,000)")
    p.add_argument("--imap-count", type=int, help="messages in the IMAP backlog (default 10,000)")
    p.add_argument("--decade-scale", type=float, help="1.0 = 2,000,000 items (default)")
    p.add_argument("--only", action="append", choices=PARTS, help="run only this part")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument(
        "--mode",
        action="append",
        choices=sorted(MODES),
        help="SMTP client modes to run (default all; reuse8 always runs)",
    )
    p.add_argument("--profile", action="store_true", help="py-spy profile of mailroom serve")
    p.add_argument("--out", type=Path, help="JSON results (default bench/results/latest.json)")
    p.add_argument("--workdir", type=Path, help="scratch directory (default: a new temp dir)")
    p.add_argument("--time-limit", type=float, default=900.0, help="seconds per run, at most")
    p.add_argument(
        "--update-readme", action="store_true", help="put the table in README.md's Performance"
    )
    args = p.parse_args(argv)
    if args.runs is not None and args.runs < 3:
        p.error("--runs must be at least 3: every figure is a median of at least three runs")
    return args


def _machine(work: Path) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
        "workdir_filesystem": workdir_filesystem(work),
    }


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    quick = args.quick
    parts = args.only or list(PARTS)
    count = args.count or (300 if quick else 5_000)
    runs = args.runs or 3
    imap_count = args.imap_count or (500 if quick else 10_000)
    scale = args.decade_scale or (0.002 if quick else 1.0)
    out = args.out or (RESULTS / ("quick.json" if quick else "latest.json"))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mailroom-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    settings = Settings(
        count=count,
        runs=runs,
        work=work,
        time_limit=args.time_limit,
        big_bytes=25_000_000,
        profile=RESULTS / "profiles" if args.profile else None,
        modes=tuple(args.mode or MODES),
    )
    started = time.monotonic()
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    machine = _machine(work)
    settings.say(f"scratch in {work} ({machine['workdir_filesystem']}); parts: {', '.join(parts)}")
    rows: list[Row] = []
    details: dict[str, Any] = {}
    databases = Databases(work)
    kinds = ["sqlite"] if args.no_postgres else ["sqlite", "postgresql"]
    benches: dict[str, tuple[str, Callable[[], tuple[list[Row], Any]]]] = {
        "smtp": ("1", lambda: run_intake(settings, databases, postgres=not args.no_postgres)),
        "big": ("5", lambda: run_big(settings, databases)),
        "imap": ("3", lambda: run_imap(settings, databases, imap_count)),
        "decade": ("4", lambda: run_decade(settings, databases, scale, kinds)),
        "similar": ("6", lambda: run_similar(settings, databases, kinds)),
    }
    failed = 0

    def results(done: list[Row]) -> dict[str, Any]:
        return {
            "started": stamp,
            "duration_s": round(time.monotonic() - started, 1),
            "settings": {
                "quick": quick,
                "runs": runs,
                "smtp_count": count,
                "imap_count": imap_count,
                "decade_scale": scale,
                "parts": parts,
                "postgres": not args.no_postgres,
                "modes": list(settings.modes),
            },
            "machine": machine,
            "table": render(sorted(done, key=lambda r: r.bench)),
            "rows": [r.as_json() for r in sorted(done, key=lambda r: r.bench)],
            "log": settings.log,
            "details": details,
        }

    settings.checkpoint = lambda part_rows, part_details: write_results(
        out, results(rows + part_rows) | {"partial": part_details}
    )
    try:
        for part in parts:
            number, bench = benches[part]
            try:
                part_rows, details[part] = bench()
            except Exception as exc:  # one failed part must not lose the others' figures
                failed += 1
                reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                settings.say(f"{part} failed: {reason}")
                part_rows = [Row(number, f"{part} benchmarks", "", skipped=f"FAILED {reason}")]
            rows += part_rows
            write_results(out, results(rows))  # partial results survive a run cut short
    finally:
        databases.close()
    rows.sort(key=lambda r: r.bench)
    duration = time.monotonic() - started
    table = render(rows)
    print()
    print(table)
    print(f"\n{len(rows)} rows in {duration / 60:.1f} min; results in {out}")
    machine["load_average_end"] = os.getloadavg()
    write_results(out, results(rows))
    if args.update_readme:
        update_readme(REPO / "README.md", table, stamp, duration, machine)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def write_results(out: Path, data: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _terminate(_signum: int, _frame: object) -> None:
    # SIGTERM unwinds like an exception, so every server this run started is stopped.
    sys.exit(143)


BEGIN, END = "<!-- bench:table -->", "<!-- /bench:table -->"


def update_readme(
    readme: Path, table: str, stamp: str, duration: float, machine: dict[str, Any]
) -> None:
    """Replace the table between the README's bench markers with this run's."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"bench: {readme.name} has no {BEGIN} … {END} block")
    load = ", ".join(f"{x:.1f}" for x in machine["load_average"])
    block = (
        f"{BEGIN}\n"
        f"Run of {stamp[:10]}, {duration / 60:.0f} min, {machine['cores']} cores, "
        f"load average at start {load} (`bench/results/latest.json` has every run):\n\n"
        f"{table}\n"
    )
    readme.write_text(text[:start] + block + text[end:], encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
