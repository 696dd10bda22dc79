"""The intake log's queries: every message that arrived, where it came from, and whether it
was judged before (SPEC §2: idempotent on the spool id, the IMAP place and the content)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ledger.db import flush_with_bytes
from ledger.models import ImapMessage, Intake, RawMessage, Submission
from parser.types import DecodedMessage

# States of a message that was judged: a later copy of it is a `duplicate`.
JUDGED = ("filed", "rejected", "command", "command_refused")


@dataclass(frozen=True)
class ImapOrigin:
    """Where a polled message sits on the IMAP server: the key of its `ImapMessage` row."""

    account: str  # user@host
    folder: str
    uidvalidity: int
    uid: int


def same_arrival(session: Session, spool_id: str | None, imap: ImapOrigin | None) -> Intake | None:
    """The intake row of this very arrival: its spool id, or its place on the IMAP server."""
    if spool_id:
        done = session.scalars(_BY_SPOOL_ID, {"spool_id": spool_id}).first()
        if done is not None:
            return done
    if imap is None:
        return None
    return session.scalars(_AT_PLACE, _place(imap)).first()


def renumbered(session: Session, imap: ImapOrigin, content_hash: str) -> Intake | None:
    """After a UIDVALIDITY change the server numbers its messages afresh: the one filed from
    this folder before under another UIDVALIDITY, recognised by its content. Whether the
    folder has rows of another UIDVALIDITY at all is asked once a session (a poller's batch):
    the poller writes rows of the folder's current one only, so the answer holds for the
    batch, and a folder never renumbered costs no lookup a message."""
    place = _place(imap)
    key = ("intake.renumbered", imap.account, imap.folder, imap.uidvalidity)
    if key not in session.info:
        session.info[key] = session.scalar(_OTHER_NUMBERING, place) is not None
    if not session.info[key]:
        return None
    return session.scalars(_RENUMBERED, {**place, "content_hash": content_hash}).first()


def _place(imap: ImapOrigin) -> dict[str, object]:
    return {
        "account": imap.account,
        "folder": imap.folder,
        "uidvalidity": imap.uidvalidity,
        "uid": imap.uid,
    }


# Built once: these run for every message.
_BY_SPOOL_ID = select(Intake).where(Intake.spool_id == bindparam("spool_id"))
_IN_FOLDER = (
    ImapMessage.account == bindparam("account"),
    ImapMessage.folder == bindparam("folder"),
)
_AT_PLACE = (
    select(Intake)
    .join(ImapMessage, ImapMessage.intake_id == Intake.id)
    .where(
        *_IN_FOLDER,
        ImapMessage.uidvalidity == bindparam("uidvalidity"),
        ImapMessage.uid == bindparam("uid"),
    )
)
_OTHER_NUMBERING = (
    select(ImapMessage.id)
    .where(*_IN_FOLDER, ImapMessage.uidvalidity != bindparam("uidvalidity"))
    .limit(1)
)
_RENUMBERED = (
    select(Intake)
    .join(ImapMessage, ImapMessage.intake_id == Intake.id)
    .where(
        *_IN_FOLDER,
        ImapMessage.uidvalidity != bindparam("uidvalidity"),
        Intake.content_hash == bindparam("content_hash"),
    )
    .order_by(Intake.id)
    .limit(1)
)


def record_place(session: Session, intake: Intake, imap: ImapOrigin, now: datetime) -> None:
    """Note where on the IMAP server an intake was found (one row per place)."""
    session.add(
        ImapMessage(
            account=imap.account,
            folder=imap.folder,
            uidvalidity=imap.uidvalidity,
            uid=imap.uid,
            intake_id=intake.id,
            seen_at=now,
        )
    )
    session.flush()


def new_intake(
    session: Session,
    raw: bytes,
    *,
    spool_id: str | None,
    channel: str,
    mailbox: str,
    envelope_from: str,
    envelope_to: str,
    received_at: datetime,
    imap: ImapOrigin | None,
    now: datetime,
    message: DecodedMessage | None = None,
) -> Intake:
    """The row of a message just arrived (`received`), its raw bytes kept with it, taken up
    for processing at `now`; with the `message` decoded, what it says of itself (Message-ID,
    sender, subject, hashes) is written with the row, not by a second write of it."""
    intake = Intake(
        processed_at=now,
        spool_id=spool_id,
        channel=channel,
        mailbox=mailbox,
        envelope_from=envelope_from,
        envelope_to=envelope_to,
        received_at=received_at,
        state="received",
        reasons=[],
        details={},
        size=len(raw),
    )
    if message is not None:
        intake.message_id = message.message_id
        intake.from_address = message.from_address
        intake.subject = message.subject
        intake.content_hash = message.content_hash
        intake.written_hash = message.written_hash
    intake.raw = RawMessage()
    session.add(intake)
    flush_with_bytes(session, intake.raw, "data", raw)
    if imap is not None:
        record_place(session, intake, imap, now)
    return intake


def tracking_no_of(session: Session, intake_id: int) -> str | None:
    return session.scalar(select(Submission.tracking_no).where(Submission.intake_id == intake_id))


def find_duplicate(
    session: Session, message_id: str | None, content_hash: str, written_hash: str
) -> Intake | None:
    """An earlier judged intake of the same message: the same Message-ID and what the same
    sender wrote (by whatever way it came), or — for a message without a Message-ID — the
    same bytes. Only the sender's own copies can match, and a lookup is one indexed query,
    however many messages anyone sent under that Message-ID."""
    if message_id:
        found = session.scalars(
            _BY_MESSAGE_ID, {"message_id": message_id, "written_hash": written_hash}
        )
    else:
        found = session.scalars(_BY_CONTENT, {"content_hash": content_hash})
    return found.first()


# Built once: the two lookups run for every message.
_JUDGED_FIRST = select(Intake).where(Intake.state.in_(JUDGED)).order_by(Intake.id).limit(1)
_BY_MESSAGE_ID = _JUDGED_FIRST.where(
    Intake.message_id == bindparam("message_id"), Intake.written_hash == bindparam("written_hash")
)
_BY_CONTENT = _JUDGED_FIRST.where(Intake.content_hash == bindparam("content_hash"))


def unhashed_copies(session: Session, message_id: str) -> list[Intake]:
    """Judged intakes of this Message-ID from before `written_hash` was kept (it is "")."""
    return list(
        session.scalars(
            select(Intake).where(
                Intake.message_id == message_id,
                Intake.written_hash == "",
                Intake.state.in_(JUDGED),
            )
        )
    )


def any_unhashed(session: Session) -> bool:
    """Whether any judged intake has no `written_hash` yet (judged before it was kept)."""
    query = select(Intake.id).where(Intake.written_hash == "", Intake.state.in_(JUDGED))
    return session.scalar(query.limit(1)) is not None


def log_entries(session: Session, state: str | None = None) -> list[tuple[Intake, str | None]]:
    """The intake log, oldest first, each row with the tracking number it was filed under."""
    query = select(Intake, Submission.tracking_no).outerjoin(
        Submission, Submission.intake_id == Intake.id
    )
    if state:
        query = query.where(Intake.state == state)
    return [(intake, tracking) for intake, tracking in session.execute(query.order_by(Intake.id))]


def imap_origins(session: Session) -> dict[int, ImapMessage]:
    """Where each IMAP-polled intake was first found on the server (account, folder, UID)."""
    rows = session.scalars(select(ImapMessage).order_by(ImapMessage.id.desc())).all()
    return {row.intake_id: row for row in rows}
