"""Every message of tests/corpus/ through the whole pipeline, as `mailroom ingest` runs it
(SPEC §10; acceptance 2 of the parser issue).

Real mail from other projects' test suites: each must end in a named state without a crash,
and no bounce or complaint may be answered. To make "not answered" mean something, every
sender domain of the corpus is made a known domain, so an ordinary message from an unknown
sender *would* get a refusal: only the bounce and auto-reply classification keeps them quiet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.pipeline import Arrival
from ledger.demo import load_demo
from ledger.models import Intake, OutboundMessage
from mailroom.app import App
from mailroom.config import parse_config
from parser import decode_message
from parser.validate import strip_quotes_and_signature
from tests.conftest import CORPUS

NAMED_STATES = {"filed", "rejected", "duplicate", "ignored", "quarantined", "command_refused"}
RECEIVED = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
# The one file of sisimai's set that is not a bounce at all (its own "is-not-bounce" case).
NOT_A_BOUNCE = {"sisimai-bounces/maildir_not_is-not-bounce-02.eml"}


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.fail(f"the corpus is missing: {CORPUS}")
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.parent != CORPUS)
    assert len(files) > 800, len(files)
    return files


def is_bounce_or_complaint(relative: str) -> bool:
    folder, _, name = relative.partition("/")
    if folder == "sisimai-bounces":
        return relative not in NOT_A_BOUNCE
    return folder == "flanker" and name.startswith(("bounce_", "complaints_"))


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    files = corpus_files()
    domains = set()
    for path in files:
        sender = decode_message(path.read_bytes()).from_address
        domain = sender.rpartition("@")[2]
        if "@" in sender and domain and "." in domain and domain.isascii():
            domains.add(domain.strip(".").lower())
    config = parse_config(
        {
            "database": {"url": db_url},
            "security": {"known_domains": sorted(domains), "refusals_per_hour": 100000},
        },
        tmp_path,
        environ={},
    )
    office = App.open(config)
    with office.ledger.transaction() as session:
        load_demo(session)
    try:
        yield office
    finally:
        office.close()


def test_every_corpus_message_ends_in_a_named_state_and_no_bounce_is_answered(app: App) -> None:
    files = corpus_files()
    outcomes: dict[str, tuple[str, tuple[str, ...], int]] = {}
    for path in files:
        relative = path.relative_to(CORPUS).as_posix()
        # Exactly what cmd_ingest does for each FILE.eml.
        outcome = app.pipeline.process(
            path.read_bytes(), Arrival(mailbox="daily", channel="file", received_at=RECEIVED)
        )
        outcomes[relative] = (outcome.state, outcome.reasons, outcome.intake_id)

    with app.ledger.reader() as s:
        answered = {row.intake_id for row in s.scalars(select(OutboundMessage))}
        errors = {row.id: row.error for row in s.scalars(select(Intake))}

    per_state = Counter(state for state, _, _ in outcomes.values())
    per_folder = Counter((rel.partition("/")[0], st) for rel, (st, _, _) in outcomes.items())
    print(f"\ncorpus: {len(outcomes)} messages; per state: {dict(sorted(per_state.items()))}")
    for (folder, state), n in sorted(per_folder.items()):
        print(f"  {folder:18} {state:12} {n}")

    assert set(per_state) <= NAMED_STATES
    crashed = {rel: errors[i] for rel, (st, _, i) in outcomes.items() if st == "quarantined"}
    assert not crashed, crashed
    bounces = {rel for rel in outcomes if is_bounce_or_complaint(rel)}
    assert len(bounces) > 420
    replied_to_bounces = {rel for rel in bounces if outcomes[rel][2] in answered}
    assert not replied_to_bounces
    not_ignored = {
        rel: outcomes[rel][:2]
        for rel in bounces
        if outcomes[rel][0] not in ("ignored", "duplicate")
    }
    assert not not_ignored
    # The known domains are real: ordinary mail from unregistered senders does get refusals.
    assert any(outcomes[rel][2] in answered for rel in outcomes if rel not in bounces)


def test_kopano_gb2312_mail_decodes_to_the_right_names() -> None:
    raw = (CORPUS / "kopano-charsets" / "gb2312_18030.eml").read_bytes()
    msg = decode_message(raw)
    assert msg.from_name == "梁祐晟"
    assert msg.header("To") == "'林慶美' <other.address@some.domain>"
    big5 = decode_message((CORPUS / "kopano-charsets" / "big5.eml").read_bytes())
    assert big5.subject == "養樂多線上訂購" and big5.from_name == "養樂多"


# Replies that Discourse's trimmer and ours cut at the same line (ours knows fewer languages,
# more Chinese clients): a regression set, including the Chinese quote header 在…写道：.
SAME_AS_DISCOURSE = [
    "block_code_spacers", "dual_embedded", "email_headers_2", "email_headers_3",
    "email_headers_5", "embedded_email_1", "embedded_email_10", "embedded_email_19",
    "embedded_email_6", "embedded_email_8", "embedded_email_chinese", "embedded_email_dutch_1",
    "embedded_email_italian", "embedded_email_polish_1", "forwarded_apple", "forwarded_gmail",
    "normalize_line_endings", "retains_spaces_and_formatting", "strip", "text_only", "usenet",
]  # fmt: skip


@pytest.mark.parametrize("name", SAME_AS_DISCOURSE)
def test_quoted_text_is_cut_where_discourses_trimmer_cuts_it(name: str) -> None:
    folder = CORPUS / "reply-trimmer"
    if not folder.is_dir():
        pytest.fail(f"the corpus is missing: {folder}")
    email = (folder / "emails" / f"{name}.txt").read_text(encoding="utf-8", errors="replace")
    trimmed = (folder / "trimmed" / f"{name}.txt").read_text(encoding="utf-8", errors="replace")
    ours = strip_quotes_and_signature(email.replace("\r\n", "\n"))
    assert ours.strip() == trimmed.replace("\r\n", "\n").strip()
