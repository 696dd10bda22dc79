"""`mailroom send-examples`: the example items sent to a running `serve`, dated today.

A mail client stamps each message it sends with the time (`Date:`) and a new Message-ID, and
an officer types today's date into the sign-off. The files in `examples/` were written once,
so sent as they are they would arrive with an old date (and the receipt would warn about the
computer's clock and a late report). This sends them as a client would send them today.
"""

from __future__ import annotations

import re
import secrets
import smtplib
from collections.abc import Sequence
from datetime import datetime, tzinfo
from email import message_from_bytes, policy
from email.message import Message
from email.utils import format_datetime, parseaddr
from pathlib import Path

from mailroom.config import Config
from mailroom.errors import UserError

_SIGNOFF_DATE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")


def _today_in(text: str, today: str) -> str:
    """Every real date written 2026年11月22日 becomes `today`; an impossible one (the malformed
    example's 2026年13月5日) stays, since it is there to be refused."""

    def replace(m: re.Match[str]) -> str:
        y, mo, d = (int(g) for g in m.groups())
        try:
            datetime(y, mo, d)
        except ValueError:
            return m.group(0)
        return today

    return _SIGNOFF_DATE.sub(replace, text)


def stamped(raw: bytes, now: datetime, zone: tzinfo) -> bytes:
    """`raw` as a mail client would send it at `now`: Date, Message-ID and sign-off dates."""
    msg = message_from_bytes(raw, policy=policy.compat32)
    local = now.astimezone(zone)
    today = f"{local.year}年{local.month}月{local.day}日"
    domain = parseaddr(str(msg.get("From", "")))[1].rpartition("@")[2] or "localhost"
    msg.replace_header("Date", format_datetime(local))
    message_id = f"<{local:%Y%m%d%H%M%S}{secrets.randbelow(10**7):07d}@{domain}>"
    if msg.get("Message-ID") is None:
        msg["Message-ID"] = message_id
    else:
        msg.replace_header("Message-ID", message_id)
    for part in msg.walk():
        if part.get_content_maintype() != "text" or part.is_multipart():
            continue
        charset = part.get_content_charset() or "utf-8"
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        text = data.decode("gb18030" if charset.lower() in ("gb2312", "gbk") else charset)
        del part["Content-Transfer-Encoding"]
        part.set_payload(_today_in(text, today), charset=charset)
    return msg.as_bytes(policy=policy.SMTP)


def _sender(raw: bytes, path: Path) -> str:
    msg: Message = message_from_bytes(raw, policy=policy.compat32)
    address = parseaddr(str(msg.get("From", "")))[1]
    if not address:
        raise UserError(f"{path} has no From address to send it from")
    return address


def send_examples(config: Config, paths: Sequence[Path], now: datetime) -> list[str]:
    """Send each file to the daily mailbox of the `serve` this config describes; one line
    per message sent, for the operator."""
    messages = []
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        messages.append((path, _sender(raw, path), stamped(raw, now, config.zone)))
    host, port = config.smtp.listen_host, config.smtp.listen_port
    to = config.mailboxes.daily
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            for _path, sender, data in messages:
                smtp.sendmail(sender, [to], data)
    except OSError as exc:
        raise UserError(
            f"cannot send to {host}:{port} ({exc.strerror or exc}): is `mailroom serve` running?"
        ) from None
    except smtplib.SMTPException as exc:
        raise UserError(f"{host}:{port} refused the examples: {exc}") from None
    return [f"sent {path} from {sender} to {to}" for path, sender, _ in messages]
