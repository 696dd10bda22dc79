"""Auto-reply, bounce and loop detection (SPEC §3.6): such messages are never answered."""

from __future__ import annotations

import re
from collections.abc import Iterable

from parser.normalize import fold
from parser.types import DecodedMessage

# Set on everything Mailroom sends, so a copy that comes back is recognised as our own.
OWN_MARKER_HEADER = "X-Mailroom-Origin"

_VACATION_SUBJECT = re.compile(
    r"自动回复|自动答复|休假|不在办公室|外出|out of (the )?office|auto(matic)?[- ]?reply|"
    r"autoreply|vacation|away from (the )?office",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status )?notification|delivery failure|returned mail|"
    r"mail delivery failed|failure notice|退信|系统退信|投递失败|未能送达",
    re.IGNORECASE,
)
_DAEMON_LOCAL = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)$", re.I)


def classify(
    msg: DecodedMessage, envelope_from: str | None, own_addresses: Iterable[str]
) -> str | None:
    """The reason a message must not be answered (`bounce`, `auto_reply`, `own_message`), or None.

    `envelope_from` is the SMTP MAIL FROM ("" for the null sender), None when unknown (IMAP).
    """
    own = {a.lower() for a in own_addresses}
    if msg.header(OWN_MARKER_HEADER) is not None or msg.from_address in own:
        return "own_message"
    if envelope_from is not None and envelope_from.strip("<> ") == "":
        return "bounce"
    local = msg.from_address.partition("@")[0]
    if _DAEMON_LOCAL.match(local):
        return "bounce"
    if msg.content_type == "multipart/report":
        return "bounce"
    if any(
        a.content_type in ("message/delivery-status", "message/feedback-report")
        for a in msg.attachments
    ):
        return "bounce"
    auto_submitted = (msg.header("Auto-Submitted") or "no").strip().lower()
    if not auto_submitted.startswith("no"):
        return "auto_reply"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress-Reply"):
        if msg.header(name) is not None:
            return "auto_reply"
    if (msg.header("Precedence") or "").strip().lower() in ("bulk", "list", "junk"):
        return "auto_reply"
    if msg.header("List-Id") is not None or msg.header("List-Unsubscribe") is not None:
        return "auto_reply"
    subject = fold(msg.subject)
    if _BOUNCE_SUBJECT.search(subject):
        return "bounce"
    if _VACATION_SUBJECT.search(subject):
        return "auto_reply"
    return None
