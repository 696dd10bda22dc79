"""A real SMTP sink on 127.0.0.1 (aiosmtpd) that keeps what it receives, for outbound tests."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.pgcluster import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool = False  # the session had done STARTTLS
    login: str | None = None  # the user it authenticated as
    helo: str = ""  # the name the client greeted with (HELO/EHLO)
    mail_options: list[str] = field(default_factory=list)  # MAIL FROM's parameters (SIZE=…)


@dataclass
class SinkHandler:
    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        assert isinstance(data, bytes)
        login = session.auth_data.login.decode() if session.authenticated else None
        self.messages.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                data,
                tls=session.ssl is not None,
                login=login,
                helo=str(session.host_name or ""),
                mail_options=list(envelope.mail_options),
            )
        )
        return "250 OK"


class SmtpSink:
    """`smtp_parameters` go to aiosmtpd's SMTP (e.g. `tls_context`, `authenticator`)."""

    def __init__(
        self, port: int | None = None, handler: SinkHandler | None = None, **smtp_parameters: Any
    ) -> None:
        self.port = port or free_port()
        self.handler = handler or SinkHandler()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, **smtp_parameters
        )
        self.running = False

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def start(self) -> SmtpSink:
        self.controller.start()
        self.running = True
        return self

    def stop(self, missing_ok: bool = False) -> None:
        if missing_ok and not self.running:
            return
        self.controller.stop()
        self.running = False


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key) that is its own CA: trust it by `cafile`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context
