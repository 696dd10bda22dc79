"""The editors' desk (SPEC §4): forwards with reply keys, and editors' commands applied safely.

A filed item is forwarded to each editor (or to `[mailboxes] desk_forward`) with a reply key:
an HMAC of the item id under the reply-key secret, in the Reply-To plus-address
(`desk+<key>@…`), in the subject (`[#<key>]`) and in the Message-ID, so a reply carries it in
its recipient, its subject or its References. A command is applied only when its sender is a
registered editor and the message carries a valid key for the item, or an `Approved:`
passphrase of that editor, or (with `require_dkim`) a DKIM signature of the sender's domain
that verifies. Everything else ends `command_refused` and changes nothing.

A reply to a forward is applied whole or not at all; in a batch each item line stands alone.
Each applied command is a desk action and an audit row; the editor gets a confirmation, the
unit's officer a notice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import dkim
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest.desk_scoring import SCORING_VERBS, DeskScoring, Refused, Resolved
from ingest.replies import TEMPLATE_DIR, ReplyWriter, readdressed, wire_bytes
from ingest.settings import DeskSettings
from ledger import audit
from ledger.calendar import quarter_of
from ledger.editors import (
    REPLY_KEY_SECRET,
    check_passphrase,
    editor_addresses,
    find_editor,
    passphrase_failures,
    stored_secret,
    unit_officers,
)
from ledger.filing import queue_mail
from ledger.models import DeskAction, Intake, OutboundMessage, Person, Submission, Unit
from ledger.rulebook import Rulebook
from parser.classify import OWN_MARKER_HEADER
from parser.commands import CommandLine, Script, Tag, parse_commands
from parser.normalize import fold
from parser.types import DecodedMessage, Problem

log = logging.getLogger(__name__)
LARGE_FORWARD_BYTES = 1_000_000  # forwards above this are flushed one by one

# A TXT lookup as dkimpy calls it: (name, timeout=…) → the record's bytes, or None.
DnsTxt = Callable[..., bytes | None]

_KEY_MAC_CHARS = 20  # 100 bits of HMAC-SHA256, base32
# ASCII only: under Unicode matching \d takes ٣ (Arabic-Indic three) and [a-z] with IGNORECASE
# takes ſ and K (Kelvin), none of which a key holds.
_KEY = r"([0-9]{1,12})-([a-z2-7]{20})"
_KEY_IN_SUBJECT = re.compile(r"\[#" + _KEY + r"\]", re.IGNORECASE | re.ASCII)
_KEY_IN_MSGID = re.compile(r"<desk\." + _KEY + r"\.", re.IGNORECASE | re.ASCII)
_TRACKING_IN_SUBJECT = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{1,16}-\d{4}-\d{1,9})(?!\d)", re.ASCII)


def reply_key(secret: str, item_id: int) -> str:
    """`<item id>-<mac>`: lowercase letters and digits only, safe in an address local part."""
    mac = hmac.new(secret.encode("utf-8"), f"mailroom-desk-v1:{item_id}".encode(), hashlib.sha256)
    return f"{item_id}-{base64.b32encode(mac.digest()).decode('ascii').lower()[:_KEY_MAC_CHARS]}"


def key_item(secret: str, item_id: str, mac: str) -> int | None:
    """The item id a key names, when its MAC is right; None for a forged or foreign key."""
    if not (item_id.isascii() and item_id.isdigit()):
        return None
    expected = reply_key(secret, int(item_id)).encode("ascii")
    given = f"{item_id}-{mac.lower()}".encode("utf-8", "replace")
    return int(item_id) if hmac.compare_digest(expected, given) else None


@dataclass(frozen=True)
class FoundKeys:
    """The valid keys a message carries (item id → where) and how many were not valid."""

    items: dict[int, str] = field(default_factory=dict)
    invalid: int = 0


def find_keys(secret: str, msg: DecodedMessage, desk_address: str, rcpt: str = "") -> FoundKeys:
    """Keys in the recipient address, the subject and In-Reply-To/References."""
    local, _, domain = desk_address.lower().rpartition("@")
    in_address = re.compile(
        re.escape(local) + r"\+" + _KEY + "@" + re.escape(domain), re.IGNORECASE | re.ASCII
    )
    candidates: list[tuple[str, str, str]] = []
    for address in (rcpt, *msg.recipients):
        m = in_address.fullmatch(address.strip())
        if m:
            candidates.append(("address", m.group(1), m.group(2)))
    for m in _KEY_IN_SUBJECT.finditer(fold(msg.subject)):
        candidates.append(("subject", m.group(1), m.group(2)))
    for ref in (msg.in_reply_to, *reversed(msg.references)):
        m = _KEY_IN_MSGID.match(ref or "")
        if m:
            candidates.append(("references", m.group(1), m.group(2)))
    items: dict[int, str] = {}
    invalid = 0
    for where, item_id, mac in candidates:
        item = key_item(secret, item_id, mac)
        if item is None:
            invalid += 1
        else:
            items.setdefault(item, where)
    return FoundKeys(items, invalid)


def dkim_passes(raw: bytes, from_domain: str, dns_txt: DnsTxt | None) -> bool:
    """True when a DKIM signature of the From domain (or its parent) verifies."""
    if not from_domain:
        return False
    try:
        checker = dkim.DKIM(raw, minkey=1024)
        count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
        for index in range(count):
            ok = (
                checker.verify(idx=index, dnsfunc=dns_txt) if dns_txt else checker.verify(idx=index)
            )
            signer = (checker.domain or b"").decode("ascii", "replace").lower()
            if ok and (from_domain == signer or from_domain.endswith("." + signer)):
                return True
    except dkim.DKIMException as exc:
        log.info("DKIM check failed: %s", exc)
    return False


@dataclass
class LineOutcome:
    line: CommandLine
    applied: bool = False
    code: str | None = None
    detail: str = ""
    label: str = ""
    tracking_no: str | None = None
    unit_id: int | None = None
    counted_at: datetime | None = None  # the quarter whose total the editor is shown


@dataclass
class _Notice:
    item: Submission
    unit: Unit
    events: list[tuple[str, str]] = field(default_factory=list)  # (verb, what)


class _GroupRefused(Exception):
    """Raised inside a savepoint so a reply that does not apply whole rolls back."""


class Desk:
    def __init__(
        self,
        settings: DeskSettings,
        rulebook: Rulebook,
        replies: ReplyWriter,
        dns_txt: DnsTxt | None = None,
        language: str = "zh-Hans",
    ) -> None:
        self.settings = settings
        self.rulebook = rulebook
        self.replies = replies
        self.zone = settings.office.zone
        self.dns_txt = dns_txt
        self.scoring = DeskScoring(rulebook, self.zone)
        self.reasons: dict[str, str] = tomllib.loads(
            (TEMPLATE_DIR / language / "desk_reasons.toml").read_text(encoding="utf-8")
        )
        self._secret: str | None = settings.reply_key_secret
        self._notices: dict[int, _Notice] = {}

    # --- the secret and the forward ------------------------------------------------------

    def secret(self, session: Session, now: datetime) -> str:
        if self._secret is None:
            self._secret = stored_secret(session, REPLY_KEY_SECRET, now)
        return self._secret

    def desk_recipients(self, session: Session) -> list[str]:
        configured = self.settings.mailboxes.desk_forward
        return list(configured) if configured else editor_addresses(session)

    def _address(self, local: str, domain: str, name: str) -> Address:
        return Address(display_name=name, username=local, domain=domain)

    def _mail(
        self,
        *,
        to: str,
        subject: str,
        kind: str,
        template: str,
        context: dict[str, Any],
        now: datetime,
        reply_to: str | None = None,
        message_id: str | None = None,
        in_reply_to: DecodedMessage | None = None,
    ) -> EmailMessage:
        msg = EmailMessage()
        local, _, domain = self.replies.sender.partition("@")
        msg["From"] = self._address(local, domain, self.replies.sender_name)
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = message_id or (
            f"<mailroom.{kind}.{secrets.token_hex(8)}@{domain or 'localhost'}>"
        )
        if reply_to:
            msg["Reply-To"] = reply_to
        if in_reply_to is not None and in_reply_to.message_id:
            msg["In-Reply-To"] = in_reply_to.message_id
            msg["References"] = " ".join([*in_reply_to.references, in_reply_to.message_id])
        msg["Auto-Submitted"] = "auto-generated" if kind == "desk" else "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
        msg[OWN_MARKER_HEADER] = kind
        context = {**context, "office_name": self.replies.sender_name, "now": now}
        text = self.replies.env.get_template(f"{template}.txt.j2").render(context)
        html = self.replies.env.get_template(f"{template}.html.j2").render(context)
        msg.set_content(text, charset="utf-8")
        msg.add_alternative(html, subtype="html", charset="utf-8")
        return msg

    def forward(
        self,
        session: Session,
        item: Submission,
        unit: Unit,
        raw: bytes,
        warnings: tuple[Problem, ...],
        now: datetime,
    ) -> int:
        """Queue the desk forward of a filed item to every desk recipient; returns how many.

        `warnings` are the receipt's, with their figures (the item row keeps only their codes).
        """
        recipients = self.desk_recipients(session)
        if not recipients:
            log.warning("item %s filed but no editor is registered to forward it to", item.id)
            return 0
        key = reply_key(self.secret(session, now), item.id)
        local, _, domain = self.settings.mailboxes.desk.partition("@")
        reply_to = str(self._address(f"{local}+{key}", domain, "编辑台"))
        quarter = quarter_of(item.received_at, self.zone, self.rulebook.calendar)
        context = {
            "item": item,
            "unit": unit,
            "quarter": quarter.label,
            "received_local": self.replies.local_time(item.received_at),
            "warnings": [self.replies.explain(w) for w in warnings],
            "key": key,
            "examples": self.scoring.example_tags(),
        }
        subject = f"【待编】{item.tracking_no} {unit.name}：{item.title} [#{key}]"

        def message_id() -> str:
            return f"<desk.{key}.{secrets.token_hex(8)}@{domain or 'localhost'}>"

        # Every recipient gets the same forward: render and serialise it once, then readdress.
        msg = self._mail(
            to=recipients[0],
            subject=subject,
            kind="desk",
            template="desk_forward",
            context=context,
            now=now,
            reply_to=reply_to,
            message_id=message_id(),
        )
        # The original as a base64 .eml file: message/rfc822 may not be encoded, and the
        # original's own lines may be longer than SMTP allows.
        msg.add_attachment(
            raw,
            maintype="application",
            subtype="octet-stream",
            filename=f"{item.tracking_no}.eml",
        )
        wire = wire_bytes(msg)
        del msg
        for n, to in enumerate(recipients):
            copy = wire if n == 0 else readdressed(wire, {"To": to, "Message-ID": message_id()})
            row = queue_mail(
                session,
                kind="desk",
                to_address=to,
                subject=subject,
                message=copy,
                now=now,
                intake_id=item.intake_id,
            )
            if len(copy) > LARGE_FORWARD_BYTES:
                # Written out and let go at once: a large original is held once, not per editor.
                session.flush()
                session.expunge(row)
            del copy, row
        return len(recipients)

    # --- an editor's message ----------------------------------------------------------------

    def handle(
        self,
        session: Session,
        intake: Intake,
        msg: DecodedMessage,
        raw: bytes,
        rcpt: str,
        now: datetime,
    ) -> None:
        """Judge and apply one message to the desk; sets the intake's state and reasons."""
        script = parse_commands(msg.body_text, self.scoring.bonus_verbs())
        editor = find_editor(session, msg.from_address)
        source = f"intake:{intake.id} {msg.message_id or ''}".strip()
        intake.details = {**(intake.details or {}), "command_lines": len(script.lines)}

        def refuse(code: str, *, tell: bool = True) -> None:
            intake.state, intake.reasons = "command_refused", [code]
            if editor is not None and tell:
                self._confirm(session, intake, msg, editor.email, [], script, now, problem=code)

        if editor is None:
            # Not a registered editor: no reply, so a forger learns nothing (and no backscatter).
            refuse("not_an_editor", tell=False)
            return
        dkim_ok = False
        if self.settings.require_dkim:
            dkim_ok = dkim_passes(raw, msg.from_address.rpartition("@")[2], self.dns_txt)
            if not dkim_ok:
                refuse("dkim_failed")
                return
        keys = find_keys(self.secret(session, now), msg, self.settings.mailboxes.desk, rcpt)
        approved = script.approved or msg.header("Approved")
        passphrase_ok = False
        if approved:
            lockout = timedelta(minutes=self.settings.passphrase_lockout_minutes)
            failures = passphrase_failures(session, editor.email, now - lockout)
            if failures >= self.settings.passphrase_attempts:
                # Too many wrong guesses lately: this one is not even tried.
                refuse("passphrase_locked")
                return
            passphrase_ok = check_passphrase(session, editor.email, approved)
            if not passphrase_ok:
                refuse("bad_passphrase")
                return
        if len(keys.items) > 1:
            refuse("conflicting_keys")
            return
        keyed: Submission | None = None
        if keys.items:
            keyed = session.get(Submission, next(iter(keys.items)))
        if not script.lines:
            refuse("no_commands")
            return
        trusted = passphrase_ok or dkim_ok
        if keyed is None and not trusted:
            refuse("bad_reply_key" if keys.invalid else "no_reply_key")
            return
        if keyed is not None and not trusted:
            named = {m.group(1).upper() for m in _TRACKING_IN_SUBJECT.finditer(msg.subject)}
            if named and keyed.tracking_no not in named:
                refuse("key_for_other_item")
                return

        outcomes = self._apply(session, script, keyed, trusted, editor.email, source, now)
        applied = [o for o in outcomes if o.applied]
        refused_codes = sorted({o.code for o in outcomes if o.code})
        intake.state = "command" if applied else "command_refused"
        intake.reasons = refused_codes
        intake.details = {
            **intake.details,
            "applied": len(applied),
            "refused": len(outcomes) - len(applied),
        }
        self._confirm(session, intake, msg, editor.email, outcomes, script, now)

    def _apply(
        self,
        session: Session,
        script: Script,
        keyed: Submission | None,
        trusted: bool,
        editor: str,
        source: str,
        now: datetime,
    ) -> list[LineOutcome]:
        reply_group = [ln for ln in script.lines if ln.tracking_no is None and not ln.header]
        groups = ([reply_group] if reply_group else []) + [
            [ln] for ln in script.lines if ln.tracking_no is not None
        ]
        self._notices = {}
        outcomes: list[LineOutcome] = []
        for group in groups:
            results = [LineOutcome(ln, tracking_no=ln.tracking_no) for ln in group]
            notices_before = {k: list(v.events) for k, v in self._notices.items()}
            try:
                with session.begin_nested():
                    for result in results:
                        self._apply_line(session, result, keyed, trusted, editor, source, now)
                    if any(not r.applied for r in results):
                        raise _GroupRefused
            except _GroupRefused:
                for r in results:
                    if r.applied:
                        r.applied, r.code = False, "reply_not_applied_whole"
                for item_id in list(self._notices):
                    if item_id in notices_before:
                        self._notices[item_id].events = notices_before[item_id]
                    else:
                        del self._notices[item_id]
            outcomes.extend(results)
        self._send_notices(session, source, now)
        return outcomes

    def _item(
        self, session: Session, result: LineOutcome, keyed: Submission | None, trusted: bool
    ) -> Submission:
        line = result.line
        if line.tracking_no is None:
            if keyed is None:
                raise Refused("no_item")
            return keyed
        item = session.scalars(
            select(Submission).where(func.upper(Submission.tracking_no) == line.tracking_no)
        ).first()
        if item is None:
            raise Refused("unknown_item")
        if not trusted and (keyed is None or keyed.id != item.id):
            raise Refused("key_for_other_item")
        return item

    def _apply_line(
        self,
        session: Session,
        result: LineOutcome,
        keyed: Submission | None,
        trusted: bool,
        editor: str,
        source: str,
        now: datetime,
    ) -> None:
        line = result.line
        try:
            if line.error or line.tag is None:
                raise Refused(line.error or "unknown_tag")
            tag = line.tag
            item: Submission | None = None
            if tag.verb != "deduct" or line.tracking_no is not None or keyed is not None:
                item = self._item(session, result, keyed, trusted)
                result.tracking_no = item.tracking_no
            if tag.verb == "undo":
                self._undo(session, result, tag, item, editor, source, now)
                return
            if item is not None and item.status != "filed" and tag.verb != "deduct":
                raise Refused("item_not_current")
            if tag.verb in ("decline", "return"):
                assert item is not None
                if tag.verb == "return" and not tag.text:
                    raise Refused("missing_reason")
                resolved = Resolved(
                    verb=tag.verb,
                    key=tag.verb,
                    label="不采用" if tag.verb == "decline" else "退回修改",
                    note=tag.text,
                )
                event_ref = None
            elif tag.verb in SCORING_VERBS:
                resolved = self.scoring.resolve(session, tag, item)
                event_ref = None
            else:
                raise Refused("unknown_tag")
            unit = self._unit_of(session, resolved, item)
            if not trusted and item is not None and unit.id != item.unit_id:
                raise Refused("key_for_other_item")  # a key covers its own item's unit only
            if item is not None and self._active(session, item.id, resolved.key):
                raise Refused("already_recorded", resolved.label)
            if resolved.verb in SCORING_VERBS:
                event_ref = self.scoring.record(
                    session, resolved, item, by=editor, at=now, source=source
                )
            action = DeskAction(
                submission_id=item.id if item else None,
                unit_id=unit.id,
                editor=editor,
                verb=resolved.verb,
                key=resolved.key,
                text=line.source,
                issue=tag.issue,
                intake_id=_intake_id(source),
                at=now,
                event_ref=event_ref,
            )
            session.add(action)
            session.flush()
            if event_ref is None:
                # A decision without points (不采用, 退回); scoring audits its own events.
                audit.record(
                    session,
                    at=now,
                    actor=editor,
                    action=resolved.verb,
                    source=source,
                    subject=item.tracking_no if item else unit.code,
                    details={
                        "desk_action": action.id,
                        "unit": unit.code,
                        "what": resolved.label,
                        "note": resolved.note,
                        "line": line.source,
                    },
                )
            result.applied, result.label, result.unit_id = True, resolved.label, unit.id
            result.counted_at = item.received_at if item is not None else now
            if item is not None and resolved.verb in ("adopt", "decline", "return"):
                self._notice(item, unit).events.append(
                    (resolved.verb, resolved.note or resolved.label)
                )
        except Refused as refused:
            result.code, result.detail = refused.code, refused.detail

    def _unit_of(self, session: Session, resolved: Resolved, item: Submission | None) -> Unit:
        if resolved.unit_code:
            unit = session.scalars(select(Unit).where(Unit.code == resolved.unit_code)).first()
            if unit is None:
                raise Refused("unknown_unit", resolved.unit_code)
            return unit
        assert item is not None
        unit_row = session.get(Unit, item.unit_id)
        assert unit_row is not None
        return unit_row

    def _active(self, session: Session, item_id: int, key: str) -> DeskAction | None:
        return session.scalars(
            select(DeskAction)
            .where(
                DeskAction.submission_id == item_id,
                DeskAction.key == key,
                DeskAction.undone_at.is_(None),
                DeskAction.verb != "undo",
            )
            .order_by(DeskAction.id.desc())
            .limit(1)
        ).first()

    def _undo(
        self,
        session: Session,
        result: LineOutcome,
        tag: Tag,
        item: Submission | None,
        editor: str,
        source: str,
        now: datetime,
    ) -> None:
        assert item is not None
        query = (
            select(DeskAction)
            .where(
                DeskAction.submission_id == item.id,
                DeskAction.undone_at.is_(None),
                DeskAction.verb != "undo",
            )
            .order_by(DeskAction.id.desc())
        )
        if tag.target is not None:
            target = tag.target
            if target.verb in ("decline", "return"):
                key = target.verb
            elif target.verb in SCORING_VERBS and target.words:
                key = self.scoring.resolve(session, target, item).key
            else:
                key = None
            if key is not None:
                query = query.where(DeskAction.key == key)
            else:
                query = query.where(DeskAction.verb == target.verb)
        earlier = session.scalars(query.limit(1)).first()
        if earlier is None:
            raise Refused("nothing_to_undo", tag.text)
        if earlier.event_ref:
            self.scoring.undo(session, earlier.event_ref, by=editor, at=now, source=source)
        unit = session.get(Unit, earlier.unit_id)
        assert unit is not None
        undo = DeskAction(
            submission_id=item.id,
            unit_id=unit.id,
            editor=editor,
            verb="undo",
            key=f"undo:{earlier.id}",
            text=result.line.source,
            intake_id=_intake_id(source),
            at=now,
            event_ref=earlier.event_ref,
        )
        session.add(undo)
        session.flush()
        earlier.undone_at, earlier.undone_by = now, undo.id
        label = f"撤销：{earlier.text}"
        if not earlier.event_ref:
            audit.record(
                session,
                at=now,
                actor=editor,
                action="undo",
                source=source,
                subject=item.tracking_no,
                details={
                    "desk_action": undo.id,
                    "undoes": earlier.id,
                    "unit": unit.code,
                    "what": earlier.text,
                    "line": result.line.source,
                },
            )
        result.applied, result.label, result.unit_id = True, label, unit.id
        result.counted_at = item.received_at
        if earlier.verb == "adopt":
            self._notice(item, unit).events.append(("undo", earlier.text))

    # --- what goes back ---------------------------------------------------------------------

    def _notice(self, item: Submission, unit: Unit) -> _Notice:
        if item.id not in self._notices:
            self._notices[item.id] = _Notice(item, unit)
        return self._notices[item.id]

    def _send_notices(self, session: Session, source: str, now: datetime) -> None:
        for notice in self._notices.values():
            if not notice.events:
                continue
            recipients = []
            if notice.item.author_id is not None:
                author = session.get(Person, notice.item.author_id)
                if author is not None:
                    recipients.append(author.email.lower())
            recipients = recipients or unit_officers(session, notice.unit.id)
            verbs = {verb for verb, _ in notice.events}
            headline = (
                "退回修改"
                if "return" in verbs
                else "已采用"
                if "adopt" in verbs
                else "不采用"
                if "decline" in verbs
                else "采用已撤销"
            )
            subject = f"信息处理通知：{notice.item.tracking_no} {headline}"
            context = {
                "unit": notice.unit,
                "item": notice.item,
                "events": notice.events,
                "headline": headline,
            }
            for to in recipients:
                msg = self._mail(
                    to=to,
                    subject=subject,
                    kind="notice",
                    template="notice",
                    context=context,
                    now=now,
                )
                queue_mail(
                    session,
                    kind="notice",
                    to_address=to,
                    subject=subject,
                    message=wire_bytes(msg),
                    now=now,
                    intake_id=_intake_id(source),
                )
        self._notices = {}

    def explain(self, code: str, detail: str = "") -> str:
        text = self.reasons.get(code, code)
        return f"{text}（{detail}）" if detail else text

    def _confirm(
        self,
        session: Session,
        intake: Intake,
        msg: DecodedMessage,
        to: str,
        outcomes: list[LineOutcome],
        script: Script,
        now: datetime,
        problem: str | None = None,
    ) -> None:
        applied = [o for o in outcomes if o.applied]
        if not applied:
            # Refusals to one editor are rate limited like refusals to units (forged mail).
            since = now - timedelta(hours=1)
            recent = session.scalar(
                select(func.count(OutboundMessage.id))
                .join(Intake, Intake.id == OutboundMessage.intake_id)
                .where(
                    OutboundMessage.kind == "confirmation",
                    func.lower(OutboundMessage.to_address) == to.lower(),
                    OutboundMessage.created_at >= since,
                    Intake.state == "command_refused",
                )
            )
            if (recent or 0) >= self.settings.refusals_per_hour:
                intake.reasons = [*intake.reasons, "refusal_rate_limited"]
                return
        totals: dict[tuple[int, str], dict[str, Any]] = {}
        for o in applied:
            if o.unit_id is None:
                continue
            at = o.counted_at or now
            quarter = quarter_of(at, self.zone, self.rulebook.calendar).label
            if (o.unit_id, quarter) not in totals:
                unit = session.get(Unit, o.unit_id)
                assert unit is not None
                points = self.scoring.unit_total(session, unit, at)
                totals[(o.unit_id, quarter)] = {
                    "unit": unit,
                    "quarter": quarter,
                    "points": None if points is None else _points_text(points),
                }
        rows = [
            {
                "source": o.line.source,
                "applied": o.applied,
                "tracking_no": o.tracking_no,
                "label": o.label,
                "reason": self.explain(o.code, o.detail) if o.code else "",
                "code": o.code,
            }
            for o in outcomes
        ]
        ignored = [ln.source for ln in script.lines if ln.header]
        if problem is not None:
            headline = "未执行"
        elif applied and len(applied) == len(outcomes):
            headline = "已全部登记"
        elif applied:
            headline = f"已登记 {len(applied)} 条，未执行 {len(outcomes) - len(applied)} 条"
        else:
            headline = "未执行"
        context = {
            "rows": rows,
            "totals": list(totals.values()),
            "headers": ignored,
            "headline": headline,
            "problem": self.explain(problem) if problem else None,
            "problem_code": problem,
            "original_subject": msg.subject,
        }
        subject = f"编辑台确认：{headline}（{msg.subject or '无主题'}）"
        reply = self._mail(
            to=to,
            subject=subject,
            kind="confirmation",
            template="confirmation",
            context=context,
            now=now,
            in_reply_to=msg,
        )
        queue_mail(
            session,
            kind="confirmation",
            to_address=to,
            subject=subject,
            message=wire_bytes(reply),
            now=now,
            intake_id=intake.id,
        )


def _points_text(points: Decimal | int) -> str:
    """`2`, `-4`, `3.5`: whole numbers without a decimal point."""
    value = Decimal(points)
    return (
        str(value.quantize(Decimal(1))) if value == value.to_integral() else str(value.normalize())
    )


def _intake_id(source: str) -> int | None:
    m = re.match(r"intake:(\d+)", source)
    return int(m.group(1)) if m else None
