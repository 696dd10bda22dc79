"""The office's own words for a period's report (存在问题, 工作要求, 重点工作部署): set by staff,
put into the report whenever it is built or sent (SPEC §9; Guangzhou 二(三)5 asks for it too)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import ReportNote

MAX_NOTE_CHARS = 20_000  # a page or two of 公文 text; longer is not a note


def set_note(
    session: Session, report: str, period: str, text: str, *, by: str, at: datetime
) -> ReportNote:
    """Store (or replace) the note of one report and period; an empty text removes it."""
    text = text.strip()
    if len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"a report note holds at most {MAX_NOTE_CHARS} characters")
    row = session.scalars(
        select(ReportNote).where(ReportNote.report == report, ReportNote.period == period)
    ).first()
    if row is None:
        row = ReportNote(report=report, period=period, text=text, set_by=by, set_at=at)
        session.add(row)
    else:
        row.text, row.set_by, row.set_at = text, by, at
    session.flush()
    return row


def note_for(session: Session, report: str, period: str) -> str:
    return (
        session.scalar(
            select(ReportNote.text).where(ReportNote.report == report, ReportNote.period == period)
        )
        or ""
    )
