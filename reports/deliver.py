"""Sending a period's report (and the streak notices it brings) exactly once per recipient.

For each (report, period, recipient) one transaction inserts a `report_sends` row and, only if
that insert was new, queues the mail in the outbox. The UNIQUE key does the deduplication: a
second run, a restart, or a second service instance on the same PostgreSQL finds the row and
queues nothing (its insert waits for the first transaction, then does nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from functools import partial

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.calendar import quarter_of
from ledger.compose import Attachment, Sender, compose, message_id, readdressed
from ledger.db import Ledger
from ledger.models import Person, ReportSend, Unit
from ledger.outbox import enqueue
from ledger.rulebook import Rulebook
from ledger.wording import TemplateSet
from reports.build import build_report, office_name, report_period
from reports.model import QuarterlyReport, Report, ReportKind, StreakNotice
from reports.render import ReportWriter, template_set

log = logging.getLogger(__name__)

LEADER_ROLES = ("supervising_leader", "principal_leader")
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@dataclass(frozen=True)
class ReportSettings:
    """What reports need from the configuration (built by the composition root)."""

    zone: tzinfo
    sender: str
    sender_name: str
    recipients: tuple[str, ...] = ()  # office leaders, besides the registry's leaders
    templates: TemplateSet = field(default_factory=template_set)  # the language set, own files


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str = ""


@dataclass
class SendSummary:
    queued: int = 0
    already_sent: int = 0
    recipients: list[str] = field(default_factory=list)

    def add(self, other: SendSummary) -> None:
        self.queued += other.queued
        self.already_sent += other.already_sent
        self.recipients += other.recipients


def summary_recipients(session: Session, configured: tuple[str, ...]) -> list[Recipient]:
    """Office leaders from the config, then every unit's 主管领导 and 主要领导, once each."""
    seen: set[str] = set()
    out: list[Recipient] = []
    for address in configured:
        if address.lower() not in seen:
            seen.add(address.lower())
            out.append(Recipient(address))
    leaders = session.scalars(
        select(Person)
        .join(Unit, Person.unit_id == Unit.id)
        .where(Person.role.in_(LEADER_ROLES))
        .order_by(Unit.id, Person.role.desc(), Person.id)
    )
    for person in leaders:
        if person.email.lower() not in seen:
            seen.add(person.email.lower())
            out.append(Recipient(person.email, person.name))
    return out


def unit_leaders(session: Session, unit_code: str, role: str) -> list[Recipient]:
    people = session.scalars(
        select(Person)
        .join(Unit, Person.unit_id == Unit.id)
        .where(Unit.code == unit_code, Person.role == role)
        .order_by(Person.id)
    )
    return [Recipient(p.email, p.name) for p in people]


@dataclass(frozen=True)
class Composed:
    """A mail rendered once; each recipient gets it with their own To and Message-ID."""

    wire: bytes
    kind: str
    domain: str

    def to(self, recipient: Recipient) -> bytes:
        return readdressed(
            self.wire,
            to=(recipient.name, recipient.address),
            msgid=message_id(self.kind, self.domain),
        )


def compose_report(
    settings: ReportSettings,
    *,
    kind: str,
    subject: str,
    text: str,
    html: str,
    now: datetime,
    attachment: tuple[str, bytes] | None = None,
) -> Composed:
    """A report mail (`report`) or a streak notice (`notice`): text and HTML alternatives, and
    the .xlsx if any; addressed to each recipient later."""
    sender = Sender(settings.sender, settings.sender_name)
    attachments: tuple[Attachment, ...] = ()
    if attachment is not None:
        filename, data = attachment
        attachments = (Attachment(filename, data, *XLSX_TYPE),)
    mail = compose(
        kind=kind,
        sender=sender,
        to="undisclosed-recipients:;",
        subject=subject,
        text=text,
        html=html,
        now=now,
        attachments=attachments,
    )
    return Composed(mail.wire, kind, sender.domain)


def send_once(
    session: Session,
    *,
    report: str,
    period: str,
    recipient: Recipient,
    kind: str,
    subject: str,
    message: Callable[[], bytes],
    now: datetime,
) -> bool:
    """Record (report, period, recipient) and queue the mail, unless it was recorded before.

    Call inside the transaction that should hold both; returns whether mail was queued.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    send_id = session.execute(
        insert(ReportSend)
        .values(report=report, period=period, recipient=recipient.address.lower(), created_at=now)
        .on_conflict_do_nothing(index_elements=["report", "period", "recipient"])
        .returning(ReportSend.id)
    ).scalar_one_or_none()
    if send_id is None:
        return False
    row = enqueue(
        session,
        kind=kind,
        to_address=recipient.address,
        subject=subject,
        message=message(),
        now=now,
    )
    session.flush()
    session.get_one(ReportSend, send_id).outbox_id = row.id
    return True


def send_each(
    ledger: Ledger,
    *,
    report: str,
    period: str,
    recipients: list[Recipient],
    kind: str,
    subject: str,
    message: Callable[[Recipient], bytes],
    now: datetime,
) -> SendSummary:
    summary = SendSummary()
    for recipient in recipients:
        # One transaction per recipient: a crash part-way leaves the rest for the next run.
        with ledger.transaction() as session:
            queued = send_once(
                session,
                report=report,
                period=period,
                recipient=recipient,
                kind=kind,
                subject=subject,
                message=partial(message, recipient),
                now=now,
            )
        if queued:
            summary.queued += 1
            summary.recipients.append(recipient.address)
        else:
            summary.already_sent += 1
    return summary


def _notice_period(notice_quarter: str, rulebook: Rulebook, settings: ReportSettings) -> str:
    """Streak notices are keyed by assessment year: each rule fires once a year per unit."""
    period = report_period("quarterly", notice_quarter, settings.zone, rulebook.calendar)
    return str(quarter_of(period.start, settings.zone, rulebook.calendar).year)


def send_notices(
    ledger: Ledger,
    rulebook: Rulebook,
    settings: ReportSettings,
    report: QuarterlyReport,
    notices: tuple[StreakNotice, ...],
    now: datetime,
    writer: ReportWriter,
) -> SendSummary:
    summary = SendSummary()
    year = _notice_period(report.header.period, rulebook, settings)
    for notice in notices:
        with ledger.reader() as session:
            leaders = unit_leaders(session, notice.unit_code, notice.audience)
        if not leaders:
            log.warning(
                "no %s registered for unit %s: notice not sent", notice.audience, notice.unit_code
            )
            continue
        subject = writer.notice_subject(notice, report.header)

        def message(r: Recipient, n: StreakNotice = notice, s: str = subject) -> bytes:
            text, html = writer.notice(n, report.header, r.name or "")
            mail = compose_report(settings, kind="notice", subject=s, text=text, html=html, now=now)
            return mail.to(r)

        summary.add(
            send_each(
                ledger,
                report=f"notice/{notice.unit_code}/{notice.rule}",
                period=year,
                recipients=leaders,
                kind="notice",
                subject=subject,
                message=message,
                now=now,
            )
        )
    return summary


def build(
    ledger: Ledger,
    rulebook: Rulebook,
    settings: ReportSettings,
    kind: ReportKind,
    label: str,
    issued: date,
) -> Report:
    with ledger.reader() as session:
        return build_report(
            session,
            rulebook,
            kind,
            label,
            settings.zone,
            office=office_name(session, settings.sender_name),
            issued=issued,
            words=settings.templates.words(),
        )


def send_report(
    ledger: Ledger,
    rulebook: Rulebook,
    settings: ReportSettings,
    kind: ReportKind,
    label: str,
    *,
    now: datetime | None = None,
    writer: ReportWriter | None = None,
) -> SendSummary:
    """Queue the period's report to every recipient (and a quarter's streak notices), once."""
    now = now or datetime.now(UTC)
    # Here, not at the top: openpyxl holds 5 MB in memory, and `serve` imports this module
    # for its early warnings; it needs the workbook only when a summary is sent.
    from reports.xlsx import xlsx_bytes

    writer = writer or ReportWriter(settings.templates)
    report = build(ledger, rulebook, settings, kind, label, now.astimezone(settings.zone).date())
    text, html = writer.text(report), writer.html(report)
    mail = compose_report(
        settings,
        kind="report",
        subject=report.header.title,
        text=text,
        html=html,
        now=now,
        attachment=(f"{report.header.basename}.xlsx", xlsx_bytes(report, writer.words)),
    )
    with ledger.reader() as session:
        recipients = summary_recipients(session, settings.recipients)
    summary = send_each(
        ledger,
        report=kind,
        period=report.header.period,
        recipients=recipients,
        kind="report",
        subject=report.header.title,
        message=mail.to,
        now=now,
    )
    if isinstance(report, QuarterlyReport):
        summary.add(
            send_notices(
                ledger, rulebook, settings, report, (*report.praise, *report.criticism), now, writer
            )
        )
    log.info(
        "%s report %s: %d queued, %d already sent",
        kind,
        report.header.period,
        summary.queued,
        summary.already_sent,
    )
    return summary
