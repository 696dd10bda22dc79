"""The SMTP listener (aiosmtpd): `250` only after the raw message is durably spooled.

Unknown recipients are refused at RCPT (`550`: never an open relay); over-size mail at DATA
(`552`, by aiosmtpd's `data_size_limit`); a spool that cannot store the message, or a database
that is down, gives `451` so the sender retries. The fsync runs in a thread, never in the event
loop. STARTTLS is offered when a certificate is configured.

Shutdown (`close_sessions`): no new transaction is accepted (`421`), a session in the middle of
one (after MAIL FROM, during DATA) may finish it and hear its `250`, then every session is told
`421` and closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from ingest.health import DatabaseHealth
from ingest.spool import Spool, SpoolEnvelope
from mailroom.config import MailboxesConfig
from mailroom.errors import UserError

log = logging.getLogger(__name__)

SHUTTING_DOWN = "421 4.3.2 Service shutting down; please try again later"
# A message up to this size is spooled (written and fsynced, well under a millisecond on a local
# disk) on the event loop itself: handing it to a thread and back costs the `250` more, in
# waiting for the interpreter lock, than the write. A larger one is written in a thread, so a
# 25 MB message does not hold up the other sessions.
INLINE_SPOOL_BYTES = 256 * 1024


class IntakeSMTP(SMTP):
    """One SMTP connection, known to its handler so that shutdown can wait for it."""

    def __init__(self, handler: IntakeHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.intake = handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.intake.sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.intake.sessions.discard(self)
        super().connection_lost(error)

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
        mailboxes: MailboxesConfig,
        spool: Spool,
        health: DatabaseHealth | None = None,
        on_spooled: Callable[[], None] = lambda: None,
    ) -> None:
        self.mailboxes = mailboxes
        self.spool = spool
        self.health = health
        self.on_spooled = on_spooled
        self.sessions: set[IntakeSMTP] = set()
        self.stopping = False

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
                if len(raw) <= INLINE_SPOOL_BYTES:
                    ids.append(self.spool.put(raw, env))
                else:
                    ids.append(await loop.run_in_executor(None, self.spool.put, raw, env))
        except OSError as exc:
            log.error("cannot spool a message from %s: %s", mail_from, exc)
            return "451 4.3.0 Cannot store the message now; please try again later"
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
