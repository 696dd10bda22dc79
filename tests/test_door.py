"""One door into filing (ingest.door.take): a message arriving by SMTP, by IMAP or as a file
(`mailroom ingest`) is filed by the same function, and one whose judgement the database
refuses ends quarantined the same way from each."""

from __future__ import annotations

import re
import smtplib
from pathlib import Path

import pytest
from sqlalchemy import select, text

from ledger.db import Ledger
from ledger.models import Intake
from tests.conftest import REPO
from tests.dovecot import Dovecot
from tests.service import MailroomInstance, with_message_id

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = [pytest.mark.wall_clock, pytest.mark.slow]

VALID = (REPO / "examples" / "valid.eml").read_bytes()


def refused(message_id: str) -> bytes:
    """The README's item under a subject this test's database refuses to store."""
    raw = with_message_id(VALID, message_id)
    subject = b"Subject: REFUSE-ME " + message_id.encode()
    return re.sub(rb"(?m)^Subject: .*$", subject, raw, count=1)


def test_a_message_the_database_refuses_is_quarantined_alike_from_every_door(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    url = f"sqlite:///{tmp_path}/mailroom.db"
    office = MailroomInstance(
        tmp_path / "office",
        url,
        **{
            "imap.inf.host": "127.0.0.1",
            "imap.inf.port": dovecot.port,
            "imap.inf.ssl": False,
            "imap.inf.username": "inf",
            "imap.inf.password": dovecot.users["inf"],
            "imap.inf.poll_seconds": 1,
        },
    )
    office.init()
    ledger = Ledger.from_url(url)
    try:
        with ledger.transaction() as session:  # a rule an operator might add to the database
            session.execute(
                text(
                    "CREATE TRIGGER refuse_marked BEFORE UPDATE ON intake "
                    "WHEN NEW.subject LIKE '%REFUSE-ME%' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the database'); END"
                )
            )
        office.start()
        with smtplib.SMTP("127.0.0.1", office.port, timeout=30) as smtp:
            smtp.sendmail("liming@th.gz.test", ["inf@mailroom.test"], refused("by-smtp@th.gz.test"))
        dovecot.append([refused("by-imap@th.gz.test")])
        eml = tmp_path / "refused.eml"
        eml.write_bytes(refused("by-file@th.gz.test"))
        office.cli("ingest", "--no-send", str(eml))

        def rows() -> list[tuple[str, str, list[str], bytes]]:
            with ledger.reader() as session:
                found = session.scalars(select(Intake).order_by(Intake.id)).all()
                return [(r.channel, r.state, list(r.reasons), r.raw.data if r.raw else b"")
                        for r in found]  # fmt: skip

        got = office.wait(lambda: rows() if len(rows()) == 3 else None, what="three messages")
        assert sorted((c, s, r) for c, s, r, _ in got) == [
            ("file", "quarantined", ["processing_error"]),
            ("imap", "quarantined", ["processing_error"]),
            ("smtp", "quarantined", ["processing_error"]),
        ]
        for channel, _state, _reasons, raw in got:
            assert f"by-{channel}@th.gz.test".encode() in raw  # the raw bytes kept for a person
        assert dovecot.uids("INBOX") == []  # the IMAP copy moved once its quarantine committed
    finally:
        office.close()
        ledger.dispose()


def calls(path: Path) -> set[str]:
    """The names a module calls (`take`, `pipeline.process` as `process`)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            found.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return found


@pytest.mark.parametrize(
    "door", ["ingest/worker.py", "ingest/imap.py", "mailroom/commands/intake.py"]
)
def test_each_door_files_through_the_one_function(door: str) -> None:
    names = calls(REPO / door)
    assert names & {"take", "take_batch"}
    assert "process" not in names  # nobody calls Pipeline.process but the door itself
