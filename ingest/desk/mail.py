"""What the desk sends: the forward of a filed item to the editors (with its reply key), the
confirmation to the editor who commanded, and the notice to the unit whose item was decided."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from email.headerregistry import Address
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest.desk.keys import forward_message_id
from ingest.desk.reply import LineOutcome, Reply
from ingest.desk.scoring import DeskScoring
from ingest.replies import ReplyWriter
from ingest.settings import DeskSettings
from ledger.calendar import quarter_of
from ledger.compose import Attachment, Mail, compose, readdressed
from ledger.editors import editor_addresses, unit_officers
from ledger.models import Intake, OutboundMessage, Person, Submission, Unit
from ledger.outbox import enqueue, enqueue_copies
from ledger.rulebook import Rulebook
from ledger.similar import Match
from parser.commands import Script
from parser.types import DecodedMessage, Problem

log = logging.getLogger(__name__)
# An original larger than this is attached to the desk forward by reference (`Attachment`).
ORIGINAL_BY_REFERENCE = 256 * 1024


class DeskMail:
    def __init__(
        self,
        settings: DeskSettings,
        rulebook: Rulebook,
        replies: ReplyWriter,
        scoring: DeskScoring,
    ) -> None:
        self.settings = settings
        self.rulebook = rulebook
        self.replies = replies
        self.scoring = scoring
        self.zone = settings.office.zone
        self.words = replies.words
        self.reasons: dict[str, str] = replies.templates.table("desk_reasons.toml")

    def explain(self, code: str, detail: str = "") -> str:
        text = self.reasons.get(code, code)
        return self.words("{text}（{detail}）", text=text, detail=detail) if detail else text

    def recipients(self, session: Session, now: datetime) -> list[str]:
        """Who gets the forward: the configured addresses, else the editors in office that
        day, read once per session (a batch of filings asks once, not once an item)."""
        configured = self.settings.mailboxes.desk_forward
        if configured:
            return list(configured)
        day = now.astimezone(self.zone).date()
        key = ("desk.editors", day)
        found = session.info.get(key)
        if found is None:
            found = session.info[key] = editor_addresses(session, day)
        return list(found)

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
        attachments: tuple[Attachment, ...] = (),
    ) -> Mail:
        context = {**context, "office_name": self.replies.sender_name, "now": now}
        return compose(
            kind=kind,
            sender=self.replies.from_,
            to=to,
            subject=subject,
            text=self.replies.env.get_template(f"{template}.txt.j2").render(context),
            html=self.replies.env.get_template(f"{template}.html.j2").render(context),
            now=now,
            answering=in_reply_to,
            msgid=message_id,
            reply_to=reply_to,
            attachments=attachments,
        )

    # --- the forward ---------------------------------------------------------------------------

    def forward(
        self,
        session: Session,
        item: Submission,
        unit: Unit,
        raw: bytes,
        warnings: tuple[Problem, ...],
        key: str,
        now: datetime,
        similar: tuple[Match, ...] = (),
    ) -> int:
        """Queue the forward of a filed item to every desk recipient; returns how many."""
        recipients = self.recipients(session, now)
        if not recipients:
            log.warning("item %s filed but no editor is registered to forward it to", item.id)
            return 0
        local, _, domain = self.settings.mailboxes.desk.partition("@")
        reply_to = str(
            Address(display_name=self.words("编辑台"), username=f"{local}+{key}", domain=domain)
        )
        quarter = quarter_of(item.received_at, self.zone, self.rulebook.calendar)
        context = {
            "item": item,
            "unit": unit,
            "quarter": quarter.label,
            "received_local": self.replies.local_time(item.received_at),
            "warnings": [self.replies.explain(w) for w in warnings],
            "key": key,
            "examples": self.scoring.example_tags(),
            "similar": [
                {
                    "tracking_no": m.item.tracking_no,
                    "unit_name": m.unit_name,
                    "title": m.item.title,
                    "received_local": self.replies.local_time(m.item.received_at),
                    "percent": round(m.similarity * 100),
                }
                for m in similar
            ],
        }
        grade = self.rulebook.grade_for(item.importance) if item.importance else None
        urgent = grade is not None and grade.urgent
        # An urgent grade (特别重大, 紧急) says so first and goes out ahead of the queue.
        marked = f"【{grade.name}】" if urgent and grade is not None else ""
        # A near-identical item of another unit (撒网式报送) says so at the end of the title.
        alike = self.words("【疑似重复】") if similar else ""
        subject = marked + self.words(
            "【待编】{tracking_no} {unit}：{title}{alike} [#{key}]",
            tracking_no=item.tracking_no,
            unit=unit.name,
            title=item.title,
            alike=alike,
            key=key,
        )

        def message_id() -> str:
            return forward_message_id(key, self.replies.from_.domain)

        # Every recipient gets the same forward: render and serialise it once, then readdress.
        mail = self._mail(
            to=recipients[0],
            subject=subject,
            kind="desk",
            template="desk_forward",
            context=context,
            now=now,
            reply_to=reply_to,
            message_id=message_id(),
            # The original as a base64 .eml file: message/rfc822 may not be encoded, and the
            # original's own lines may be longer than SMTP allows. A large one by reference:
            # each editor's row holds the forward without it, and it is read from the raw
            # message and encoded as the mail goes out.
            attachments=(
                Attachment(
                    f"{item.tracking_no}.eml", None if len(raw) > ORIGINAL_BY_REFERENCE else raw
                ),
            ),
        )
        copies = [(recipients[0], mail.wire)]
        copies += [(to, readdressed(mail.wire, to=to, msgid=message_id())) for to in recipients[1:]]
        enqueue_copies(
            session,
            kind="desk",
            copies=copies,
            subject=subject,
            now=now,
            intake_id=item.intake_id,
            first=urgent,
            original_tail=mail.original_tail,
        )
        return len(recipients)

    # --- the unit's notices ------------------------------------------------------------------

    def notices(self, reply: Reply) -> None:
        """A notice to each unit whose item was decided by this reply (to its author, else
        to the unit's officers)."""
        session = reply.session
        for notice in reply.notices.values():
            if not notice.events:
                continue
            # The author while in office; after they leave, whoever holds the post now.
            day = reply.now.astimezone(self.zone).date()
            recipients = []
            if notice.item.author_id is not None:
                author = session.scalar(
                    select(Person).where(Person.id == notice.item.author_id, Person.active_on(day))
                )
                if author is not None:
                    recipients.append(author.email.lower())
            recipients = recipients or unit_officers(session, notice.unit.id, day)
            verbs = {verb for verb, _ in notice.events}
            headline = self.words(
                "退回修改"
                if "return" in verbs
                else "已采用"
                if "adopt" in verbs
                else "不采用"
                if "decline" in verbs
                else "采用已撤销"
            )
            subject = self.words(
                "信息处理通知：{tracking_no} {headline}",
                tracking_no=notice.item.tracking_no,
                headline=headline,
            )
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
                    now=reply.now,
                )
                enqueue(
                    session,
                    kind="notice",
                    to_address=to,
                    subject=subject,
                    message=msg.wire,
                    now=reply.now,
                    intake_id=reply.intake_id,
                )

    # --- the editor's confirmation -----------------------------------------------------------

    def confirm(
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
                    "points": None if points is None else points_text(points),
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
        w = self.words
        if problem is not None:
            headline = w("未执行")
        elif applied and len(applied) == len(outcomes):
            headline = w("已全部登记")
        elif applied:
            headline = w(
                "已登记 {applied} 条，未执行 {refused} 条",
                applied=len(applied),
                refused=len(outcomes) - len(applied),
            )
        else:
            headline = w("未执行")
        context = {
            "rows": rows,
            "totals": list(totals.values()),
            "headers": ignored,
            "headline": headline,
            "problem": self.explain(problem) if problem else None,
            "problem_code": problem,
            "original_subject": msg.subject,
        }
        subject = w(
            "编辑台确认：{headline}（{subject}）",
            headline=headline,
            subject=msg.subject or w("无主题"),
        )
        reply = self._mail(
            to=to,
            subject=subject,
            kind="confirmation",
            template="confirmation",
            context=context,
            now=now,
            in_reply_to=msg,
        )
        enqueue(
            session,
            kind="confirmation",
            to_address=to,
            subject=subject,
            message=reply.wire,
            now=now,
            intake_id=intake.id,
        )


def points_text(points: Decimal | int) -> str:
    """`2`, `-4`, `3.5`: whole numbers without a decimal point."""
    value = Decimal(points)
    return (
        str(value.quantize(Decimal(1))) if value == value.to_integral() else str(value.normalize())
    )
