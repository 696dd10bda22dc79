"""The audit log (SPEC §5.6): hash-chained rows, and `mailroom audit verify` on each database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger import audit
from ledger.db import Ledger
from mailroom.cli import main

AT = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def write_three(ledger: Ledger) -> None:
    with ledger.transaction() as s:
        for n, (action, subject) in enumerate(
            [("adopt", "GZ-2026-000001"), ("deduct", "TH"), ("undo", "GZ-2026-000001")]
        ):
            audit.record(
                s,
                at=AT + timedelta(minutes=n),
                actor="chenjing@gzb.gz.test",
                action=action,
                source=f"intake:{n + 1} <m{n}@gzb.gz.test>",
                subject=subject,
                details={"what": "《穗府信息》标题信息", "points": 2, "note": "迟报"},
            )


def test_rows_chain_from_genesis_and_verify(ledger: Ledger) -> None:
    write_three(ledger)
    with ledger.reader() as s:
        rows = s.scalars(text("SELECT prev_hash, hash FROM audit_log ORDER BY id")).all()
        report = audit.verify_chain(s)
    assert report.ok and report.rows == 3
    assert rows[0] == audit.GENESIS and report.head not in (audit.GENESIS, "")


@pytest.mark.parametrize(
    ("tamper", "broken_at"),
    [
        ('UPDATE audit_log SET details = \'{"what": "x", "points": 20}\' WHERE id = 2', 2),
        ("UPDATE audit_log SET at = at + INTERVAL '1 hour' WHERE id = 1", 1),
        ("DELETE FROM audit_log WHERE id = 2", 3),
    ],
)
def test_an_edit_behind_the_services_back_is_found(
    ledger: Ledger, tamper: str, broken_at: int
) -> None:
    write_three(ledger)
    if ledger.engine.dialect.name == "sqlite":
        tamper = tamper.replace("at + INTERVAL '1 hour'", "datetime(at, '+1 hour')")
    with ledger.transaction() as s:
        s.execute(text(tamper))
    with ledger.reader() as s:
        report = audit.verify_chain(s)
    assert not report.ok and report.broken_at == broken_at


def test_audit_verify_command(
    tmp_path: Path, db_url: str, ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mailroom.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    write_three(ledger)
    assert main(["--config", str(config), "audit", "verify"]) == 0
    assert "audit log intact: 3 rows" in capsys.readouterr().out
    with ledger.transaction() as s:
        s.execute(text("UPDATE audit_log SET actor = 'intruder@gzb.gz.test' WHERE id = 3"))
    assert main(["--config", str(config), "audit", "verify"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "mailroom: audit log broken at row 3: was changed after it was written (3 rows checked)"
    )


def test_editor_passphrase_command(
    tmp_path: Path,
    db_url: str,
    ledger: Ledger,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from ledger.demo import load_demo
    from ledger.editors import check_passphrase

    config = tmp_path / "mailroom.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    with ledger.transaction() as s:
        load_demo(s)
    monkeypatch.setattr("sys.stdin", io.StringIO("编辑部 2026 口令\n"))
    assert main(["--config", str(config), "editor", "passphrase", "chenjing@gzb.gz.test"]) == 0
    assert "passphrase set for 陈静 <chenjing@gzb.gz.test>" in capsys.readouterr().out
    with ledger.reader() as s:
        assert check_passphrase(s, "chenjing@gzb.gz.test", "编辑部 2026 口令")
        assert not check_passphrase(s, "chenjing@gzb.gz.test", "编辑部 2025 口令")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--config", str(config), "editor", "passphrase", "chenjing@gzb.gz.test"]) == 2
    assert capsys.readouterr().err.strip() == (
        "mailroom: the passphrase must be at least 10 characters"
    )
    assert (
        main(["--config", str(config), "editor", "passphrase", "liming@th.gz.test", "--generate"])
        == 2
    )
    assert "liming@th.gz.test is not a registered editor" in capsys.readouterr().err
    assert (
        main(
            ["--config", str(config), "editor", "passphrase", "hezhenhua@gzb.gz.test", "--generate"]
        )
        == 0
    )
    generated = capsys.readouterr().out.split("passphrase: ")[1].strip()
    with ledger.reader() as s:
        assert check_passphrase(s, "hezhenhua@gzb.gz.test", generated)


def test_points_changed_from_the_cli_are_audited_too(
    tmp_path: Path, db_url: str, ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import select

    from ingest.pipeline import Arrival
    from ledger.demo import load_demo
    from ledger.models import AuditEntry
    from mailroom.app import App
    from mailroom.config import parse_config
    from tests.conftest import REPO

    config = tmp_path / "mailroom.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    office = App.open(parse_config({"database": {"url": db_url}}, tmp_path, environ={}))
    try:
        with office.ledger.transaction() as s:
            load_demo(s)
        raw = (REPO / "examples" / "valid.eml").read_bytes()
        tracking = office.pipeline.process(raw, Arrival("daily", "file", AT)).tracking_no
    finally:
        office.close()
    assert tracking is not None
    cli = ["--config", str(config)]
    assert main([*cli, "adopt", tracking, "穗府信息", "标题", "--by", "chenjing"]) == 0
    event = capsys.readouterr().out.split("as event ")[1].split(":")[0]
    assert main([*cli, "undo", event, "--by", "chenjing"]) == 0
    with ledger.reader() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(r.action, r.actor, r.source, r.subject) for r in rows] == [
            ("adoption", "chenjing", "cli", tracking),
            ("undo", "chenjing", "cli", tracking),
        ]
        assert rows[0].details["rule"] == "穗府信息" and rows[0].details["level"] == "标题"
    assert main([*cli, "audit", "verify"]) == 0
