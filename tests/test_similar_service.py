"""Cross-unit duplicates end to end: two units send one item over SMTP to a real `mailroom
serve`; the second unit's desk forward names the first item, and `mailroom items similar`
lists the pair from either side."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.service import MailroomInstance, plain_text, wait_for
from tests.similar_set import load
from tests.test_similar import OFFICERS, item_mail

# Reads today's date (a real serve and the CLI without a fixed time): run at a year boundary
# by the test command.
pytestmark = pytest.mark.wall_clock


@pytest.fixture
def mailroom(tmp_path: Path, db_url: str) -> Iterator[MailroomInstance]:
    instance = MailroomInstance(tmp_path / "office", db_url)
    instance.init()
    try:
        yield instance
    finally:
        instance.close()


def _desk(mailroom: MailroomInstance) -> list[EmailMessage]:
    return [m for m in mailroom.outbox_messages() if m["X-Mailroom-Origin"] == "desk"]


def _tracking_no(forward: EmailMessage) -> str:
    return str(forward["Subject"]).split()[0].removeprefix("【待编】")


@pytest.mark.slow
def test_the_second_units_forward_names_the_first_item_and_items_similar_lists_it(
    mailroom: MailroomInstance,
) -> None:
    versions = load()
    base, relayed = versions[0], versions[3]  # 01_flood: the item, and a copy reordered
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    mailroom.start()
    with smtplib.SMTP("127.0.0.1", mailroom.port, timeout=30) as smtp:
        for n, (unit, version) in enumerate((("天河区", base), ("越秀区", relayed)), 1):
            raw = item_mail(unit, version.title, version.body, n, today)
            smtp.sendmail(OFFICERS[unit][1], ["inf@mailroom.test"], raw)
            wait_for(lambda n=n: len(_desk(mailroom)) == 3 * n, what=f"item {n}'s forwards")
    forwards = _desk(mailroom)
    first, second = forwards[0], forwards[3]
    first_no, second_no = _tracking_no(first), _tracking_no(second)
    assert "疑似重复" not in plain_text(first) and "【疑似重复】" not in str(first["Subject"])
    for forward in forwards[3:]:
        assert "【疑似重复】" in str(forward["Subject"])
        text = plain_text(forward)
        assert "疑似重复：经系统比对" in text
        named = [ln for ln in text.splitlines() if first_no in ln]
        assert len(named) == 1 and "天河区" in named[0] and "相似度" in named[0]
    mailroom.stop()

    listed = mailroom.cli_json("items", "similar", second_no)
    assert [(r["tracking_no"], r["unit_code"], r["filed"]) for r in listed] == [
        (first_no, "TH", "before")
    ]
    assert listed[0]["similarity"] >= 0.9
    back = mailroom.cli_json("items", "similar", first_no)
    assert [(r["tracking_no"], r["filed"]) for r in back] == [(second_no, "after")]
    assert mailroom.cli_json("items", "show", second_no)["similar"] == [first_no]
    rows = {r["tracking_no"]: r["similar"] for r in mailroom.cli_json("items", "list")}
    assert rows == {first_no: [second_no], second_no: [first_no]}
    table = mailroom.cli("items", "similar", second_no).stdout
    assert first_no in table and "before" in table
    missing = mailroom.cli("items", "similar", "GZ-1999-000001", check=False)
    assert missing.returncode != 0 and "no item with tracking number" in missing.stderr
