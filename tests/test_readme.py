"""The README's "Try it", run as written, on whatever date the test runs: what it promises is
what a newcomer sees.

Command 1 (`scripts/run-demo`) is run as its last lines say (after the set-up, which the test
command has already done); the commands of the "Try it" block then run one by one in the same
folder with `bash`, as a person would paste them. Only the port differs: a `mailroom.toml`
there moves SMTP off 8025, so a demo running on this machine is not disturbed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ledger.calendar import quarter_of
from ledger.rulebook import load_rulebook
from tests.conftest import REPO
from tests.pgcluster import free_port
from tests.service import wait_for

README = (REPO / "README.md").read_text(encoding="utf-8")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def try_it_commands() -> list[str]:
    block = re.search(r"<!-- try-it -->\s*```sh\n(.*?)```\s*<!-- /try-it -->", README, re.S)
    assert block, "README.md has no <!-- try-it --> block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def run_demo_commands() -> list[str]:
    lines = (REPO / "scripts" / "run-demo").read_text(encoding="utf-8").splitlines()
    commands = [line.removeprefix("exec ") for line in lines if ".venv/bin/mailroom" in line]
    assert commands == [".venv/bin/mailroom init --demo", ".venv/bin/mailroom serve"], commands
    return commands


def shell(folder: Path, command: str) -> str:
    result = subprocess.run(
        ["bash", "-c", command], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
@pytest.mark.wall_clock
def test_the_try_it_steps_give_what_the_readme_says(tmp_path: Path) -> None:
    folder = tmp_path / "checkout"
    folder.mkdir()
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (folder / "examples").symlink_to(REPO / "examples")
    (folder / "mailroom.toml").write_text(f'[smtp]\nlisten = "127.0.0.1:{free_port()}"\n')
    init, serve = run_demo_commands()
    assert "demo registry loaded: 30 units added, 90 people added" in shell(folder, init)
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen(
            ["bash", "-c", f"exec {serve}"], cwd=folder, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for(
            lambda: "listening on" in (tmp_path / "serve.log").read_text(errors="replace"),
            what="mailroom serve",
        )
        send, items, intake, outbox, listing = try_it_commands()
        assert send == ".venv/bin/mailroom send-examples examples/valid.eml examples/malformed.eml"
        out = shell(folder, send)
        assert out.count("sent examples/") == 2, out

        def all_answered() -> list[dict[str, object]] | None:
            # A message waits in the spool before its intake row exists: ask for both rows.
            sent = shell(folder, outbox).count(" sent ")
            rows = json.loads(shell(folder, f"{intake} --json"))
            answered = len(rows) == 2 and all(r["state"] != "received" for r in rows)
            return rows if sent == 5 and answered else None

        rows = wait_for(all_answered, what="both examples judged and every reply sent")
        # "GZ-<assessment year>-000001": the year that the moment of receipt counts in.
        received = datetime.fromisoformat(str(rows[0]["received_at"]))
        calendar = load_rulebook("guangzhou-2004", REPO).calendar
        tracking = f"GZ-{quarter_of(received, SHANGHAI, calendar).year}-000001"
        assert tracking in shell(folder, items)
        # "filed with no warning; rejected with four reason codes"
        assert [(r["state"], r["reasons"], r["tracking_no"]) for r in rows] == [
            ("filed", [], tracking),
            ("rejected", ["missing_mark", "body_too_long", "missing_phone", "bad_date"], None),
        ]
        assert "rejected with four reason codes" in README
        for code in ("missing_mark", "body_too_long", "missing_phone", "bad_date"):
            assert f"`{code}`" in README
        # "five mails, sent: the receipt, the refusal, and a forward to each of the three …"
        kinds = [line.split()[1] for line in shell(folder, outbox).splitlines()[1:]]
        assert sorted(kinds) == ["desk", "desk", "desk", "receipt", "refusal"]
        assert "five mails, sent" in README and "three demo editors" in README
        assert len(shell(folder, listing).split()) == 5
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert os.path.exists(folder / "var" / "mailroom.db")
