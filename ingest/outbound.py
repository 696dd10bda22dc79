"""The outbound sender: drains the outbox to the relay, or to a local Maildir when none is set.

Rows are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL so several instances can share
one queue: each row is sent by one of them. A failed attempt is retried with exponential
back-off; a permanent refusal (`5xx` to the message) or `max_attempts` failures end it
`failed`, with the last error, in the outbox. Trouble with the relay itself (down, TLS, login)
is never held against a message: every due message waits for the next attempt, and none is
given up for it.

Each message leaves with a return path of its own (`[outbound] verp`, `ledger.bounces`), so a
bounce that comes back says which outbox row it is about; Mailroom greets the relay with
`[outbound] helo_name` (else the machine's own name, as Python finds it).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingest.settings import Outbound
from ledger import outbox
from ledger.bounces import ReturnPaths
from ledger.compose import CRLF
from ledger.db import Ledger
from ledger.models import OutboundMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off: `first`, twice that, four times … at most `longest`."""

    first: timedelta = timedelta(minutes=1)
    longest: timedelta = timedelta(hours=6)
    max_attempts: int = 10

    def delay(self, attempts: int) -> timedelta:
        return min(self.first * (1 << min(max(attempts - 1, 0), 30)), self.longest)

    @classmethod
    def of(cls, config: Outbound) -> RetryPolicy:
        return cls(first=timedelta(seconds=config.retry_seconds), max_attempts=config.max_attempts)


class RelayUnavailable(Exception):
    """The relay could not be reached, or refused our TLS or login: no fault of the message."""


class Transport:
    """Hands one message of `size` bytes to the next hop, given in pieces that each end a line
    (a desk forward with its large original read in as it goes: `outbox.pieces_of`); raises
    on failure. The first piece is taken before anything is handed over: a message that
    cannot be made fails before the next hop sees any of it."""

    def send(
        self, row_id: int, mail_from: str, to: str, pieces: Iterable[bytes], size: int
    ) -> None:
        raise NotImplementedError


class MaildirTransport(Transport):
    """Writes each message as a file in a Maildir (`new/`), named by its outbox id."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def send(
        self, row_id: int, mail_from: str, to: str, pieces: Iterable[bytes], size: int
    ) -> None:
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        name = f"outbox-{row_id:010d}.{socket.gethostname()}"
        final = self.root / "new" / name
        if final.exists():  # delivered before a crash lost the commit: do not write twice
            return
        tmp = self.root / "tmp" / name
        pieces = _started(pieces)
        with open(tmp, "wb") as fh:
            for piece in pieces:
                fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, final)


class RelayTransport(Transport):
    """SMTP to the configured relay, with STARTTLS and AUTH when configured."""

    def __init__(self, config: Outbound, timeout: float = 30.0) -> None:
        assert config.relay_host
        self.config = config
        self.timeout = timeout

    def _tls(self) -> ssl.SSLContext:
        ca_file = self.config.ca_file
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def send(
        self, row_id: int, mail_from: str, to: str, pieces: Iterable[bytes], size: int
    ) -> None:
        cfg = self.config
        pieces = _started(pieces)
        assert cfg.relay_host
        try:
            smtp = smtplib.SMTP(
                cfg.relay_host,
                cfg.relay_port,
                local_hostname=cfg.helo_name or None,
                timeout=self.timeout,
            )
        except (OSError, smtplib.SMTPException) as exc:
            raise RelayUnavailable(
                f"cannot reach {cfg.relay_host}:{cfg.relay_port}: {exc}"
            ) from exc
        with smtp:
            try:
                if cfg.starttls:
                    smtp.starttls(context=self._tls())
                if cfg.username and cfg.password:
                    smtp.login(cfg.username, cfg.password)
            except (OSError, smtplib.SMTPException) as exc:
                raise RelayUnavailable(f"relay refused TLS or login: {exc}") from exc
            _stream(smtp, mail_from, to, pieces, size)


def _started(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The pieces with the first already made: a mail that cannot be made (its original
    gone) fails here, before the next hop sees any of it."""
    rest = iter(pieces)
    return itertools.chain((next(rest, b""),), rest)


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _stream(
    smtp: smtplib.SMTP, mail_from: str, to: str, pieces: Iterable[bytes], size: int
) -> None:
    """`smtp.sendmail(mail_from, [to], message)` for a message of `size` bytes, sent piece by
    piece as it comes, never joined: the same commands (`SIZE` where the relay takes it), the
    same dot-stuffing (line endings left as they are, as `smtplib` leaves those of bytes),
    the same exceptions and the same reset or close for the same answers. A failure while
    the message is being sent closes the connection: the relay drops what it had."""
    smtp.ehlo_or_helo_if_needed()
    options = [f"size={size}"] if smtp.does_esmtp and smtp.has_extn("size") else []
    code, answer = smtp.mail(mail_from, options)
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPSenderRefused(code, answer, mail_from)
    code, answer = smtp.rcpt(to)
    if code not in (250, 251):
        _abandon(smtp, code)
        raise smtplib.SMTPRecipientsRefused({to: (code, answer)})
    code, answer = smtp.docmd("data")
    if code != 354:
        raise smtplib.SMTPDataError(code, answer)
    last = b""  # the last two bytes sent
    try:
        for piece in pieces:
            if not piece:
                continue
            stuffed = _LEADING_DOT.sub(b"..", piece)
            if piece[:1] == b"." and last and last[-1:] != b"\n":
                stuffed = stuffed[1:]  # not a line's first dot: the last piece ended mid-line
            smtp.send(stuffed)
            last = (last + piece[-2:])[-2:]
        smtp.send((b"" if last == CRLF else CRLF) + b"." + CRLF)
    except BaseException:
        smtp.close()
        raise
    code, answer = smtp.getreply()
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, answer)


def _abandon(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal: the connection closed on `421`, else the transaction reset."""
    if code == 421:
        smtp.close()
    else:
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            smtp.rset()


def transport_for(config: Outbound) -> Transport:
    if config.relay_host:
        return RelayTransport(config)
    return MaildirTransport(config.maildir)


def _permanent(exc: Exception) -> bool:
    """A `5xx` answer to the message itself, or a mail that cannot be made: retrying cannot
    help."""
    if isinstance(exc, outbox.OriginalMissing):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


def _never() -> bool:
    return False


def deliver_due(
    ledger: Ledger,
    transport: Transport,
    mail_from: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    retry: RetryPolicy = RetryPolicy(),
    should_stop: Callable[[], bool] = _never,
    return_paths: ReturnPaths | None = None,
) -> int:
    """Send what is due; returns how many were sent. One transaction per message.

    The row stays locked while it is handed over, so another instance skips it; it is marked
    `sent` only after the next hop accepted it (a crash in between sends it again). With
    `return_paths` each row goes out from its own return path, else from `mail_from`.
    """
    sent = 0
    while not should_stop():
        with ledger.transaction() as session:
            now = clock()
            row = outbox.claim_due(session, now)
            if row is None:
                return sent
            sender = mail_from
            if return_paths is not None:
                # The claim is not written before the hand-over: on SQLite that would hold the
                # one write lock for as long as the relay takes.
                with session.no_autoflush:
                    sender = return_paths.of(session, row.id, now)
            try:
                size = outbox.size_of(session, row)
                pieces = outbox.pieces_of(session, row)
                transport.send(row.id, sender, row.to_address, pieces, size)
            except RelayUnavailable as exc:
                # Nothing will get through now: every due message waits for the same retry.
                later = now + retry.delay(row.attempts)
                outbox.retry_later(row, f"{exc}", later)
                session.flush()
                outbox.postpone_due(session, now, later)
                log.warning("relay unavailable (%s); next attempt at %s", exc, _at(row))
                return sent
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if _permanent(exc) or row.attempts >= retry.max_attempts:
                    outbox.mark_failed(row, error)
                    log.error("outbox %s to %s failed: %s", row.id, row.to_address, row.last_error)
                else:
                    outbox.retry_later(row, error, now + retry.delay(row.attempts))
                    log.warning(
                        "outbox %s to %s: %s; next attempt at %s",
                        row.id,
                        row.to_address,
                        row.last_error,
                        _at(row),
                    )
                continue
            outbox.mark_sent(row, now)
            sent += 1
    return sent


def _at(row: OutboundMessage) -> str:
    return row.next_attempt_at.isoformat(timespec="seconds")
