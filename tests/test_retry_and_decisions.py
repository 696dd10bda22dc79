"""`mailroom intake retry` re-runs a quarantined message once; `mailroom items decisions` is
the office's 退文台账 of 不采用 and 退回 (issue 19, items 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ingest.door import retry
from ingest.pipeline import Arrival
from ledger.editors import set_passphrase
from ledger.models import Intake, Submission
from mailroom.app import App
from mailroom.cli import main
from parser.errors import UserError
from tests.conftest import REPO
from tests.test_desk import RECEIVED, _new_message, make_app, to_desk

VALID = (REPO / "examples" / "valid.eml").read_bytes()


@pytest.fixture
def office(db_url: str, tmp_path: Path) -> Iterator[App]:
    app = make_app(db_url, tmp_path, reply_key_secret="retry-tests-reply-key-secret")
    try:
        yield app
    finally:
        app.close()


def test_a_quarantined_message_is_re_run_once_in_its_proper_state(office: App) -> None:
    # A valid item set aside by a fault (since fixed): its bytes are kept.
    arrival = Arrival("daily", "smtp", RECEIVED, spool_id="spool-1")
    set_aside = office.pipeline.quarantine(VALID, arrival, "processing_error", "a fixed bug")
    assert set_aside.state == "quarantined"

    first = retry(office.pipeline, set_aside.intake_id)
    assert (first.outcome.state, first.again) == ("filed", False)
    assert first.outcome.tracking_no == "GZ-2026-000001"  # numbered for when it arrived
    second = retry(office.pipeline, set_aside.intake_id)
    assert (second.outcome.intake_id, second.again) == (first.outcome.intake_id, True)
    with office.ledger.reader() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 1
        original = s.get(Intake, set_aside.intake_id)
        assert original is not None
        assert (original.state, original.details["retried_as"]) == (
            "retried",
            first.outcome.intake_id,
        )
        again = s.get(Intake, first.outcome.intake_id)
        assert again is not None and again.received_at == RECEIVED and again.channel == "retry"
    # A filed message is not retried.
    with pytest.raises(UserError, match="is filed, not quarantined"):
        retry(office.pipeline, first.outcome.intake_id)


def test_intake_retry_from_the_command_line(
    office: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arrival = Arrival("daily", "smtp", RECEIVED, spool_id="spool-2")
    set_aside = office.pipeline.quarantine(VALID, arrival, "too_slow", "took too long")
    config = tmp_path / "mailroom.toml"
    config.write_text(
        f'[database]\nurl = "{office.config.database.url}"\n'
        '[security]\nreply_key_secret = "retry-tests-reply-key-secret"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "intake", "retry", str(set_aside.intake_id),
                 "--no-send", "--json"]) == 0  # fmt: skip
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["state"], row["tracking_no"], row["again"]) == ("filed", "GZ-2026-000001", False)
    assert main(["--config", str(config), "intake", "retry", "999999"]) != 0
    assert "no intake message 999999" in capsys.readouterr().err


def test_items_decisions_lists_declines_and_returns_with_reason_editor_and_time(
    office: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for raw in (VALID, (REPO / "tests/data/desk/item_yuexiu_gbk.eml").read_bytes()):
        assert office.pipeline.process(raw, Arrival("daily", "file", RECEIVED)).state == "filed"
    with office.ledger.transaction() as s:
        set_passphrase(s, "chenjing@gzb.gz.test", "编辑部 2026 口令", datetime.now(UTC))
    body = (
        "Approved: 编辑部 2026 口令\n"
        "GZ-2026-000001 不采用 与前期重复\n"
        "GZ-2026-000002 退回 请补充数据\n"
    )
    outcome = to_desk(office, _new_message("陈静 <chenjing@gzb.gz.test>", body))
    assert outcome.state == "command", outcome
    config = tmp_path / "mailroom.toml"
    config.write_text(
        f'[database]\nurl = "{office.config.database.url}"\n'
        '[security]\nreply_key_secret = "retry-tests-reply-key-secret"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "items", "decisions", "--period", "2026Q4",
                 "--json"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert [
        (r["tracking_no"], r["decision"], r["reason"], r["editor"], r["undone"]) for r in rows
    ] == [
        ("GZ-2026-000001", "decline", "与前期重复", "chenjing@gzb.gz.test", False),
        ("GZ-2026-000002", "return", "请补充数据", "chenjing@gzb.gz.test", False),
    ]
    assert main(["--config", str(config), "items", "decisions", "--period", "2026Q3",
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out) == []
