"""The items search (`ledger.search`): exactly the items whose title or body holds the term,
found through the trigram index (FTS5 on SQLite, pg_trgm on PostgreSQL), kept in step as items
are filed, edited and deleted; a term under three characters only among the newest items."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from ledger import search
from ledger.db import Ledger
from ledger.models import Submission
from ledger.rulebook import load_rulebook
from tests.scoring_kit import Office, local

ITEMS = [
    ("越秀区推进政务信息公开", "今年以来，越秀区认真落实部署。"),
    ("荔湾区开展城中村改造", "改造涉及100%的旧楼，进度_过半。"),
    ("天河区召开工作会议", "会议强调要推进政务信息公开标准化。"),
]


@pytest.fixture
def filed(ledger: Ledger) -> Iterator[tuple[Ledger, list[str]]]:
    with ledger.transaction() as s:
        office = Office(s, load_rulebook("guangzhou-2004"))
        office.unit("YX", "越秀区", "district")
        numbers = []
        for day, (title, body) in enumerate(ITEMS, 1):
            tracking_no = office.item("YX", local(2026, 3, day))
            item = s.scalars(select(Submission).where(Submission.tracking_no == tracking_no)).one()
            item.title, item.body = title, body
            numbers.append(tracking_no)
    yield ledger, numbers


def found(session: Session, term: str, **kw: int) -> list[str]:
    return list(
        session.scalars(
            select(Submission.tracking_no)
            .where(search.matches(session, term, **kw))
            .order_by(Submission.id)
        )
    )


def test_substrings_of_title_and_body_are_found_exactly(
    filed: tuple[Ledger, list[str]],
) -> None:
    ledger, (yx, lw, th) = filed
    with ledger.reader() as s:
        assert found(s, "政务信息公开") == [yx, th]  # in a title, and in a body
        assert found(s, "城中村") == [lw]
        assert found(s, "开展城中村改造") == [lw]
        assert found(s, "100%的") == [lw]  # LIKE's wildcards are the text's own
        assert found(s, "100的") == [] and found(s, "%旧楼") == [] and found(s, "度_过") == [lw]
        assert found(s, "无此关键词") == []
        assert found(s, th.lower()) == [th]  # the tracking number, in any case
        # A term past the list of ids FTS5 hands over: the same items either way.
        assert found(s, "政务信息公开", cap=1) == [yx, th]


def test_the_index_follows_edits_and_deletions(filed: tuple[Ledger, list[str]]) -> None:
    ledger, (yx, lw, th) = filed
    with ledger.transaction() as s:
        item = s.scalars(select(Submission).where(Submission.tracking_no == lw)).one()
        item.body = "改为推进政务信息公开。"
    with ledger.reader() as s:
        assert found(s, "政务信息公开") == [yx, lw, th]
        assert found(s, "城中村") == [lw]  # still in its title
    with ledger.transaction() as s:
        s.execute(delete(Submission).where(Submission.tracking_no == yx))
    with ledger.reader() as s:
        assert found(s, "政务信息公开") == [lw, th]


def test_a_short_term_is_matched_among_the_newest_items_only(
    filed: tuple[Ledger, list[str]],
) -> None:
    ledger, (yx, lw, th) = filed
    with ledger.reader() as s:
        assert search.is_short("公开") and not search.is_short("城中村")
        assert found(s, "公开") == [yx, th]
        assert found(s, "公开", window=1) == [th]  # the newest item only
        assert found(s, "区", window=2) == [lw, th]
        assert found(s, yx, window=1) == [yx]  # a tracking number is found whatever its age


def test_the_trigram_index_is_what_answers(filed: tuple[Ledger, list[str]]) -> None:
    ledger, (yx, _lw, th) = filed
    with ledger.reader() as s:
        if s.get_bind().dialect.name == "sqlite":
            rows = s.scalars(
                text("SELECT rowid FROM submissions_fts WHERE submissions_fts MATCH :q"),
                {"q": '"政务信息公开"'},
            ).all()
            ids = s.scalars(select(Submission.id).where(Submission.tracking_no.in_([yx, th])))
            assert sorted(rows) == sorted(ids)
            return
        # The database's ctype classes Chinese characters as letters, or there are no trigrams.
        assert s.scalar(text("SELECT array_length(show_trgm('政务信息公开'), 1)")) == 7
        s.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            s.scalars(
                text(
                    "EXPLAIN SELECT id FROM submissions "
                    "WHERE title LIKE '%政务信息公开%' OR body LIKE '%政务信息公开%'"
                )
            )
        )
        assert "ix_submissions_title_trgm" in plan and "ix_submissions_body_trgm" in plan
