"""SQLAlchemy 2.x models of the ledger: registry, intake log, items, outbound queue, scoring
events and 约稿 (solicitations).

All times are stored as naive UTC (`UtcDateTime` converts), so SQLite and PostgreSQL agree.
Points are never stored: they are derived from events under the rulebook (SPEC §2).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Unicode,
    UniqueConstraint,
    and_,
    or_,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored naive in UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; pass an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


SEQUENCES = ("district", "dept_a", "dept_b", "direct", "office")
# Who may sign an item off in a unit (审签), by rank as a rulebook's importance grades name them.
APPROVER_ROLES = (
    "section_chief", "deputy_secretary_general", "director", "secretary_general", "vice_mayor",
    "mayor",
)  # fmt: skip
ROLES = ("officer", "supervising_leader", "principal_leader", "editor", *APPROVER_ROLES)


class Unit(Base):
    """A reporting unit (or the office itself); `mark` is its registered 标识."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    mark: Mapped[str] = mapped_column(String(100))
    sequence: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    active_from: Mapped[date | None] = mapped_column(Date)
    active_to: Mapped[date | None] = mapped_column(Date)

    parent: Mapped[Unit | None] = relationship(remote_side=[id])
    people: Mapped[list[Person]] = relationship(back_populates="unit")


class Person(Base):
    """A registered person of a unit: info officer, leader, or (in the office) editor."""

    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("unit_id", "role", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    role: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), index=True)
    phone: Mapped[str] = mapped_column(String(64), default="")
    title: Mapped[str] = mapped_column(String(100), default="")
    # In office from `active_from` through `active_to` (both inclusive; None: open). A person who
    # leaves keeps the row, so their items keep their author.
    active_from: Mapped[date | None] = mapped_column(Date)
    active_to: Mapped[date | None] = mapped_column(Date)

    unit: Mapped[Unit] = relationship(back_populates="people")

    @classmethod
    def active_on(cls, day: date) -> ColumnElement[bool]:
        """The people in office on `day`, as a WHERE clause."""
        return and_(
            or_(cls.active_from.is_(None), cls.active_from <= day),
            or_(cls.active_to.is_(None), cls.active_to >= day),
        )


class Intake(Base):
    """One row per message that arrived, whatever became of it (SPEC §2: a named state)."""

    __tablename__ = "intake"
    __table_args__ = (
        Index("ix_intake_content_hash", "content_hash"),
        Index("ix_intake_message_id_written_hash", "message_id", "written_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    spool_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # smtp, imap, file
    mailbox: Mapped[str] = mapped_column(String(16))
    envelope_from: Mapped[str] = mapped_column(String(320), default="")
    envelope_to: Mapped[str] = mapped_column(String(320), default="")
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    from_address: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(20), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    # What the sender wrote, once decoded (parser's `written_hash`); "" on rows filed before
    # the column existed, until a copy of their message arrives and fills it in.
    written_hash: Mapped[str] = mapped_column(String(64), default="", server_default="")
    size: Mapped[int] = mapped_column(Integer, default=0)

    raw: Mapped[RawMessage | None] = relationship(cascade="all, delete-orphan")


class RawMessage(Base):
    """The message exactly as received, kept for re-runs and for people to read."""

    __tablename__ = "raw_messages"

    intake_id: Mapped[int] = mapped_column(ForeignKey("intake.id"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Submission(Base):
    """A filed information item (信息), with its tracking number."""

    __tablename__ = "submissions"
    # A period's items by unit and by author read from the index alone (standings, officers).
    __table_args__ = (
        Index("ix_submissions_period", "received_at", "status", "unit_id", "author_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tracking_no: Mapped[str] = mapped_column(String(40), unique=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake.id"), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    mailbox: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(index=True)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    body_chars: Mapped[int] = mapped_column(Integer)
    attachment_name: Mapped[str | None] = mapped_column(String(255))
    attachment_chars: Mapped[int | None] = mapped_column(Integer)
    signoff_unit: Mapped[str] = mapped_column(String(200), default="")
    signoff_author: Mapped[str] = mapped_column(String(100), default="")
    signoff_phone: Mapped[str] = mapped_column(String(64), default="")
    signoff_date: Mapped[date | None] = mapped_column(Date)
    # Who signed the item off in its unit (审签人), as the sign-off names them; "" when it does not.
    approver: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # Its importance grade (一般, 重大, 特别重大, 紧急) under a rulebook that grades items, or "".
    importance: Mapped[str] = mapped_column(String(32), default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), default="filed")
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A revision (修改稿, SPEC §3.5) points at the item it superseded: the chain keeps history.
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))

    unit: Mapped[Unit] = relationship()
    intake: Mapped[Intake] = relationship()


class SimilarBand(Base):
    """One LSH band key of a filed item's body (`parser.similar`), kept while the item is
    within `[similar] window_days` of the newest filing: a new item's 64 keys are looked up
    here, so finding the other units' near-identical items is a few index probes, not a scan.
    `unit_id` and `received_at` are the item's, copied so the lookup needs no join."""

    __tablename__ = "similar_bands"
    __table_args__ = (Index("ix_similar_bands_received_at", "received_at"),)

    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id"), primary_key=True, autoincrement=False
    )
    unit_id: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime]


class SimilarItem(Base):
    """An item found near-identical to another unit's earlier item when it was filed
    (撒网式报送): what the desk forward and the item's views name. Editors decide; nothing is
    refused for it."""

    __tablename__ = "similar_items"
    __table_args__ = (UniqueConstraint("submission_id", "earlier_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    earlier_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    similarity: Mapped[float] = mapped_column(Float)  # `parser.similar.overlap`, 0…1
    found_at: Mapped[datetime]


class TrackingCounter(Base):
    """The last tracking number given out per (prefix, year); incremented atomically."""

    __tablename__ = "tracking_counters"

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger, default=0)


class OutboundMessage(Base):
    """A mail waiting to go out (or gone): receipts, refusals, notices, reports.

    `state`: `queued`, `sent` (the next hop took it), `failed` (refused, or given up), or
    `bounced` (sent, and a bounce of it came back: `last_error` holds its reason)."""

    __tablename__ = "outbox"
    # The refusal caps count an hour's refusals to a mailbox and to a domain.
    __table_args__ = (Index("ix_outbox_kind_created_at", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    # 1: sent before every other due row (the desk forward of an urgent item); 0: in order.
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)  # for a bounced row: the bounce's reason
    # Its Message-ID (None on rows queued before it was kept), by which a bounce that does not
    # come back to the row's own return path still finds it; when a bounce came back.
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    bounced_at: Mapped[datetime | None]
    # Its wire bytes; with `original_tail`, those of a desk forward whose original (the
    # intake's raw message) is attached by reference: it goes in base64 this many bytes
    # before the end as the mail is sent (`ledger.compose.with_original`; migration 0017).
    message: Mapped[bytes] = mapped_column(LargeBinary)
    original_tail: Mapped[int | None]


class DeskAction(Base):
    """An editor's command applied to the ledger (SPEC §4): adoption, bonus, decision, undo.

    Points live in the scoring events; this row says who asked for what, from which message,
    and links the event (`event_ref`) so that `撤销` can find and undo it.
    """

    __tablename__ = "desk_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    editor: Mapped[str] = mapped_column(String(320))
    verb: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    issue: Mapped[str | None] = mapped_column(String(64))
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake.id"), index=True)
    at: Mapped[datetime]
    event_ref: Mapped[str | None] = mapped_column(String(100))
    undone_at: Mapped[datetime | None]
    undone_by: Mapped[int | None] = mapped_column(ForeignKey("desk_actions.id"))


class AuditEntry(Base):
    """One change of points or of a desk decision (SPEC §5.6), hash-chained to the one before."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(1000), default="")
    subject: Mapped[str] = mapped_column(String(100), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class EditorPassphrase(Base):
    """An editor's `Approved:` passphrase, as a salted scrypt hash (never the passphrase)."""

    __tablename__ = "editor_passphrases"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    hash: Mapped[str] = mapped_column(String(300))
    set_at: Mapped[datetime]


class StoredSecret(Base):
    """A secret Mailroom made itself (the reply-key secret when the config sets none)."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


SCORE_KINDS = ("adoption", "bonus", "clue", "deduction", "unit_bonus")


class ScoreEvent(Base):
    """One scoring event with who/when/source; its points come from the rulebook when read.

    `rule` names the publication, bonus or deduction (empty for a clue) and `level` the grade
    or bonus level. Item events count in the quarter the item was received; a deduction counts
    in the quarter of `occurred_at`. An undo marks the event, it never deletes it.
    `dedupe_key` (unique) makes automatic events such as a late 约稿 deduction happen once.
    """

    __tablename__ = "score_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    rule: Mapped[str] = mapped_column(String(100), default="")
    level: Mapped[str | None] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    recorded_by: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(1000))
    note: Mapped[str] = mapped_column(Text, default="")
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    undone_at: Mapped[datetime | None]
    undone_by: Mapped[str | None] = mapped_column(String(200))
    undo_source: Mapped[str | None] = mapped_column(String(1000))

    unit: Mapped[Unit] = relationship()
    submission: Mapped[Submission | None] = relationship()


class Solicitation(Base):
    """A 约稿: a topic asked of target units, answered by a deadline (SPEC §5.5)."""

    __tablename__ = "solicitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[str] = mapped_column(Text)
    deadline: Mapped[datetime]
    mailbox: Mapped[str] = mapped_column(String(16), default="solicited")
    all_units: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime]
    opened_by: Mapped[str] = mapped_column(String(200))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(200))

    targets: Mapped[list[SolicitationTarget]] = relationship(
        back_populates="solicitation", cascade="all, delete-orphan"
    )


class SolicitationTarget(Base):
    """A unit asked to answer a 约稿; its answered/late/missing state is derived from answers."""

    __tablename__ = "solicitation_targets"
    __table_args__ = (UniqueConstraint("solicitation_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    solicitation_id: Mapped[int] = mapped_column(ForeignKey("solicitations.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)

    solicitation: Mapped[Solicitation] = relationship(back_populates="targets")
    unit: Mapped[Unit] = relationship()


class SolicitationAnswer(Base):
    """A filed item matched to a 约稿; `late` when it arrived after the deadline."""

    __tablename__ = "solicitation_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    solicitation_id: Mapped[int] = mapped_column(ForeignKey("solicitations.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), unique=True)
    received_at: Mapped[datetime]
    late: Mapped[bool] = mapped_column(Boolean, default=False)


class SolicitationMail(Base):
    """A 约稿 notice or reminder queued for one unit; the unique key makes each one go once."""

    __tablename__ = "solicitation_mail"
    __table_args__ = (UniqueConstraint("solicitation_id", "unit_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    solicitation_id: Mapped[int] = mapped_column(ForeignKey("solicitations.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    kind: Mapped[str] = mapped_column(String(16))  # notice, reminder
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    created_at: Mapped[datetime]


class ImapMessage(Base):
    """A message found in a polled IMAP folder: where it sits, and the intake it became.

    Keyed on the server's (UIDVALIDITY, UID) within one folder of one account, so a re-poll
    never files it twice and a new UIDVALIDITY starts a fresh key space. `acted_at` is when it
    was moved to the processed folder or flagged, always after the intake was committed.
    """

    __tablename__ = "imap_messages"
    __table_args__ = (UniqueConstraint("account", "folder", "uidvalidity", "uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(320))  # user@host
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake.id"), index=True)
    seen_at: Mapped[datetime]
    acted_at: Mapped[datetime | None]


class ReportNote(Base):
    """The office's own text for a period's report (存在问题, 工作要求), set by staff."""

    __tablename__ = "report_notes"
    __table_args__ = (UniqueConstraint("report", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report: Mapped[str] = mapped_column(String(16))  # monthly, quarterly, annual
    period: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime]


class ReportSend(Base):
    """One report for one period to one recipient: the UNIQUE key makes each go out once.

    The row and its outbox mail are inserted in one transaction, so two service instances on
    one database queue a report once between them (SPEC §6, §8).
    """

    __tablename__ = "report_sends"
    __table_args__ = (UniqueConstraint("report", "period", "recipient"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report: Mapped[str] = mapped_column(String(64))  # quarterly, or notice/<unit>/<rule>
    period: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))  # lower-cased address
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    created_at: Mapped[datetime]


# APScheduler's SQLAlchemy job store keeps the report schedule in this table. It is declared
# here, exactly as the job store declares it, so that the migration creates it and
# `alembic check` knows it; the job store then finds it in place.
apscheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


WEB_ROLES = ("staff", "editor", "leader")  # everything; desk actions on items; reading only


class WebUser(Base):
    """An account of the web console: an office staff member, editor or leader."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(300))  # argon2id, never the password
    created_at: Mapped[datetime]
    password_set_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the ledger only its hash, so a
    disabled account or a logout ends it at once and a stolen database opens no session."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class WebLoginFailure(Base):
    """A failed sign-in, for the throttle (per address and per client address)."""

    __tablename__ = "web_login_failures"
    __table_args__ = (Index("ix_web_login_failures_email_at", "email", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime]
