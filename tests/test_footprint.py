"""What `serve` and its filing process hold in memory from the start: no library that only a
summary or a command needs (openpyxl alone is 5 MB in each process that imports it)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

# Every module `serve` loads by the time it listens (the console, the report schedule and
# its early warnings, the filing process's program).
_LOADED_BY_SERVE = """
import sys
import mailroom.service, mailroom.console, mailroom.filer, mailroom.reporting, reports.warnings
import reports.deliver
print(" ".join(sorted(m for m in ("openpyxl",) if m in sys.modules)))
"""


def test_serve_does_not_load_the_workbook_library_until_a_summary_is_sent() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", _LOADED_BY_SERVE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert loaded.stdout.split() == []
