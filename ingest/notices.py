"""约稿 notices and reminders (SPEC §5.5), rendered from the office's Jinja2 templates and
queued in the outbox. Each (约稿, unit, kind) is claimed in the ledger first, so a notice or
a reminder goes to a unit once, even when two service instances run the same check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from jinja2 import Environment, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session

from ingest.replies import template_set
from ingest.settings import Mailboxes, Office
from ledger.compose import Mail, Sender, compose, message_id
from ledger.db import Ledger
from ledger.models import Solicitation, Unit
from ledger.outbox import enqueue
from ledger.rulebook import Rulebook
from ledger.solicit import claim_mail, deduct_missing, due_reminders, officers_of
from ledger.wording import TemplateSet


class SolicitMailer:
    """Builds the notice and the reminder of a 约稿 for one unit."""

    def __init__(
        self,
        *,
        sender: str,
        sender_name: str,
        reply_to: str,
        zone: tzinfo,
        templates: TemplateSet | None = None,
    ) -> None:
        templates = templates or template_set()
        self.words = templates.words()
        self.env = Environment(
            loader=templates.loader(),
            autoescape=select_autoescape(["html.j2"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self.from_ = Sender(sender, sender_name)
        self.reply_to = reply_to
        self.zone = zone

    def build(
        self, kind: str, sol: Solicitation, unit: Unit, to: str, msgid: str, now: datetime
    ) -> Mail:
        deadline = sol.deadline.astimezone(self.zone).strftime("%Y年%m月%d日 %H:%M")
        context = {
            "unit_name": unit.name,
            "unit_mark": unit.mark,
            "code": sol.code,
            "topic": sol.topic,
            "deadline_local": deadline,
            "mailbox": self.reply_to,
            "office_name": self.from_.name,
        }
        if kind == "solicit_notice":
            subject = self.words("【约稿】{code} {topic}", code=sol.code, topic=sol.topic)
        else:
            subject = self.words(
                "【约稿提醒】{code} {topic}（{deadline}截止）",
                code=sol.code,
                topic=sol.topic,
                deadline=deadline,
            )
        return compose(
            kind=kind,
            sender=self.from_,
            to=to,
            subject=subject,
            text=self.env.get_template(f"{kind}.txt.j2").render(context),
            html=self.env.get_template(f"{kind}.html.j2").render(context),
            now=now,
            msgid=msgid,
            reply_to=self.reply_to,
        )

    def new_message_id(self, sol: Solicitation, kind: str) -> str:
        """One Message-ID for every officer of a unit: a reply to any of them names the 约稿."""
        return message_id(kind, self.from_.domain, tag=str(sol.id))


def _queue(
    session: Session, mailer: SolicitMailer, kind: str, sol: Solicitation, unit: Unit, now: datetime
) -> int:
    officers = officers_of(session, unit.id, now.astimezone(mailer.zone).date())
    if not officers:
        return 0
    msgid = mailer.new_message_id(sol, kind)
    if not claim_mail(session, sol.id, unit.id, kind.removeprefix("solicit_"), msgid, now):
        return 0
    for person in officers:
        msg = mailer.build(kind, sol, unit, person.email, msgid, now)
        enqueue(
            session,
            kind="notice",
            to_address=person.email,
            subject=msg.subject,
            message=msg.wire,
            now=now,
        )
    return len(officers)


def send_notices(session: Session, mailer: SolicitMailer, sol: Solicitation, now: datetime) -> int:
    """Queue the notice to the officers of every target unit; returns how many mails."""
    return sum(_queue(session, mailer, "solicit_notice", sol, t.unit, now) for t in sol.targets)


def send_due_reminders(
    ledger: Ledger, mailer: SolicitMailer, *, before: timedelta, now: datetime
) -> int:
    """Queue the one reminder due to each target unit that has not answered a 约稿 whose
    deadline is within `before`; returns how many mails were queued. Safe to call often."""
    with ledger.transaction() as session:
        return sum(
            _queue(session, mailer, "solicit_reminder", sol, unit, now)
            for sol, unit in due_reminders(session, now, before)
        )


def mailer_for(
    office: Office, mailboxes: Mailboxes, templates: TemplateSet | None = None
) -> SolicitMailer:
    """The 约稿 notices' writer: answers to them go to the solicited mailbox."""
    return SolicitMailer(
        sender=office.sender,
        sender_name=office.sender_name,
        reply_to=mailboxes.solicited,
        zone=office.zone,
        templates=templates,
    )


class ReminderCheck:
    """`send_due_reminders` for a service loop, and the missing-answer deductions of 约稿 whose
    deadline passed (`ledger.solicit.deduct_missing`): at most once every `every` seconds."""

    def __init__(
        self,
        ledger: Ledger,
        mailer: SolicitMailer,
        before: timedelta,
        every: float,
        clock: Callable[[], float] = time.monotonic,
        rulebook: Rulebook | None = None,
    ) -> None:
        self.ledger = ledger
        self.rulebook = rulebook
        self.mailer = mailer
        self.before = before  # a reminder goes out this long before the deadline
        self.every = every
        self.clock = clock
        self.next_at: float | None = None

    def __call__(self) -> int:
        now = self.clock()
        if self.next_at is not None and now < self.next_at:
            return 0
        self.next_at = now + self.every
        instant = datetime.now(UTC)
        if self.rulebook is not None:
            with self.ledger.transaction() as session:
                deduct_missing(session, self.rulebook, instant)
        return send_due_reminders(self.ledger, self.mailer, before=self.before, now=instant)
