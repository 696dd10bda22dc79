"""The CLI: JSON field names of SPEC §7.1, and user mistakes as one line without a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailroom.cli import main, shorten
from tests.conftest import DATA, REPO

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock


@pytest.fixture
def office(tmp_path: Path, db_url: str) -> Path:
    config = tmp_path / "mailroom.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    assert main(["--config", str(config), "init", "--demo"]) == 0
    return config


def run(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, expected: str) -> None:
    assert code != 0
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert expected in err


def test_json_field_names(office: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, out, _ = run(office, capsys, "ingest", "--no-send", str(REPO / "examples/valid.eml"))
    assert code == 0 and "filed GZ-" in out
    _, out, _ = run(office, capsys, "intake", "list", "--json")
    intake = json.loads(out)[0]
    assert {"message_id", "mailbox", "received_at", "state", "reasons", "tracking_no"} <= set(
        intake
    )
    _, out, _ = run(office, capsys, "items", "list", "--json")
    item = json.loads(out)[0]
    assert {
        "tracking_no", "unit_code", "title", "status", "mailbox", "received_at", "period",
        "body_chars", "attachment_chars", "points", "adoptions",
    } <= set(item)  # fmt: skip
    _, out, _ = run(office, capsys, "items", "show", item["tracking_no"], "--json")
    assert json.loads(out)["signoff"]["author"] == "李明"
    _, out, _ = run(office, capsys, "outbox", "--json")
    assert [o for o in json.loads(out) if o["kind"] == "receipt"] == [
        {
            "id": 1,
            "to": "liming@th.gz.test",
            "subject": f"回执：{item['tracking_no']} {item['title']}",
            "kind": "receipt",
            "state": "queued",
            "attempts": 0,
            "created_at": json.loads(out)[0]["created_at"],
            "sent_at": None,
            "last_error": None,
            "bounced_at": None,
        }
    ]
    _, out, _ = run(office, capsys, "items", "list", "--period", "2026Q1", "--json")
    assert json.loads(out) == []


def test_registry_import_with_two_bad_rows_names_both_and_imports_nothing(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mailroom.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    assert main(["--config", str(config), "init"]) == 0
    capsys.readouterr()
    code, _, err = run(config, capsys, "registry", "import", str(DATA / "registry/bad_units.csv"))
    assert_one_line_error(code, err, "line 3")
    assert "line 5" in err
    export = tmp_path / "units.csv"
    assert run(config, capsys, "registry", "export", str(export), "--table", "units")[0] == 0
    assert export.read_text(encoding="utf-8-sig").strip().count("\n") == 0  # header only


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["items", "show", "GZ-2026-999999"], "no item with tracking number GZ-2026-999999"),
        (["items", "list", "--period", "2026Q9"], "quarter must be 1 to 4"),
        (["items", "list", "--period", "last year"], "is not a period"),
        (["ingest", "/nonexistent/item.eml"], "cannot read /nonexistent/item.eml"),
        (["ingest", "--received-at", "yesterday", "x.eml"], "is not an ISO 8601 time"),
        (["registry", "import", "/nonexistent.csv"], "nonexistent.csv: cannot read"),
        (["registry", "export", "out.txt"], "out.txt"),
    ],
)
def test_user_mistakes_are_one_line(
    office: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    capsys.readouterr()
    code, _, err = run(office, capsys, *args)
    assert_one_line_error(code, err, expected)


def test_bad_config_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mailroom.toml"
    config.write_text('[smtp]\nlisten = "127.0.0.1"\n', encoding="utf-8")
    code, _, err = run(config, capsys, "intake", "list")
    assert_one_line_error(code, err, "[smtp] listen")


def test_database_not_initialised_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mailroom.toml"
    config.write_text("", encoding="utf-8")
    code, _, err = run(config, capsys, "items", "list")
    assert_one_line_error(code, err, "mailroom init")


def test_a_command_where_there_is_no_database_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no mailroom.toml here: the embedded default, var/mailroom.db
    monkeypatch.delenv("MAILROOM_CONFIG", raising=False)
    monkeypatch.delenv("MAILROOM_DATABASE_URL", raising=False)
    valid = str(REPO / "examples/valid.eml")
    for args in (
        ["items", "list"], ["intake", "list"], ["standings"], ["outbox"], ["serve"],
        ["ingest", valid],
    ):  # fmt: skip
        code = main(args)
        _, err = capsys.readouterr()
        assert_one_line_error(code, err, f"no database at {tmp_path / 'var' / 'mailroom.db'}")
        assert "mailroom init" in err
    assert list(tmp_path.iterdir()) == []  # not even var/


def test_init_says_in_words_what_the_demo_registry_loaded(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mailroom.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    code, out, _ = run(config, capsys, "init", "--demo")
    assert code == 0
    assert "demo registry loaded: 30 units added, 90 people added\n" in out
    assert "ImportSummary" not in out
    _, out, _ = run(config, capsys, "init", "--demo")
    assert "demo registry loaded: 120 rows unchanged\n" in out
    code, out, _ = run(config, capsys, "registry", "import", str(REPO / "ledger/demo/units.csv"))
    assert (code, out) == (0, "imported: 30 rows unchanged\n")


def test_output_to_a_reader_that_went_away_ends_quietly(office: Path) -> None:
    """`mailroom standings | head -3`: no BrokenPipeError traceback when head stops reading."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: every write fails
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mailroom.cli", "--config", str(office), "standings"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141  # as a process ended by SIGPIPE, like `cat`


@pytest.mark.parametrize(
    ("text", "columns", "shown"),
    [
        ("短标题", 40, "短标题"),
        ("天河区多措并举推进放管服改革取得新成效", 20, "天河区多措并举推进…"),
        ("Re: the quarterly report of Tianhe district", 24, "Re: the quarterly…"),
        ("回执：GZ-2027-000001 天河区多措并举", 20, "回执：GZ-2027-00000…"),
    ],
)
def test_long_texts_in_tables_are_cut_with_an_ellipsis(text: str, columns: int, shown: str) -> None:
    assert shorten(text, columns) == shown


def test_the_outbox_table_cuts_long_subjects_with_an_ellipsis(
    office: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(office, capsys, "ingest", "--no-send", str(REPO / "examples/valid.eml"))
    _, out, _ = run(office, capsys, "outbox")
    receipt = next(line for line in out.splitlines() if " receipt " in line)
    assert receipt.endswith("…"), receipt
    assert "天河区多措并举推进“放管服”改革取得新成效" not in receipt
