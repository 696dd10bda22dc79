"""The desk end to end over SMTP against `mailroom serve` (SPEC §4): item → forward → reply."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import DATA, REPO
from tests.service import MailroomInstance, plain_text, wait_for

DESK = DATA / "desk"
SECRET = "desk-tests-reply-key-secret"


@pytest.fixture
def mailroom(tmp_path: Path, db_url: str) -> Iterator[MailroomInstance]:
    instance = MailroomInstance(
        tmp_path / "office", db_url, **{"security.reply_key_secret": SECRET}
    )
    instance.cli("init", "--demo")
    try:
        yield instance
    finally:
        instance.close()


def send(port: int, mail_from: str, to: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail(mail_from, [to], raw)


def by_origin(mailroom: MailroomInstance, kind: str) -> list[EmailMessage]:
    return [m for m in mailroom.outbox_messages() if m["X-Mailroom-Origin"] == kind]


@pytest.mark.slow
def test_item_forward_reply_confirmation_and_notice_over_smtp(
    mailroom: MailroomInstance,
) -> None:
    mailroom.start()
    send(
        mailroom.port,
        "liming@th.gz.test",
        "inf@mailroom.test",
        (REPO / "examples" / "valid.eml").read_bytes(),
    )
    wait_for(lambda: len(by_origin(mailroom, "desk")) == 3, what="the forwards to 3 editors")
    forward = next(m for m in by_origin(mailroom, "desk") if m["To"] == "hezhenhua@gzb.gz.test")
    reply_to = forward["Reply-To"].addresses[0].addr_spec

    reply = (DESK / "reply_163_utf8_decline.eml").read_bytes()
    assert f"<{reply_to}>".encode() in reply  # the fixture answers this very forward
    send(mailroom.port, "hezhenhua@gzb.gz.test", reply_to, reply)

    wait_for(lambda: by_origin(mailroom, "notice"), what="the notice to the unit")
    notice = by_origin(mailroom, "notice")[0]
    assert notice["To"] == "liming@th.gz.test"
    assert "不予采用，理由：内容与前期信息重复" in plain_text(notice)
    wait_for(lambda: by_origin(mailroom, "confirmation"), what="the editor's confirmation")
    confirmation = by_origin(mailroom, "confirmation")[0]
    assert confirmation["To"] == "hezhenhua@gzb.gz.test"
    assert "已登记（GZ-2026-000001）：不采用" in plain_text(confirmation)
    mailroom.stop()

    desk_rows = [r for r in mailroom.cli_json("intake", "list") if r["mailbox"] == "desk"]
    assert [(r["state"], r["reasons"]) for r in desk_rows] == [("command", [])]
    assert "audit log intact: 1 rows" in mailroom.cli("audit", "verify").stdout
