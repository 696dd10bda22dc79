"""Substring search over items' titles and bodies, sub-linear in the size of the ledger.

A term of `MIN_INDEXED` characters or more is looked up in an index of trigrams: on SQLite the
FTS5 table `submissions_fts` (`tokenize='trigram'`, external content kept in step with
`submissions` by triggers), on PostgreSQL the `pg_trgm` GIN indexes on `title` and `body`
(migration 0014). A shorter term has no trigram to look up, so it is matched with `LIKE` over
the newest `SHORT_TERM_WINDOW` items only, and the page says so.

The result is exactly what `LIKE '%term%'` over title and body (or the tracking number, equal)
would select: the trigram index only narrows the rows that `LIKE` then checks.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select, text
from sqlalchemy.orm import Session

from ledger.models import Submission

MIN_INDEXED = 3  # characters: a trigram index has nothing to look up in a shorter term
SHORT_TERM_WINDOW = 20_000  # newest items a shorter term is matched against
# On SQLite, the newest matches taken from FTS5 as a list of ids; a term with more matches is
# common enough that reading items newest first finds a page of them soon.
ID_LIST_CAP = 5_000

FTS_TABLE = "submissions_fts"
TRGM_INDEXES = ("ix_submissions_title_trgm", "ix_submissions_body_trgm")


def schema_objects() -> set[str]:
    """Names the search schema adds outside the models (Alembic's comparison skips them)."""
    shadow = {f"{FTS_TABLE}_{s}" for s in ("data", "idx", "content", "docsize", "config")}
    return {FTS_TABLE, *shadow, *TRGM_INDEXES}


def like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def is_short(term: str) -> bool:
    return len(term) < MIN_INDEXED


def matches(
    session: Session,
    term: str,
    *,
    window: int = SHORT_TERM_WINDOW,
    cap: int = ID_LIST_CAP,
) -> ColumnElement[bool]:
    """A condition on `Submission` for the items whose title or body holds `term` (or whose
    tracking number is `term`), for the items query to add to its other filters."""
    like = like_pattern(term)
    condition = or_(
        Submission.title.like(like, escape="\\"),
        Submission.body.like(like, escape="\\"),
        Submission.tracking_no == term.upper(),
    )
    if is_short(term):
        newest = session.scalar(select(func.max(Submission.id))) or 0
        return (
            or_(
                Submission.tracking_no == term.upper(),
                Submission.id > newest - window,
            )
            & condition
        )
    if session.get_bind().dialect.name != "sqlite":
        return condition  # PostgreSQL's planner uses the trigram indexes for these LIKEs
    phrase = '"' + term.replace('"', '""') + '"'
    ids = session.scalars(
        text(
            f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :phrase "
            "ORDER BY rowid DESC LIMIT :cap"
        ),
        {"phrase": phrase, "cap": cap + 1},
    ).all()
    if len(ids) > cap:
        return condition  # common: newest first, a page of matches comes soon
    return or_(Submission.id.in_(ids), Submission.tracking_no == term.upper()) & condition
