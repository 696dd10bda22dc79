"""Bounces of our own mail: read from the report, matched to the outbox row they are about
(its own return path, or the returned Message-ID with its recipient), the row marked
`bounced`, and the addresses that bounce named by `mailroom registry check`.

`data/bounces/postfix_mailbox_unavailable.eml` is a bounce Postfix 3.7.11 made (the private
instance of `tests/postfix.py`) for a mail whose recipient's server answered `550 5.1.1`.
"""

from __future__ import annotations

import json
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.outbound import deliver_due
from ingest.pipeline import Arrival
from ledger.bounces import bouncing_addresses, return_path, row_of_return_path
from ledger.models import Intake, OutboundMessage, Person
from mailroom.app import App
from mailroom.cli import main
from mailroom.config import load_config
from parser import decode_message
from parser.bounce import read_bounce
from tests.conftest import DATA, REPO
from tests.pgcluster import free_port
from tests.postfix import Postfix
from tests.service import LedgerView, MailroomInstance, remove_editors, with_message_id

RECEIVED = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
SENT = RECEIVED + timedelta(minutes=1)
BOUNCED = RECEIVED + timedelta(minutes=5)
SECRET = "a-test-secret-of-32-characters-x"
OTHER_SECRET = "another-secret-of-32-characters!"
INF = "inf@mailroom.test"
OFFICER = "liming@th.gz.test"


def dsn(
    to: str,
    failed: str,
    message_id: str | None,
    *,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 <{failed}>: Recipient address rejected: mailbox unavailable",
) -> bytes:
    """A delivery report in the shape Postfix writes one, to `to`, about `failed`."""
    returned = f"Message-ID: {message_id}\r\n" if message_id else ""
    lines = [
        "From: Mail Delivery System <MAILER-DAEMON@relay.mailroom.test>",
        f"To: {to}",
        "Subject: Undelivered Mail Returned to Sender",
        "Auto-Submitted: auto-replied",
        "Message-ID: <20261122030500.1@relay.mailroom.test>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        "",
        "--b",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "I'm sorry to have to inform you that your message could not be delivered.",
        "",
        "--b",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; relay.mailroom.test",
        "",
        f"Final-Recipient: rfc822; {failed}",
        f"Original-Recipient: rfc822;{failed}",
        f"Action: {action}",
        f"Status: {status}",
        "Remote-MTA: dns; 127.0.0.1",
        "Diagnostic-Code: smtp; " + diagnostic.format(failed=failed),
        "",
        "--b",
        "Content-Type: text/rfc822-headers",
        "",
        f"From: inf@mailroom.test\r\nTo: {failed}\r\n{returned}Subject: receipt",
        "",
        "--b--",
        "",
    ]
    return "\r\n".join(lines).encode()


# --- what a bounce says (the parser) --------------------------------------------------------


def test_a_postfix_bounce_names_the_failed_recipient_the_reason_and_our_message() -> None:
    raw = (DATA / "bounces" / "postfix_mailbox_unavailable.eml").read_bytes()
    bounce = read_bounce(decode_message(raw))
    assert bounce.report and bounce.message_id == "<mailroom.receipt.abcd@mailroom.test>"
    (failure,) = bounce.failures
    assert (failure.recipient, failure.original, failure.action, failure.status) == (
        "wangfang@gone.example", "wangfang@gone.example", "failed", "5.1.1",
    )  # fmt: skip
    # The folded Diagnostic-Code on one line, its `smtp;` type dropped.
    assert failure.reason == (
        "550 5.1.1 <wangfang@gone.example>: Recipient address rejected: mailbox unavailable"
    )


def test_other_mail_systems_reports_and_their_returned_headers() -> None:
    # Coremail returns the headers only, without a Message-ID; 163's report returns nothing.
    coremail = read_bounce(decode_message((DATA / "bounce_coremail_dsn.eml").read_bytes()))
    assert coremail.message_id is None
    assert [(f.recipient, f.reason) for f in coremail.failures] == [
        ("liming-old@th.gz.test", "550 5.1.1 User not found")
    ]
    netease = read_bounce(decode_message((DATA / "mail" / "netease_bounce_cn.eml").read_bytes()))
    assert [f.status for f in netease.failures] == ["5.1.1"]


def test_a_delay_is_no_failure() -> None:
    raw = dsn(
        "inf@mailroom.test", OFFICER, "<m@mailroom.test>", action="delayed", status="4.4.1",
        diagnostic="connect to mx.th.gz.test: Connection timed out",
    )  # fmt: skip
    bounce = read_bounce(decode_message(raw))
    assert [r.action for r in bounce.recipients] == ["delayed"]
    assert bounce.failures == ()


def plain(subject: str, body: str) -> bytes:
    return (
        f"From: MAILER-DAEMON@mx.th.gz.test\r\nTo: inf@mailroom.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <plain@mx.th.gz.test>\r\n\r\n{body}"
    ).encode()


def test_a_plain_bounce_gives_the_line_with_its_status_and_nothing_else_counts() -> None:
    qmail = read_bounce(
        decode_message(
            plain(
                "failure notice",
                "Hi. This is the qmail-send program at mx.th.gz.test.\r\n"
                "<liming@th.gz.test>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n",
            )
        )
    )
    assert not qmail.report and qmail.failures == ()
    assert (qmail.text_reason, qmail.text_permanent) == (
        "Sorry, no mailbox here by that name. (#5.1.1)", True,
    )  # fmt: skip
    said = read_bounce(decode_message(plain("Returned mail", "host x said: 550 User unknown\r\n")))
    assert (said.text_reason, said.text_permanent) == ("host x said: 550 User unknown", True)
    # A number that is no status, a temporary status, a subject that says delay: not for good.
    for subject, body in (
        ("Out of office", "Call me on 550-1234 or 020-38620000, room 5.1.12.\r\n"),
        ("Returned mail", "451 4.3.0 try again later\r\n"),
        ("Delivery delayed", "550 5.1.1 will be retried\r\n"),
    ):
        bounce = read_bounce(decode_message(plain(subject, body)))
        assert not bounce.text_permanent, subject


# --- return paths ---------------------------------------------------------------------------


def test_a_return_path_names_its_row_and_nothing_else_does() -> None:
    address = return_path(SECRET, "inf@mailroom.test", 42)
    assert address.startswith("inf+bounce-42-") and address.endswith("@mailroom.test")
    assert len(address.partition("@")[0]) <= 64  # RFC 5321's local part
    assert row_of_return_path(SECRET, "inf@mailroom.test", address) == 42
    assert row_of_return_path(SECRET, "inf@mailroom.test", f"<{address.upper()}>") == 42
    mac = address.split("-")[2].partition("@")[0]
    for other in (
        address.replace("-42-", "-43-"),  # another row under this row's MAC
        f"inf+bounce-42-{'a' * 16}@mailroom.test",  # a MAC made up
        address.replace("@mailroom.test", "@elsewhere.test"),
        address.replace("inf+", "sfxx+"),
        f"inf+bounce-42-{mac}x@mailroom.test",
    ):
        assert row_of_return_path(SECRET, "inf@mailroom.test", other) is None, other
    assert row_of_return_path(OTHER_SECRET, "inf@mailroom.test", address) is None


# --- the pipeline marks the row ---------------------------------------------------------------


@pytest.fixture
def office(db_url: str, tmp_path: Path) -> Iterator[tuple[App, Path]]:
    """The demo office with an item filed and its receipt and desk forwards sent."""
    config = tmp_path / "mailroom.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[security]\nreply_key_secret = "{SECRET}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "init", "--demo"]) == 0
    app = App.open(load_config(config))
    app.pipeline.clock = lambda: BOUNCED
    try:
        file_and_send(app, (REPO / "examples" / "valid.eml").read_bytes())
        yield app, config
    finally:
        app.close()


def file_and_send(app: App, raw: bytes) -> None:
    arrival = Arrival("daily", "smtp", RECEIVED, mail_from=OFFICER, rcpt="inf@mailroom.test")
    with_received = app.pipeline.clock
    app.pipeline.clock = lambda: RECEIVED
    try:
        assert app.pipeline.process(raw, arrival).state == "filed"
    finally:
        app.pipeline.clock = with_received
    sender = app.config.sender_address
    deliver_due(app.ledger, app.transport, sender, lambda: SENT, return_paths=app.return_paths)


def receipts(app: App) -> list[OutboundMessage]:
    with app.ledger.reader() as s:
        kind = OutboundMessage.kind == "receipt"
        return list(s.scalars(select(OutboundMessage).where(kind).order_by(OutboundMessage.id)))


def bounce_in(app: App, raw: bytes, rcpt: str) -> Intake:
    arrival = Arrival("daily", "smtp", BOUNCED, mail_from="", rcpt=rcpt)
    outcome = app.pipeline.process(raw, arrival)
    with app.ledger.reader() as s:
        intake = s.get(Intake, outcome.intake_id)
        assert intake is not None
        s.expunge(intake)
        return intake


def test_a_bounce_to_the_rows_return_path_marks_it_bounced(office: tuple[App, Path]) -> None:
    app, _ = office
    (receipt,) = receipts(app)
    assert receipt.state == "sent" and receipt.message_id
    verp = return_path(SECRET, "inf@mailroom.test", receipt.id)
    # Postfix's report, which returns the whole message: its Message-ID is the receipt's.
    intake = bounce_in(app, dsn(verp, OFFICER, receipt.message_id), verp)
    assert (intake.state, intake.reasons) == ("ignored", ["bounce"])
    reason = f"550 5.1.1 <{OFFICER}>: Recipient address rejected: mailbox unavailable"
    assert intake.details == {
        "bounce_of": receipt.id,
        "bounce_matched_by": "return_path",
        "bounce_recipient": OFFICER,
        "bounce_reason": reason,
    }
    (after,) = receipts(app)
    assert (after.state, after.last_error, after.bounced_at) == ("bounced", reason, BOUNCED)
    with app.ledger.reader() as s:
        others = s.scalars(select(OutboundMessage.state).where(OutboundMessage.kind != "receipt"))
        assert set(others) == {"sent"}  # the desk forwards did not bounce


def test_a_bounce_elsewhere_needs_the_rows_message_id_and_recipient(
    office: tuple[App, Path],
) -> None:
    app, _ = office
    (receipt,) = receipts(app)
    # The same Message-ID, but the report says another address failed: not this row.
    intake = bounce_in(
        app, dsn("inf@mailroom.test", "someone@th.gz.test", receipt.message_id), "inf@mailroom.test"
    )
    assert intake.details == {"bounce_not_marked": "no_row"}
    assert receipts(app)[0].state == "sent"
    # The Message-ID and the row's recipient: the row (a relay rewrote the return path).
    intake = bounce_in(
        app, dsn("inf@mailroom.test", OFFICER, receipt.message_id), "inf@mailroom.test"
    )
    assert intake.details["bounce_matched_by"] == "message_id"
    assert receipts(app)[0].state == "bounced"


def test_a_bounce_never_marks_a_row_it_does_not_prove_it_is_about(
    office: tuple[App, Path],
) -> None:
    app, _ = office
    (receipt,) = receipts(app)
    forged = return_path(OTHER_SECRET, INF, receipt.id)
    for raw, rcpt in (
        (dsn(forged, OFFICER, None), forged),  # a return path the office did not make
        (dsn(INF, OFFICER, "<mailroom.receipt.0@mailroom.test>"), INF),  # no mail of ours
        (dsn(INF, OFFICER, None), INF),  # nothing to go by
    ):
        intake = bounce_in(app, raw, rcpt)
        assert (intake.state, intake.details) == ("ignored", {"bounce_not_marked": "no_row"})
    assert receipts(app)[0].state == "sent"

    # The row's own return path, but only a delay, or an auto-reply from the null sender.
    verp = return_path(SECRET, "inf@mailroom.test", receipt.id)
    delay = dsn(verp, OFFICER, None, action="delayed", status="4.4.1", diagnostic="timed out")
    away = plain("自动回复：我已休假", "我已休假，急事请致电 020-38620000。\r\n")
    for raw in (delay, away):
        intake = bounce_in(app, raw, verp)
        assert intake.details == {
            "bounce_of": receipt.id, "bounce_matched_by": "return_path",
            "bounce_not_marked": "not_failed",
        }  # fmt: skip
    assert receipts(app)[0].state == "sent"


def test_a_plain_bounce_to_the_return_path_marks_the_row(office: tuple[App, Path]) -> None:
    app, _ = office
    (receipt,) = receipts(app)
    verp = return_path(SECRET, "inf@mailroom.test", receipt.id)
    # Found in a header as well as in the envelope (a bounce fetched by IMAP has no envelope).
    raw = plain(
        "failure notice", f"<{OFFICER}>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n"
    ).replace(b"To: inf@mailroom.test", f"To: {verp}".encode())
    intake = bounce_in(app, raw, "")
    assert intake.details["bounce_reason"] == "Sorry, no mailbox here by that name. (#5.1.1)"
    assert receipts(app)[0].state == "bounced"


def bounce_section(out: str) -> str:
    """`registry check`'s section on bouncing addresses (after the units without an officer)."""
    return out[out.index("Addresses that bounce:") :]


def test_registry_check_names_the_addresses_whose_latest_mail_bounced(
    office: tuple[App, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    app, config = office
    capsys.readouterr()
    assert main(["--config", str(config), "registry", "check"]) == 0
    assert bounce_section(capsys.readouterr().out) == "Addresses that bounce: none\n"

    (first,) = receipts(app)
    verp = return_path(SECRET, "inf@mailroom.test", first.id)
    bounce_in(app, dsn(verp, OFFICER, first.message_id), verp)
    file_and_send(app, with_message_id((REPO / "examples" / "valid.eml").read_bytes(), "2@th"))
    second = receipts(app)[1]
    verp = return_path(SECRET, "inf@mailroom.test", second.id)
    bounce_in(app, dsn(verp, OFFICER, None, diagnostic="550 5.1.1 User unknown"), verp)

    assert main(["--config", str(config), "registry", "check"]) == 0
    assert bounce_section(capsys.readouterr().out) == (
        "Addresses that bounce: 1\n"
        f"  {OFFICER} (李明, officer of 天河区 (TH))\n"
        "    2 mails in a row bounced; the last (receipt) at 2026-11-22 11:05: "
        "550 5.1.1 User unknown\n"
    )

    # A later mail to the address that went through (no bounce of it): it is no longer listed.
    file_and_send(app, with_message_id((REPO / "examples" / "valid.eml").read_bytes(), "3@th"))
    with app.ledger.reader() as s:
        assert bouncing_addresses(s) == []


# --- behind a real Postfix ------------------------------------------------------------------


@pytest.mark.slow
def test_a_receipt_to_an_unreachable_officer_bounces_back_through_postfix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mailroom's relay is Postfix; the officer's server refuses the mailbox after Postfix took
    the receipt, so Postfix bounces it to the receipt's return path, which it routes back to
    Mailroom's listener (transport_maps), as an office's Postfix in front of Mailroom does.

    On SQLite only: what the database does here (a row sent, a row marked) the tests above run
    on both."""
    db_url = f"sqlite:///{tmp_path / 'mailroom.db'}"
    relay_port = free_port()
    mailroom = MailroomInstance(
        tmp_path / "office",
        db_url,
        clock=RECEIVED,
        **{
            "outbound.relay": f"127.0.0.1:{relay_port}",
            "outbound.helo_name": "mailroom.example.gov.cn",
            "security.reply_key_secret": SECRET,
        },
    )
    gone = "liming@gone.example"
    postfix = Postfix(routes={"mailroom.test": mailroom.port}, port=relay_port)
    view = LedgerView(db_url)
    try:
        mailroom.init()
        with view.ledger.transaction() as session:
            remove_editors(session)  # the receipt only: no desk forwards
            officer = session.scalars(select(Person).where(Person.email == OFFICER)).one()
            officer.email = gone  # the registry still has an address that no longer exists
        postfix.start()
        mailroom.start()
        item = (REPO / "examples" / "valid.eml").read_bytes()
        item = item.replace(OFFICER.encode(), gone.encode())
        with smtplib.SMTP("127.0.0.1", mailroom.port, timeout=30) as smtp:
            smtp.sendmail(gone, ["inf@mailroom.test"], item)

        def bounced() -> OutboundMessage | None:
            rows = [r for r in view.outbox() if r.kind == "receipt" and r.state == "bounced"]
            return rows[0] if rows else None

        try:
            receipt = mailroom.wait(bounced, timeout=60, what="the receipt to be marked bounced")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nPostfix's log:\n{postfix.log}") from None
        assert receipt.to_address == gone
        assert receipt.last_error == (
            f"550 5.1.1 <{gone}>: Recipient address rejected: mailbox unavailable"
        )
        with view.ledger.reader() as s:
            dsn_row = s.scalars(select(Intake).where(Intake.envelope_from == "<>")).one()
            assert (dsn_row.state, dsn_row.reasons) == ("ignored", ["bounce"])
            assert dsn_row.envelope_to == return_path(SECRET, "inf@mailroom.test", receipt.id)
            assert dsn_row.details["bounce_matched_by"] == "return_path"
            assert dsn_row.from_address == "mailer-daemon@relay.mailroom.test"
            # Postfix wrote down the name Mailroom greeted it with, in the returned receipt.
            assert dsn_row.raw is not None
            assert b"Received: from mailroom.example.gov.cn (" in dsn_row.raw.data

        capsys.readouterr()
        assert main(["--config", str(mailroom.config), "outbox", "--json"]) == 0
        (shown,) = json.loads(capsys.readouterr().out)
        assert (shown["id"], shown["state"]) == (receipt.id, "bounced")
        assert shown["last_error"] == receipt.last_error and shown["bounced_at"]
        assert main(["--config", str(mailroom.config), "registry", "check"]) == 0
        out = bounce_section(capsys.readouterr().out)
        assert out.startswith("Addresses that bounce: 1\n")
        assert f"  {gone} (李明, officer of 天河区 (TH))\n" in out
        assert "1 mail bounced; the last (receipt)" in out
    finally:
        try:
            mailroom.close()
        finally:
            view.close()
            postfix.close()
