"""What a bounce says: the failed recipients, the status and the remote server's words, and
the Message-ID of the returned message; a plain bounce, only a line that names a status.

`data/bounces/postfix_mailbox_unavailable.eml` is a bounce Postfix 3.7.11 made for a mail whose
recipient's server answered `550 5.1.1`.
"""

from __future__ import annotations

from parser import decode_message
from parser.bounce import read_bounce
from tests.conftest import DATA

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
