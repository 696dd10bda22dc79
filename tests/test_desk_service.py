"""The desk end to end over SMTP against `mailroom serve` (SPEC §4): item → forward → reply."""

from __future__ import annotations

import email
import email.policy
import smtplib
from collections.abc import Iterator
from email.header import Header
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


def with_subject(raw: bytes, subject: str) -> bytes:
    """The reply as the client sends it: the forward's subject (its tracking number's year is
    the year the test runs in), the rest of the fixture untouched."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    msg.replace_header("Subject", Header(subject, "utf-8").encode())
    return msg.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))


def by_origin(mailroom: MailroomInstance, kind: str) -> list[EmailMessage]:
    return [m for m in mailroom.outbox_messages() if m["X-Mailroom-Origin"] == kind]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fixture", "editor"),
    [
        ("reply_foxmail_gbk_adopt.eml", "chenjing@gzb.gz.test"),  # 采用 穗府信息 标题
        ("reply_outlook_big5_adopt.eml", "liangxiaotong@gzb.gz.test"),  # 採用 穗府信息 標題
    ],
)
def test_adoption_by_reply_over_smtp_scores_notifies_and_confirms(
    mailroom: MailroomInstance, fixture: str, editor: str
) -> None:
    mailroom.start()
    item = (REPO / "examples" / "valid.eml").read_bytes()
    send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", item)
    wait_for(lambda: len(by_origin(mailroom, "desk")) == 3, what="the forwards to 3 editors")
    forward = next(m for m in by_origin(mailroom, "desk") if m["To"] == editor)
    reply_to = forward["Reply-To"].addresses[0].addr_spec

    reply = (DESK / fixture).read_bytes()
    assert f"<{reply_to}>".encode() in reply  # the fixture answers this very forward
    tracking_no = str(forward["Subject"]).split()[0].removeprefix("【待编】")
    send(mailroom.port, editor, reply_to, with_subject(reply, "回复：" + str(forward["Subject"])))

    wait_for(lambda: by_origin(mailroom, "confirmation"), what="the editor's confirmation")
    confirmation = by_origin(mailroom, "confirmation")[0]
    assert confirmation["To"] == editor
    assert f"已登记（{tracking_no}）：《穗府信息》标题信息" in plain_text(confirmation)
    assert "天河区：2 分" in plain_text(confirmation)
    wait_for(lambda: by_origin(mailroom, "notice"), what="the notice to the unit")
    notice = by_origin(mailroom, "notice")[0]
    assert notice["To"] == "liming@th.gz.test"
    assert "已被采用：《穗府信息》标题信息" in plain_text(notice)
    mailroom.stop()

    standings = {row["unit_code"]: row for row in mailroom.cli_json("standings")}
    assert standings["TH"]["points"] == 2
    assert standings["TH"]["adopted"] == 1
    desk_rows = [r for r in mailroom.cli_json("intake", "list") if r["mailbox"] == "desk"]
    assert [(r["state"], r["reasons"]) for r in desk_rows] == [("command", [])]
    assert "audit log intact: 1 rows" in mailroom.cli("audit", "verify").stdout
