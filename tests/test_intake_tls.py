"""The listener offers STARTTLS when a certificate is configured, and only then."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.service import LedgerView, MailroomInstance, wait_for
from tests.smtpsink import self_signed_certificate

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock

VALID = (REPO / "examples" / "valid.eml").read_bytes()


def filed(db_url: str) -> int:
    view = LedgerView(db_url)
    try:
        return view.states()["filed"]
    finally:
        view.close()


@pytest.mark.slow
def test_starttls_is_offered_with_a_certificate_and_mail_goes_through_it(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    secured = MailroomInstance(
        tmp_path / "secured",
        f"sqlite:///{tmp_path}/secured.db",
        **{"smtp.tls_cert": str(cert), "smtp.tls_key": str(key)},
    )
    plain = MailroomInstance(tmp_path / "plain", f"sqlite:///{tmp_path}/plain.db")
    try:
        secured.init()
        secured.start()
        with smtplib.SMTP("127.0.0.1", secured.port, timeout=30) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("starttls")
            smtp.starttls(context=ssl.create_default_context(cafile=str(cert)))
            smtp.ehlo()
            smtp.sendmail("liming@th.gz.test", ["inf@mailroom.test"], VALID)
        wait_for(lambda: filed(secured.db_url) == 1, what="the item sent over TLS")

        plain.init(demo=False)
        plain.start()
        with smtplib.SMTP("127.0.0.1", plain.port, timeout=30) as smtp:
            smtp.ehlo()
            assert not smtp.has_extn("starttls")
    finally:
        secured.close()
        plain.close()


def test_a_certificate_that_will_not_load_stops_serve_with_one_line(tmp_path: Path) -> None:
    broken = MailroomInstance(
        tmp_path / "broken",
        f"sqlite:///{tmp_path}/broken.db",
        **{"smtp.tls_cert": str(tmp_path / "missing.pem"), "smtp.tls_key": str(tmp_path / "k")},
    )
    broken.init(demo=False)
    result = broken.cli("serve", check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "[smtp] tls_cert/tls_key cannot be loaded" in result.stderr
