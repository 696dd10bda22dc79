"""The outbound sender: drains the outbox to the relay, or to a local Maildir when none is set.

Rows are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL so several instances can share
one queue. A failed attempt is retried with exponential back-off and given up after
`MAX_ATTEMPTS`, recorded in the outbox.
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from ledger.db import Ledger
from ledger.filing import retry_delay
from ledger.models import OutboundMessage
from mailroom.config import OutboundConfig

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
BATCH = 50


class Transport:
    """Hands one message to the next hop; raises on failure."""

    def send(self, row_id: int, mail_from: str, to: str, message: bytes) -> None:
        raise NotImplementedError


class MaildirTransport(Transport):
    """Writes each message as a file in a Maildir (`new/`), named by its outbox id."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def send(self, row_id: int, mail_from: str, to: str, message: bytes) -> None:
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        name = f"outbox-{row_id:010d}.{socket.gethostname()}"
        final = self.root / "new" / name
        if final.exists():  # delivered before a crash lost the commit: do not write twice
            return
        tmp = self.root / "tmp" / name
        with open(tmp, "wb") as fh:
            fh.write(message)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, final)


class RelayTransport(Transport):
    def __init__(self, config: OutboundConfig, timeout: float = 30.0) -> None:
        assert config.relay_host
        self.config = config
        self.timeout = timeout

    def send(self, row_id: int, mail_from: str, to: str, message: bytes) -> None:
        cfg = self.config
        assert cfg.relay_host
        with smtplib.SMTP(cfg.relay_host, cfg.relay_port, timeout=self.timeout) as smtp:
            if cfg.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username and cfg.password:
                smtp.login(cfg.username, cfg.password)
            smtp.sendmail(mail_from, [to], message)


def transport_for(config: OutboundConfig) -> Transport:
    if config.relay_host:
        return RelayTransport(config)
    return MaildirTransport(config.maildir)


def deliver_due(
    ledger: Ledger,
    transport: Transport,
    mail_from: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Send what is due; returns how many were sent. One transaction per message."""
    sent = 0
    while True:
        with ledger.transaction() as session:
            now = clock()
            query = (
                select(OutboundMessage)
                .where(OutboundMessage.state == "queued", OutboundMessage.next_attempt_at <= now)
                .order_by(OutboundMessage.id)
                .limit(1)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row = session.scalars(query).first()
            if row is None:
                return sent
            row.attempts += 1
            try:
                transport.send(row.id, mail_from, row.to_address, row.message)
            except (OSError, smtplib.SMTPException) as exc:
                row.last_error = f"{type(exc).__name__}: {exc}"
                permanent = isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500
                if permanent or row.attempts >= MAX_ATTEMPTS:
                    row.state = "failed"
                else:
                    row.next_attempt_at = now + retry_delay(row.attempts)
                log.warning("outbox %s to %s: %s", row.id, row.to_address, row.last_error)
                continue
            row.state = "sent"
            row.sent_at = now
            row.last_error = None
            sent += 1
        if sent >= BATCH:
            return sent
