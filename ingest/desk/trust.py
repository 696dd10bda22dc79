"""Who may command the desk: a registered editor, with a valid reply key for the item, or an
`Approved:` passphrase of that editor, or (with `require_dkim`) a DKIM signature of the
sender's domain that verifies. Anything else is refused with a desk reason code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ingest.desk.keys import DnsTxt, dkim_passes, find_keys, tracking_numbers_in
from ingest.settings import DeskSettings
from ledger.editors import check_passphrase, find_editor, passphrase_failures
from ledger.models import Submission
from parser.commands import Script
from parser.types import DecodedMessage


@dataclass(frozen=True)
class Trust:
    """The editor a message speaks for, the item its key names, and whether it may name any
    item (a passphrase or a verified DKIM signature) or only the keyed one."""

    editor: str
    keyed: Submission | None
    trusted: bool


class Untrusted(Exception):
    """A message that may not command; `editor` is whom to tell (None: tell nobody)."""

    def __init__(self, code: str, editor: str | None) -> None:
        super().__init__(code)
        self.code = code
        self.editor = editor


def admit(
    session: Session,
    settings: DeskSettings,
    secret: Callable[[], str],
    msg: DecodedMessage,
    raw: bytes,
    rcpt: str,
    script: Script,
    now: datetime,
    dns_txt: DnsTxt | None,
) -> Trust:
    """The message's standing at the desk, or `Untrusted` with the reason."""
    editor = find_editor(session, msg.from_address, now.astimezone(settings.office.zone).date())
    if editor is None:
        # Not a registered editor: no reply, so a forger learns nothing (and no backscatter).
        raise Untrusted("not_an_editor", None)

    def refuse(code: str) -> Untrusted:
        return Untrusted(code, editor.email)

    dkim_ok = False
    if settings.require_dkim:
        dkim_ok = dkim_passes(raw, msg.from_address.rpartition("@")[2], dns_txt)
        if not dkim_ok:
            raise refuse("dkim_failed")
    keys = find_keys(secret(), msg, settings.mailboxes.desk, rcpt)
    approved = script.approved or msg.header("Approved")
    passphrase_ok = False
    if approved:
        lockout = timedelta(minutes=settings.passphrase_lockout_minutes)
        if (
            passphrase_failures(session, editor.email, now - lockout)
            >= settings.passphrase_attempts
        ):
            raise refuse("passphrase_locked")  # too many wrong guesses lately: not even tried
        passphrase_ok = check_passphrase(session, editor.email, approved)
        if not passphrase_ok:
            raise refuse("bad_passphrase")
    if len(keys.items) > 1:
        raise refuse("conflicting_keys")
    keyed = session.get(Submission, next(iter(keys.items))) if keys.items else None
    if not script.lines:
        raise refuse("no_commands")
    trusted = passphrase_ok or dkim_ok
    if keyed is None and not trusted:
        raise refuse("bad_reply_key" if keys.invalid else "no_reply_key")
    if keyed is not None and not trusted:
        named = tracking_numbers_in(msg.subject)
        if named and keyed.tracking_no not in named:
            raise refuse("key_for_other_item")
    return Trust(editor.email, keyed, trusted)
