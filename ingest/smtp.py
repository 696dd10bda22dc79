"""The SMTP listener (aiosmtpd): `250` only after the raw message is durably spooled.

Unknown recipients are refused at RCPT (`550`: never an open relay); over-size mail at MAIL
(a `SIZE=` over the limit) or after DATA (`552 5.3.4`, by aiosmtpd's `data_size_limit`); a
spool that cannot store the message, or a database that is down, gives `451` so the sender
retries. A message up to `INLINE_SPOOL_BYTES` is
held in memory and written on the event loop (cheaper than a thread hop); a larger one is
written to a spool draft line by line as it arrives (never held whole), and staged from it in
a thread. Either way the session then awaits the spool's group commit (fsyncs shared by every
session delivering at once). A connection lost before the end of DATA leaves nothing stored.
STARTTLS is offered when a certificate is configured. Sessions are capped in total and per
client address: a connection beyond either is told `421` and closed before any SMTP, and the
flood is logged once a minute.

Shutdown (`close_sessions`): no new transaction is accepted (`421`), a session in the middle of
one (after MAIL FROM, during DATA) may finish it and hear its `250`, then every session is told
`421` and closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, AnyStr

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from ingest.health import DatabaseHealth
from ingest.settings import Mailboxes
from ingest.spool import Spool, SpoolDraft, SpoolEnvelope
from parser.errors import UserError

log = logging.getLogger(__name__)

SHUTTING_DOWN = "421 4.3.2 Service shutting down; please try again later"
CANNOT_STORE = "451 4.3.0 Cannot store the message now; please try again later"
# A message up to this size is kept in memory and written to the spool on the event loop
# itself (a few tens of microseconds): handing it to a thread and back costs the `250` more,
# in waiting for the interpreter lock, than the write. A larger one goes to a spool draft as
# it arrives and is staged in a thread, so a 25 MB message is neither held in memory nor holds
# up the other sessions. Either way the session then waits, without holding up the loop, for
# the spool's group commit to have made it durable.
INLINE_SPOOL_BYTES = 256 * 1024


TOO_MANY = "421 4.7.0 Too many connections; please try again later"
FLOOD_LOG_SECONDS = 60.0  # connections refused over the caps are logged at most this often


# A line of a message may be this long (RFC 5321 allows 1,000 bytes): a client that ends its
# lines with a bare LF sends its whole message as one line, and up to this size it is taken.
LINE_BYTES = 64 * 1024
LINE_TOO_LONG = (
    "500 5.5.2 Message has a line over 64 KB, or ends its lines with a bare LF: end each line "
    "with CRLF and keep it under 1000 bytes (RFC 5321 sections 2.3.8 and 4.5.3.1.6)"
)


def too_big(limit: int) -> str:
    """The answer to a message over `[smtp] max_message_bytes` (RFC 3463: 5.3.4)."""
    return f"552 5.3.4 Message too big: at most {limit} bytes are accepted here"


class IntakeEnvelope(Envelope):
    """aiosmtpd's envelope, and the spool draft a large message was written to as it came
    (then `original_content` is None: the message is never held whole)."""

    def __init__(self) -> None:
        super().__init__()
        self.draft: SpoolDraft | None = None


class _Data:
    """The lines of one DATA, dot-unstuffed (RFC 5321 §4.5.2): kept in memory up to
    `INLINE_SPOOL_BYTES`, then written on to a spool draft as they arrive."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.lines: list[bytes | bytearray] = []
        self.size = 0
        self.draft: SpoolDraft | None = None
        self.failed: OSError | None = None  # the draft could not be written: answer 451

    def add(self, line: bytearray) -> None:
        if line.startswith(b"."):
            del line[0]
        self.size += len(line)
        if self.failed is not None:
            return
        try:
            if self.draft is not None:
                self.draft.write(line)
                return
            self.lines.append(line)
            if self.size > INLINE_SPOOL_BYTES:
                self.draft = self.spool.draft()
                for kept in self.lines:
                    self.draft.write(kept)
                self.lines = []
        except OSError as exc:
            self.failed = exc
            self.discard()

    def discard(self) -> None:
        """Drop what was received (refused, or the connection lost)."""
        self.lines = []
        if self.draft is not None:
            draft, self.draft = self.draft, None
            try:
                draft.discard()
            except OSError as exc:
                log.warning("cannot remove the spool draft %s: %s", draft.path, exc)


class IntakeSMTP(SMTP):
    """One SMTP connection, known to its handler so that shutdown can wait for it, and
    turned away with `421` before any SMTP when the session caps are reached. DATA is read
    as aiosmtpd reads it, except that a large message goes to a spool draft as it arrives
    instead of into a list of lines joined at the end (aiosmtpd held a 25 MB message four
    times over)."""

    line_length_limit = LINE_BYTES

    def __init__(self, handler: IntakeHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.intake = handler
        self.client: str | None = None  # the peer's address, while it holds a session
        self.turned_away = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # a new connection, not STARTTLS over one
            peer = transport.get_extra_info("peername")
            client = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
            if not self.intake.admit(client):
                self.turned_away = True
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(TOO_MANY.encode() + b"\r\n")
                transport.close()
                return
            self.client = client
        super().connection_made(transport)
        self.intake.sessions.add(self)

    async def push(self, status: AnyStr) -> None:
        # aiosmtpd's own answers to an overlong line and to an over-size message (at MAIL by
        # its SIZE, after DATA by its bytes) name no remedy and no enhanced status code.
        if isinstance(status, str):
            if status.startswith("500 Line too long"):
                status = LINE_TOO_LONG
            elif status.startswith("552 Error") and self.data_size_limit:
                status = too_big(self.data_size_limit)
        await super().push(status)

    def data_received(self, data: bytes) -> None:
        if not self.turned_away:
            super().data_received(data)

    def eof_received(self) -> bool | None:
        return None if self.turned_away else super().eof_received()

    def connection_lost(self, error: Exception | None) -> None:
        if self.turned_away:
            return
        self.intake.sessions.discard(self)
        if self.client is not None:
            self.intake.release(self.client)
            self.client = None
        super().connection_lost(error)

    def _create_envelope(self) -> IntakeEnvelope:
        return IntakeEnvelope()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd 1.4's `smtp_DATA`, its answers and their order kept; only where the
        # lines go differs (`_Data`).
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = _Data(self.intake.spool)
        try:
            status = await self._receive(data)
        finally:
            data.discard()  # stored by now, or refused: the draft is not needed any more
        if status is None:
            return
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)

    async def _receive(self, data: _Data) -> str | None:
        """Read DATA to its end; the answer to it, or None when the connection was lost
        before the end (nothing is stored, nothing answered)."""
        limit = self.data_size_limit
        count = 0
        fragments: list[bytes] = []
        partial = False  # in the middle of a line: a `.` CRLF next is not the end
        too_long = too_much = ended = False
        while self.transport is not None:
            try:
                line: bytes = await self._reader.readuntil(b"\r\n")
            except asyncio.CancelledError:
                log.info("Connection lost during DATA")
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as exc:
                # Over the stream's limit: the rest is drained, and refused at the end.
                too_long = too_long or not too_much
                data.discard()
                line = await self._reader.read(exc.consumed)
            if not partial and line == b".\r\n":
                ended = True
                break
            count += len(line)
            if not too_long and not too_much and limit and count > limit:
                too_much = True
                data.discard()
            partial = not line.endswith(b"\r\n")
            if too_long or too_much:
                # Refused already: nothing of it is kept (aiosmtpd kept the fragments of a
                # line without end, so one endless line grew without bound).
                fragments = []
                continue
            fragments.append(line)
            if not partial:
                whole = bytearray().join(fragments)
                fragments = []
                if len(whole) > self.line_length_limit:
                    too_long = True
                    data.discard()
                else:
                    data.add(whole)
        if not ended:
            log.info("Connection lost during DATA")
            return None
        if too_long:
            return "500 Line too long (see RFC5321 4.5.3.1.6)"
        if too_much:
            return "552 Error: Too much mail data"
        envelope = self.envelope
        assert isinstance(envelope, IntakeEnvelope) and not fragments
        if data.failed is not None:
            log.error("cannot spool a message from %s: %s", envelope.mail_from, data.failed)
            return CANNOT_STORE
        if data.draft is not None:
            envelope.draft = data.draft
        else:
            envelope.original_content = envelope.content = b"".join(data.lines)
            data.lines = []
        status = await self._call_handler_hook("DATA")
        return "250 OK" if status is MISSING else str(status)

    @property
    def in_transaction(self) -> bool:
        """Between MAIL FROM and the answer to the message's data."""
        return self.envelope is not None and self.envelope.mail_from is not None

    def say_goodbye(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(SHUTTING_DOWN.encode() + b"\r\n")
        transport.close()


class IntakeHandler:
    def __init__(
        self,
        mailboxes: Mailboxes,
        spool: Spool,
        health: DatabaseHealth | None = None,
        on_spooled: Callable[[], None] = lambda: None,
        *,
        max_sessions: int = 200,
        max_per_client: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mailboxes = mailboxes
        self.spool = spool
        self.health = health
        self.on_spooled = on_spooled
        self.sessions: set[IntakeSMTP] = set()
        self.stopping = False
        self.max_sessions = max_sessions
        self.max_per_client = max_per_client
        self.per_client: Counter[str] = Counter()
        self.open = 0
        self.clock = clock
        self._turned_away: Counter[str] = Counter()
        self._flood_logged_at: float | None = None

    def admit(self, client: str) -> bool:
        """Take a session for `client`, unless the caps (in total, per client) are reached."""
        if self.open < self.max_sessions and self.per_client[client] < self.max_per_client:
            self.open += 1
            self.per_client[client] += 1
            return True
        self._turned_away[client] += 1
        now = self.clock()
        if self._flood_logged_at is None or now - self._flood_logged_at >= FLOOD_LOG_SECONDS:
            total = sum(self._turned_away.values())
            busiest = ", ".join(f"{c} ×{n}" for c, n in self._turned_away.most_common(3))
            log.warning(
                "turned away %d connection(s) over the session caps (%d open, at most %d, "
                "%d per client) since the last report; most from %s",
                total, self.open, self.max_sessions, self.max_per_client, busiest,
            )  # fmt: skip
            self._turned_away.clear()
            self._flood_logged_at = now
        return False

    def release(self, client: str) -> None:
        self.open -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.stopping:
            return SHUTTING_DOWN
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.mailboxes.kind_of(address) is None:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        draft: SpoolDraft | None = getattr(envelope, "draft", None)
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        mail_from = envelope.mail_from or ""
        if self.health is not None and not await self.health.usable():
            log.warning("database unavailable: message from %s answered 451", mail_from)
            return "451 4.3.0 Mail store temporarily unavailable; please try again later"
        received_at = datetime.now(UTC).isoformat()
        # One spool entry per mailbox kind: the same mail to daily and solicited is two arrivals.
        seen: dict[str, str] = {}
        for rcpt in envelope.rcpt_tos:
            kind = self.mailboxes.kind_of(rcpt)
            if kind is not None and kind not in seen:
                seen[kind] = rcpt
        loop = asyncio.get_running_loop()
        ids = []
        try:
            for kind, rcpt in seen.items():
                env = SpoolEnvelope(
                    mailbox=kind,
                    channel="smtp",
                    mail_from=mail_from,
                    rcpt=rcpt,
                    received_at=received_at,
                )
                if draft is not None:
                    spool_id, durable = await loop.run_in_executor(
                        None, self.spool.stage_draft, draft, env
                    )
                elif len(raw) <= INLINE_SPOOL_BYTES:
                    spool_id, durable = self.spool.stage(raw, env)
                else:
                    spool_id, durable = await loop.run_in_executor(None, self.spool.stage, raw, env)
                await asyncio.wrap_future(durable)
                ids.append(spool_id)
        except OSError as exc:
            log.error("cannot spool a message from %s: %s", mail_from, exc)
            return CANNOT_STORE
        self.on_spooled()
        return f"250 2.0.0 Queued as {ids[0] if ids else 'none'}"

    async def close_sessions(self, grace: float) -> None:
        """Refuse new transactions, let open ones finish (at most `grace` s), close all."""
        self.stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.sessions:
            for smtp in list(self.sessions):
                if not smtp.in_transaction or loop.time() > deadline:
                    smtp.say_goodbye()
                    self.sessions.discard(smtp)
            await asyncio.sleep(0.05)


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The listener's certificate for STARTTLS; a file that will not load is a config error."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"config: [smtp] tls_cert/tls_key cannot be loaded: {reason}") from None
    return context


def smtp_factory(
    handler: IntakeHandler,
    max_bytes: int,
    hostname: str,
    tls: ssl.SSLContext | None = None,
) -> Callable[[], Any]:
    def make() -> SMTP:
        return IntakeSMTP(
            handler,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="Mailroom ESMTP",
            tls_context=tls,
        )

    return make
