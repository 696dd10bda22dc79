"""A large item's desk forward attaches its original by reference: each editor's outbox row
holds the forward without it, and the sender reads the raw message from the ledger in pieces
and writes it in, in base64, as the mail goes out: the same bytes as the forward written with
the original in it, to the Maildir and to a relay alike."""

from __future__ import annotations

import email
import email.policy
import itertools
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from bench.workload import big_item
from ingest.desk.mail import ORIGINAL_BY_REFERENCE
from ingest.outbound import MaildirTransport, RelayTransport, deliver_due
from ingest.pipeline import Arrival
from ingest.settings import Outbound
from ledger import compose as composing
from ledger.compose import (
    Attachment,
    Sender,
    base64_length,
    compose,
    readdressed,
    with_original,
)
from ledger.db import BLOB_PIECE_BYTES
from ledger.models import OutboundMessage, RawMessage
from ledger.outbox import pieces_of, size_of
from mailroom.app import App
from tests.measure import peak_of
from tests.smtpsink import SinkHandler, SmtpSink

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


def forward_mail(original: bytes | None, to: str = "chenjing@gzb.gz.test") -> composing.Mail:
    """A desk forward attaching `original` (None: by reference)."""
    return compose(
        kind="desk",
        sender=Sender("inf@mailroom.test", "信息科"),
        to=to,
        subject="【待编】GZ-2026-000001 天河区：测试",
        text="正文\n.以点开头的一行\n",
        html="<p>正文</p>",
        now=NOW,
        msgid="<mailroom.desk.k.1@mailroom.test>",
        attachments=(Attachment("GZ-2026-000001.eml", original),),
    )


@pytest.fixture
def fixed_boundary(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The boundaries of a mail made the same each time it is composed (numbered in order)."""
    count = itertools.count()
    monkeypatch.setattr(composing, "_boundary", lambda: f"=_mailroom_{next(count) % 2}")
    yield


@pytest.mark.usefixtures("fixed_boundary")
@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 57 * 1024 + 3, 3 * BLOB_PIECE_BYTES + 11])
def test_the_original_written_in_is_the_forward_written_with_it(size: int) -> None:
    original = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    whole = forward_mail(original)
    by_reference = forward_mail(None)
    assert whole.original_tail is None and by_reference.original_tail is not None
    assert len(by_reference.wire) < 4096
    for piece in (7, 4096, BLOB_PIECE_BYTES):  # the pieces the ledger reads: any size
        pieces = [original[at : at + piece] for at in range(0, len(original), piece)]
        written = list(with_original(by_reference.wire, by_reference.original_tail, pieces))
        assert b"".join(written) == whole.wire
        assert len(whole.wire) - len(by_reference.wire) == base64_length(len(original))
        assert all(p.endswith(b"\r\n") for p in written[:-1])  # each piece ends a line
    # A copy readdressed to another editor keeps the original's place counted from the end.
    to = "liangxiaotong@gzb.gz.test"
    copy = readdressed(by_reference.wire, to=to, msgid="<mailroom.desk.k.2@mailroom.test>")
    expected = readdressed(whole.wire, to=to, msgid="<mailroom.desk.k.2@mailroom.test>")
    assert b"".join(with_original(copy, by_reference.original_tail, [original])) == expected


def test_a_mail_attaches_one_original_by_reference_at_most() -> None:
    with pytest.raises(ValueError, match="only one attachment"):
        compose(
            kind="desk",
            sender=Sender("inf@mailroom.test", "信息科"),
            to="a@b.test",
            subject="s",
            text="t",
            html="h",
            now=NOW,
            attachments=(Attachment("a.eml", None), Attachment("b.eml", None)),
        )
    with pytest.raises(ValueError, match="not in the mail"):
        list(with_original(b"short", 6, [b"x"]))


def _file_big(app: App, size: int) -> bytes:
    letter = big_item(size, now=NOW)
    arrival = Arrival("daily", "smtp", NOW, letter.mail_from, "inf@mailroom.test")
    outcome = app.pipeline.process(letter.data, arrival)
    assert outcome.state == "filed", outcome.reasons
    return letter.data


def _maildir(app: App) -> dict[str, EmailMessage]:
    found = {}
    for path in sorted((app.config.outbound.maildir / "new").iterdir()):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        found[str(msg["To"])] = msg
    return found


def test_a_large_items_forward_is_stored_without_its_original_and_sent_with_it(
    app: App,
) -> None:
    raw = _file_big(app, 3_000_000)
    assert len(raw) > ORIGINAL_BY_REFERENCE
    with app.ledger.reader() as session:
        forwards = session.scalars(
            select(OutboundMessage).where(OutboundMessage.kind == "desk")
        ).all()
        assert len(forwards) == 3
        # Each editor's row: the forward alone, a few kilobytes, and the original's place.
        assert all(len(f.message) < 20_000 and f.original_tail for f in forwards)
        pieces = list(pieces_of(session, forwards[0]))
        if app.ledger.engine.dialect.name == "sqlite":
            # Read from the ledger in pieces: none holds the whole original's base64.
            assert len(pieces) > 3 and max(map(len, pieces)) < BLOB_PIECE_BYTES
    sent, peak = peak_of(lambda: deliver_due(app.ledger, app.transport, "inf@mailroom.test"))
    assert sent == 4  # the receipt and the three forwards
    mails = _maildir(app)
    for forward in forwards:
        mail = mails[forward.to_address]
        assert str(mail["Message-ID"]) == forward.message_id
        (attachment,) = mail.iter_attachments()
        assert attachment.get_filename().endswith(".eml")
        assert attachment.get_content() == raw
    if app.ledger.engine.dialect.name == "sqlite":
        # Three forwards of 4 MB each written out, each a piece read at a time: never one
        # forward, nor its original, whole in memory.
        assert peak < 2 * BLOB_PIECE_BYTES < len(raw)


def test_a_large_forward_goes_to_the_relay_as_the_same_bytes(app: App, tmp_path: Path) -> None:
    raw = _file_big(app, 1_000_000)
    sink = SmtpSink().start()
    try:
        relay = RelayTransport(Outbound(relay_host="127.0.0.1", relay_port=sink.port))
        assert deliver_due(app.ledger, relay, "inf@mailroom.test") == 4
    finally:
        sink.stop()
    assert len(sink.messages) == 4
    with app.ledger.reader() as session:
        for received in sink.messages:
            (to,) = received.rcpt_tos
            row = session.scalars(select(OutboundMessage).where(OutboundMessage.to_address == to))
            found = row.one()
            expected = b"".join(pieces_of(session, found))
            assert received.data == expected and size_of(session, found) == len(expected)
            assert received.mail_options == [f"SIZE={len(expected)}"]  # as sendmail gives it
            msg = email.message_from_bytes(received.data, policy=email.policy.default)
            if msg["X-Mailroom-Origin"] == "desk":
                assert isinstance(msg, EmailMessage)
                (attachment,) = msg.iter_attachments()
                assert attachment.get_content() == raw


@pytest.mark.parametrize(
    "message",
    [
        b"Subject: a\r\n\r\n.one dot\r\n..two dots\r\nlast line without an end",
        b"Subject: b\r\n\r\nbare\nline feeds\rand returns\r\n.\r\n",
        b"Subject: c\r\n\r\na dot after a bare return\r.is no line's first\r\n",
        b"",
    ],
)
def test_the_relay_gets_a_message_in_pieces_as_smtplib_sends_it_whole(message: bytes) -> None:
    sink = SmtpSink().start()
    try:
        with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
            smtp.sendmail("inf@mailroom.test", ["a@b.test"], message)
        relay = RelayTransport(Outbound(relay_host="127.0.0.1", relay_port=sink.port))
        lines = message.splitlines(keepends=True)
        relay.send(1, "inf@mailroom.test", "a@b.test", iter(lines), len(message))
    finally:
        sink.stop()
    whole, streamed = sink.messages
    assert streamed.data == whole.data and streamed.rcpt_tos == whole.rcpt_tos
    assert streamed.mail_options == whole.mail_options != []  # SIZE=, as the relay says


def test_a_relay_refusing_the_message_raises_as_smtplib_does() -> None:
    class Refusing(SinkHandler):
        async def handle_DATA(self, *_args: object) -> str:
            return "554 5.6.0 refused"

    sink = SmtpSink(handler=Refusing()).start()
    try:
        relay = RelayTransport(Outbound(relay_host="127.0.0.1", relay_port=sink.port))
        with pytest.raises(smtplib.SMTPDataError) as refused:
            relay.send(1, "inf@mailroom.test", "a@b.test", [b"Subject: x\r\n\r\nbody\r\n"], 21)
    finally:
        sink.stop()
    assert refused.value.smtp_code == 554


def test_a_forward_whose_original_is_gone_fails_before_anything_is_written(app: App) -> None:
    _file_big(app, 1_000_000)
    with app.ledger.transaction() as session:
        session.execute(delete(RawMessage))
    transport = MaildirTransport(app.config.outbound.maildir)
    assert deliver_due(app.ledger, transport, "inf@mailroom.test") == 1  # the receipt
    with app.ledger.reader() as session:
        forwards = session.scalars(
            select(OutboundMessage).where(OutboundMessage.kind == "desk")
        ).all()
        assert {(f.state, f.attempts) for f in forwards} == {("failed", 1)}
        assert all("is not in the ledger" in (f.last_error or "") for f in forwards)
    assert len(list((app.config.outbound.maildir / "new").iterdir())) == 1
    assert not list((app.config.outbound.maildir / "tmp").iterdir())
