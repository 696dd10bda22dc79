"""Every .eml fixture under tests/data/mail/ through the parser: exactly the outcome its
MANIFEST.json entry records (SPEC §3.3, §3.4, §10 — acceptance 1 of the parser issue)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from parser import Limits, SenderContext, classify, decode_message, validate
from tests.conftest import DATA, REPO

MAIL = DATA / "mail"
MANIFEST: dict[str, dict[str, Any]] = json.loads(
    (MAIL / "MANIFEST.json").read_text(encoding="utf-8")
)
RECEIVED = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 11:00 in Guangzhou
ZONE = ZoneInfo("Asia/Shanghai")
LIMITS = Limits(
    body_chars=450, attachment_chars=4000, clock_skew=timedelta(minutes=15), late_report_days=3
)
OWN = ("inf@mailroom.test", "sfxx@mailroom.test", "desk@mailroom.test")

# The codes SPEC §3.3, §3.4 and §10 name, each of which some fixture must yield alone.
SPEC_CODES = {
    "missing_mark",
    "missing_title",
    "missing_body",
    "missing_unit",
    "missing_author",
    "missing_phone",
    "bad_phone",
    "missing_date",
    "bad_date",
    "body_too_long",
    "attachment_too_long",
    "unsupported_attachment",
    "unreadable_attachment",
    "multiple_items",
    "undecodable_text",
}


def demo_senders() -> dict[str, SenderContext]:
    """The demo registry's info officers, by address, as the ledger would look them up."""
    folder = REPO / "ledger" / "demo"
    with (folder / "units.csv").open(encoding="utf-8") as fh:
        units = {row["code"]: row for row in csv.DictReader(fh)}
    out: dict[str, SenderContext] = {}
    with (folder / "people.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["role"] == "officer":
                unit = units[row["unit_code"]]
                out[row["email"]] = SenderContext(
                    unit_code=unit["code"],
                    unit_name=unit["name"],
                    unit_mark=unit["mark"],
                    person_name=row["name"],
                )
    return out


SENDERS = demo_senders()


def test_there_are_at_least_sixty_fixtures_from_named_clients() -> None:
    files = sorted(MAIL.glob("*.eml"))
    assert len(files) >= 60
    assert {f.stem for f in files} == set(MANIFEST)
    clients = {str(entry["client"]).split(" (")[0].split(" ")[0] for entry in MANIFEST.values()}
    assert {
        "Foxmail",
        "Outlook",
        "WPS",
        "QQ",
        "163",
        "Coremail",
        "Thunderbird",
        "iPhone",
    } <= clients


def test_every_spec_code_has_a_fixture_that_yields_exactly_that_code() -> None:
    alone = {
        entry["problems"][0] for entry in MANIFEST.values() if len(entry.get("problems", [])) == 1
    }
    assert alone >= SPEC_CODES, SPEC_CODES - alone


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_fixture_outcome(name: str) -> None:
    expected = MANIFEST[name]
    msg = decode_message((MAIL / f"{name}.eml").read_bytes())
    reason = classify(msg, None, OWN)
    assert reason == expected.get("ignored"), (name, msg.subject)
    if reason is not None:
        return
    sender = SENDERS.get(str(expected.get("sender", "")))
    verdict = validate(msg, sender, LIMITS, RECEIVED, ZONE)
    problems = [p.code for p in verdict.problems]
    if sender is None:
        assert problems[:1] == ["unknown_sender"]
        return
    assert problems == expected.get("problems", []), (name, verdict.problems)
    assert [w.code for w in verdict.warnings] == expected.get("warnings", []), verdict.warnings
    if verdict.submission is None:
        return
    item = verdict.submission
    assert item.title == expected["title"]
    assert item.attachment_name == expected.get("attachment")
    assert item.attachment_chars == expected.get("attachment_chars")
    assert set(expected.get("markers", [])) <= item.markers
    assert item.signoff.date is not None and item.signoff.unit and item.signoff.author
    assert item.signoff.approver == expected.get("approver")
    assert "\ufffd" not in item.body + item.title


def test_fixtures_keep_their_words_through_every_charset() -> None:
    """GBK-only characters in a GB2312 label, Big5 raw headers, a UTF-8 label on GBK bytes."""
    gbk = decode_message((MAIL / "gb2312_label_gbk_only_chars.eml").read_bytes())
    assert "朱镕基" in gbk.subject and "王堃" in gbk.body_text
    big5 = decode_message((MAIL / "big5_raw_headers.eml").read_bytes())
    assert big5.from_name == "越秀區" and big5.subject.startswith("【越秀區】越秀區深入開展")
    mislabelled = decode_message((MAIL / "utf8_label_gbk_bytes.eml").read_bytes())
    assert "天河区围绕优化营商环境" in mislabelled.body_text and not mislabelled.undecodable
    raw_gbk = decode_message((MAIL / "no_charset_raw_gbk_headers.eml").read_bytes())
    assert raw_gbk.from_name == "天河区" and raw_gbk.subject.startswith("【天河区】")


def test_attachment_names_lose_their_paths() -> None:
    for name, expected in (
        ("path_trick_unix_name", "passwd.docx"),
        ("path_trick_windows_name", "y.docx"),
        ("coremail_rfc2231_gbk_name", "天河区放管服改革详细材料.docx"),
        ("thunderbird_rfc2231_utf8", "天河区放管服改革详细材料.docx"),
    ):
        msg = decode_message((MAIL / f"{name}.eml").read_bytes())
        assert [a.filename for a in msg.attachments] == [expected]


def test_quoted_original_and_footers_are_not_counted() -> None:
    def body_chars(name: str) -> int:
        msg = decode_message((MAIL / f"{name}.eml").read_bytes())
        verdict = validate(msg, SENDERS["liming@th.gz.test"], LIMITS, RECEIVED, ZONE)
        assert verdict.submission is not None, verdict.problems
        return verdict.submission.body_chars

    plain = body_chars("foxmail_gbk_valid")
    assert body_chars("foxmail_quoted_original") == plain
    assert body_chars("netease_quoted_reply_163") == plain
    assert body_chars("signature_below_dashes") == plain
    assert body_chars("iphone_utf8_footer") == plain


def test_solicited_mailbox_is_a_marker() -> None:
    msg = decode_message((MAIL / "foxmail_gbk_valid.eml").read_bytes())
    sender = SENDERS["liming@th.gz.test"]
    daily = validate(msg, sender, LIMITS, RECEIVED, ZONE)
    solicited = validate(msg, sender, LIMITS, RECEIVED, ZONE, mailbox="solicited")
    assert daily.submission is not None and solicited.submission is not None
    assert daily.submission.markers == frozenset()
    assert {"solicited", "solicited_mailbox"} <= solicited.submission.markers
    assert solicited.submission.solicitation_code is None
    coded = validate(
        decode_message((MAIL / "solicited_with_code.eml").read_bytes()),
        sender,
        LIMITS,
        RECEIVED,
        ZONE,
    )
    assert coded.submission is not None
    assert coded.submission.solicitation_code == "YG-2026-07"
