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

from ingest.desk import reply_key
from tests.conftest import DATA, REPO
from tests.service import MailroomInstance, plain_text, wait_for

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock

DESK = DATA / "desk"
SECRET = "desk-tests-reply-key-secret"
KEY1 = reply_key(SECRET, 1)


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
def test_adoption_by_reply_over_smtp_scores_notifies_and_confirms(
    mailroom: MailroomInstance,
) -> None:
    # Two items; 天河区's is adopted by a Foxmail reply in simplified (采用 穗府信息 标题),
    # 越秀区's by an Outlook reply in traditional Chinese and Big5 (採用 穗府信息 標題).
    mailroom.start()
    send(
        mailroom.port,
        "liming@th.gz.test",
        "inf@mailroom.test",
        (REPO / "examples" / "valid.eml").read_bytes(),
    )
    wait_for(lambda: len(by_origin(mailroom, "desk")) == 3, what="item 1's forwards")
    send(
        mailroom.port,
        "wangfang@yx.gz.test",
        "inf@mailroom.test",
        (DESK / "item_yuexiu_gbk.eml").read_bytes(),
    )
    wait_for(lambda: len(by_origin(mailroom, "desk")) == 6, what="item 2's forwards")
    forwards = by_origin(mailroom, "desk")
    cases = [
        (forwards[0], "reply_foxmail_gbk_adopt.eml", "天河区", "liming@th.gz.test"),
        (forwards[4], "reply_outlook_big5_adopt.eml", "越秀区", "wangfang@yx.gz.test"),
    ]
    for n, (forward, fixture, unit, officer) in enumerate(cases, 1):
        editor = str(forward["To"])
        reply_to = forward["Reply-To"].addresses[0].addr_spec
        reply = (DESK / fixture).read_bytes()
        assert f"<desk+{KEY1}@mailroom.test>".encode() in reply  # written for item 1's forward
        reply = reply.replace(KEY1.encode(), reply_to.split("+")[1].split("@")[0].encode())
        tracking_no = str(forward["Subject"]).split()[0].removeprefix("【待编】")
        send(
            mailroom.port, editor, reply_to, with_subject(reply, "回复：" + str(forward["Subject"]))
        )

        wait_for(lambda n=n: len(by_origin(mailroom, "confirmation")) == n, what="a confirmation")
        confirmation = by_origin(mailroom, "confirmation")[-1]
        assert confirmation["To"] == editor
        assert f"已登记（{tracking_no}）：《穗府信息》标题信息" in plain_text(confirmation)
        assert f"{unit}：2 分" in plain_text(confirmation)
        wait_for(lambda n=n: len(by_origin(mailroom, "notice")) == n, what="a notice")
        notice = by_origin(mailroom, "notice")[-1]
        assert notice["To"] == officer
        assert "已被采用：《穗府信息》标题信息" in plain_text(notice)
    mailroom.stop()

    standings = {row["unit_code"]: row for row in mailroom.cli_json("standings")}
    assert (standings["TH"]["points"], standings["TH"]["adopted"]) == (2, 1)
    assert (standings["YX"]["points"], standings["YX"]["adopted"]) == (2, 1)
    desk_rows = [r for r in mailroom.cli_json("intake", "list") if r["mailbox"] == "desk"]
    assert [(r["state"], r["reasons"]) for r in desk_rows] == [("command", [])] * 2
    assert "audit log intact: 2 rows" in mailroom.cli("audit", "verify").stdout
