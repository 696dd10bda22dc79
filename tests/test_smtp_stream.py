"""The listener takes a large message into a spool draft as it arrives, never whole in
memory, and stores exactly the bytes that were sent; small ones are taken as before. Each
test runs the real listener on a socket and talks to it with `smtplib`."""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.settings import Mailboxes
from ingest.smtp import INLINE_SPOOL_BYTES, IntakeHandler, smtp_factory
from ingest.spool import Spool
from parser.decode import content_hash
from tests.measure import peak_of

MAX_BYTES = 8_000_000


class Listener:
    """`IntakeHandler` behind the listener `mailroom serve` runs, on a loop of its own."""

    def __init__(self, root: Path) -> None:
        self.spool = Spool(root / "spool")
        self.spool.ensure()
        self.handler = IntakeHandler(Mailboxes(), self.spool)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        factory = smtp_factory(self.handler, MAX_BYTES, "mailroom.test")
        server = asyncio.run_coroutine_threadsafe(
            self.loop.create_server(factory, "127.0.0.1", 0), self.loop
        ).result(10)
        self.server = server
        self.port = server.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.handler.close_sessions(0)
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def stored(self) -> list[bytes]:
        return [self.spool.read(i)[1] for i in self.spool.pending()]

    def drafts(self) -> list[Path]:
        return [p for p in self.spool.tmp.iterdir() if p.name.endswith(".draft")]


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    running = Listener(tmp_path)
    try:
        yield running
    finally:
        running.close()


def message(size: int) -> bytes:
    """A message of about `size` bytes with lines a client dot-stuffs and a last line
    without its line break (smtplib adds one)."""
    head = b"From: a@b.test\r\nTo: inf@mailroom.test\r\nSubject: big\r\n\r\n"
    lines = [b"%07d " % n + b"x" * 68 + b"\r\n" for n in range(size // 78)]
    lines[10] = b".starts with a dot\r\n"
    lines[-3] = b".\r\n"  # a lone dot, stuffed by the client, is a line of the message
    return head + b"".join(lines) + b"ends without CRLF"


def send_stuffed(port: int, data: bytes, rcpts: list[str]) -> tuple[int, bytes]:
    """DATA sent from a buffer made before: the client itself holds no copy of it."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.mail("a@b.test")[0] == 250
        for rcpt in rcpts:
            assert smtp.rcpt(rcpt)[0] == 250
        smtp.putcmd("data")
        assert smtp.getreply()[0] == 354
        assert smtp.sock is not None
        view = memoryview(data)
        for at in range(0, len(view), 65536):
            smtp.sock.sendall(view[at : at + 65536])
        return smtp.getreply()


def test_a_large_message_is_stored_as_sent_and_never_held_whole(listener: Listener) -> None:
    raw = message(6_000_000) + b"\r\n"
    stuffed = raw.replace(b"\r\n.", b"\r\n..") + b".\r\n"  # RFC 5321 §4.5.2
    tracemalloc.start()  # this process runs the listener: its allocations are traced
    try:
        code, _text = send_stuffed(
            listener.port, stuffed, ["inf@mailroom.test", "sfxx@mailroom.test"]
        )
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 250
    # aiosmtpd kept every line, then joined them: twice the message and more.
    assert peak < len(raw) / 4
    assert listener.stored() == [raw, raw]  # one per mailbox, every byte as it came
    assert content_hash(listener.stored()[0]) == content_hash(raw)
    assert listener.drafts() == []


def test_a_small_message_is_taken_in_memory_as_before(listener: Listener) -> None:
    raw = message(INLINE_SPOOL_BYTES // 2)
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=30) as smtp:
        smtp.sendmail("a@b.test", ["inf@mailroom.test"], raw)
    assert listener.stored() == [raw + b"\r\n"]


def test_over_size_and_overlong_lines_are_refused_and_leave_no_draft(listener: Listener) -> None:
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=30) as smtp:
        smtp.ehlo()
        for data, code in (
            (message(MAX_BYTES + 100_000), 552),
            (message(2_000_000) + b"y" * 70_000, 500),  # a last line of 70 KB
        ):
            assert smtp.mail("a@b.test")[0] == 250
            assert smtp.rcpt("inf@mailroom.test")[0] == 250
            assert smtp.data(data)[0] == code
            smtp.rset()
        smtp.sendmail("a@b.test", ["inf@mailroom.test"], b"Subject: ok\r\n\r\nstill here\r\n")
    assert listener.stored() == [b"Subject: ok\r\n\r\nstill here\r\n"]
    assert listener.drafts() == []


def test_a_draft_that_cannot_be_written_is_answered_451(listener: Listener) -> None:
    listener.spool.tmp.rmdir()
    listener.spool.tmp.write_bytes(b"not a directory")
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=30) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("a@b.test", ["inf@mailroom.test"], message(2_000_000))
        assert refused.value.smtp_code == 451
    assert listener.spool.pending() == []


def test_a_connection_lost_during_data_leaves_no_draft(listener: Listener) -> None:
    smtp = smtplib.SMTP("127.0.0.1", listener.port, timeout=30)
    smtp.ehlo()
    smtp.mail("a@b.test")
    smtp.rcpt("inf@mailroom.test")
    smtp.putcmd("data")
    assert smtp.getreply()[0] == 354
    assert smtp.sock is not None
    smtp.sock.sendall(message(2_000_000).replace(b"\r\n.", b"\r\n.."))  # and no end of data
    smtp.close()
    for _ in range(200):
        if not listener.drafts() and not listener.handler.sessions:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # whatever the session still had in hand is done with by now
    assert listener.drafts() == [] and listener.spool.pending() == []


def test_an_endless_line_is_refused_without_being_kept(listener: Listener) -> None:
    """A sender that never ends its line: aiosmtpd kept every fragment of it until a line
    break came, so the listener's memory grew with what the sender chose to send."""
    endless = b"z" * (3 * MAX_BYTES)  # over the size limit, in one line
    stuffed = b"Subject: x\r\n\r\n" + endless + b"\r\n.\r\n"
    # This process runs the listener: its allocations are traced.
    (code, _text), peak = peak_of(
        lambda: send_stuffed(listener.port, stuffed, ["inf@mailroom.test"])
    )
    assert code == 500  # too long a line, before too much mail
    assert peak < len(endless) / 8
    assert listener.stored() == [] and listener.drafts() == []
