"""Every parsing step is linear in what a sender controls, or capped by size (SPEC §10): each
hostile shape of `tests/linearity.py`, ten times larger, costs at most about ten times more.

Each case runs in a process of its own under a time limit (a case gone quadratic again fails
instead of hanging the suite) and is timed in user CPU seconds, the best of five runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.linearity import CASES, RATIO

SLACK = 0.03  # seconds: below this much, a ratio is noise


@pytest.mark.parametrize("name", sorted(CASES))
def test_ten_times_the_input_costs_about_ten_times_the_time(name: str) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.linearity", name],
            capture_output=True,
            text=True,
            timeout=90,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: not done in 90 s (at ten times the input)")
    assert done.returncode == 0, done.stderr[-3000:]
    timing = json.loads(done.stdout)
    assert timing["large"] <= RATIO * timing["small"] + SLACK, (name, timing)
