"""The SMTP listener (aiosmtpd): `250` only after the raw message is durably spooled.

Unknown recipients are refused at RCPT (`550`: never an open relay); over-size mail at DATA
(`552`, by aiosmtpd's `data_size_limit`); a spool that cannot store the message gives `451`
so the sender retries. The fsync runs in a thread, never in the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from ingest.spool import Spool, SpoolEnvelope
from mailroom.config import MailboxesConfig

log = logging.getLogger(__name__)


class IntakeHandler:
    def __init__(
        self,
        mailboxes: MailboxesConfig,
        spool: Spool,
        on_spooled: Callable[[], None] = lambda: None,
    ) -> None:
        self.mailboxes = mailboxes
        self.spool = spool
        self.on_spooled = on_spooled

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
        received_at = datetime.now(UTC).isoformat()
        mail_from = envelope.mail_from or ""
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
                ids.append(await loop.run_in_executor(None, self.spool.put, raw, env))
        except OSError as exc:
            log.error("cannot spool a message from %s: %s", mail_from, exc)
            return "451 4.3.0 Cannot store the message now; please try again later"
        self.on_spooled()
        return f"250 2.0.0 Queued as {ids[0] if ids else 'none'}"


def smtp_factory(handler: IntakeHandler, max_bytes: int, hostname: str) -> Callable[[], Any]:
    def make() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="Mailroom ESMTP",
        )

    return make
