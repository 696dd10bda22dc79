"""The walking skeleton end to end: `mailroom serve` on a real socket, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.service import MailroomInstance, plain_text, wait_for

# Reads today's date (a real serve, the CLI or a mailbox without a fixed time): run at
# a year boundary by the test command.
pytestmark = pytest.mark.wall_clock

EXAMPLES = REPO / "examples"
VALID = (EXAMPLES / "valid.eml").read_bytes()
MALFORMED = (EXAMPLES / "malformed.eml").read_bytes()


@pytest.fixture
def mailroom(tmp_path: Path, db_url: str) -> Iterator[MailroomInstance]:
    instance = MailroomInstance(tmp_path / "office", db_url)
    instance.cli("init", "--demo")
    try:
        yield instance
    finally:
        instance.close()


def send(port: int, mail_from: str, to: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail(mail_from, [to], raw)


@pytest.mark.slow
def test_example_items_over_smtp(mailroom: MailroomInstance) -> None:
    mailroom.start()
    send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", VALID)
    send(mailroom.port, "wangfang@yx.gz.test", "inf@mailroom.test", MALFORMED)

    # A receipt and a refusal, and the filed item's forward to each of the 3 demo editors.
    wait_for(lambda: len(mailroom.outbox_messages()) == 5, what="a receipt and a refusal")
    replies = {str(m["To"]): m for m in mailroom.outbox_messages() if m["Reply-To"] is None}

    receipt = replies["liming@th.gz.test"]
    assert str(receipt["Subject"]).startswith("回执：GZ-")
    assert receipt["Auto-Submitted"] == "auto-replied"
    assert receipt["In-Reply-To"] == "<202611221015320911274@th.gz.test>"
    items = mailroom.cli_json("items", "list")
    assert len(items) == 1
    item = items[0]
    assert item["unit_code"] == "TH"
    assert item["title"] == "天河区多措并举推进“放管服”改革取得新成效"
    assert item["status"] == "filed"
    assert item["tracking_no"] in str(receipt["Subject"])
    assert f"正文字数：{item['body_chars']} 字" in plain_text(receipt)

    refusal = replies["wangfang@yx.gz.test"]
    assert str(refusal["Subject"]) == "退稿：越秀区开展城市环境综合整治行动"
    assert refusal["Auto-Submitted"] == "auto-replied"
    text = plain_text(refusal)
    expected = {
        "missing_mark": "主题开头缺少单位标识【越秀区】",
        "body_too_long": "超过 450 字上限",
        "missing_phone": "落款缺少联系电话",
        "bad_date": "落款日期“2026年13月5日”无法识别",
    }
    for code, chinese in expected.items():
        assert f"[{code}]" in text
        assert chinese in text
    html = refusal.get_body(("html",))
    assert html is not None and "missing_phone" in html.get_content()

    intake = mailroom.cli_json("intake", "list")
    states = sorted((row["state"], tuple(row["reasons"])) for row in intake)
    assert states[1] == ("rejected", ("missing_mark", "body_too_long", "missing_phone", "bad_date"))
    assert states[0][0] == "filed"
    assert {row["mailbox"] for row in intake} == {"daily"}
    outbox = mailroom.cli_json("outbox")
    assert sorted((o["kind"], o["state"]) for o in outbox if o["kind"] != "desk") == [
        ("receipt", "sent"),
        ("refusal", "sent"),
    ]


@pytest.mark.slow
def test_message_answered_250_survives_sigkill(mailroom: MailroomInstance) -> None:
    mailroom.start("--no-process")
    send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", VALID)
    mailroom.kill()
    assert len(mailroom.spooled()) == 1
    assert mailroom.cli_json("intake", "list") == []

    mailroom.start()
    wait_for(lambda: not mailroom.spooled(), what="the spool to drain")
    mailroom.stop()
    items = mailroom.cli_json("items", "list")
    assert len(items) == 1 and items[0]["unit_code"] == "TH"
    assert len(mailroom.cli_json("intake", "list")) == 1
    assert [o["kind"] for o in mailroom.cli_json("outbox")] == ["receipt", *["desk"] * 3]


@pytest.mark.slow
def test_spool_left_by_a_crash_mid_processing_is_filed_once(mailroom: MailroomInstance) -> None:
    # A crash after the ledger commit but before the message is marked done in the spool's
    # journal: the restart must recognise the spool id and not file the item a second time.
    mailroom.start("--no-process")
    send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", VALID)
    mailroom.kill()
    [spooled] = mailroom.spooled()
    [segment] = (mailroom.spool_dir / "journal").glob("*.seg")
    kept = segment.read_bytes()
    mailroom.start()
    wait_for(lambda: not mailroom.spooled(), what="the spool to drain")
    mailroom.stop()
    assert not segment.exists()  # filed, and the segment it ended was removed
    segment.write_bytes(kept)  # as if the mark had not reached the disk before the crash
    assert mailroom.spooled() == [spooled]
    mailroom.start()
    wait_for(lambda: not mailroom.spooled(), what="the replayed message to be handled")
    mailroom.stop()
    assert len(mailroom.cli_json("items", "list")) == 1
    assert len(mailroom.cli_json("intake", "list")) == 1


@pytest.mark.slow
def test_smtp_refusals_550_552_451(mailroom: MailroomInstance) -> None:
    mailroom.start()
    with smtplib.SMTP("127.0.0.1", mailroom.port, timeout=30) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail("liming@th.gz.test", ["someone@elsewhere.test"], VALID)
        assert refused.value.recipients["someone@elsewhere.test"][0] == 550

        # Over the configured 200,000 bytes: refused whole, at MAIL when its SIZE says so…
        big = VALID + b"\r\n" + (b"A" * 76 + b"\r\n") * 3000
        with pytest.raises(smtplib.SMTPSenderRefused) as oversize:
            smtp.sendmail("liming@th.gz.test", ["inf@mailroom.test"], big)
        too_big = b"5.3.4 Message too big: at most 200000 bytes are accepted here"
        assert (oversize.value.smtp_code, oversize.value.smtp_error) == (552, too_big)
        # … and after DATA when the client declared no size (RFC 3463: 5.3.4).
        smtp.rset()
        assert smtp.mail("liming@th.gz.test")[0] == 250
        assert smtp.rcpt("inf@mailroom.test")[0] == 250
        assert smtp.data(big) == (552, too_big)

    # Plus-addressed forms of a configured mailbox are that mailbox.
    send(mailroom.port, "liming@th.gz.test", "inf+th@mailroom.test", VALID)
    wait_for(lambda: len(mailroom.cli_json("intake", "list")) == 1, what="the plus-addressed item")

    # The spool cannot store anything (its journal removed, even the segment being written):
    # the sender hears 451 and keeps the message.
    journal = mailroom.spool_dir / "journal"
    shutil.rmtree(journal)
    journal.write_bytes(b"not a directory")
    for _ in range(2):  # the segment found gone, then no new one can be begun
        with smtplib.SMTP("127.0.0.1", mailroom.port, timeout=30) as smtp:
            with pytest.raises(smtplib.SMTPDataError) as unstored:
                smtp.sendmail("wangfang@yx.gz.test", ["inf@mailroom.test"], MALFORMED)
            assert unstored.value.smtp_code == 451
    journal.unlink()
    journal.mkdir()
    send(mailroom.port, "wangfang@yx.gz.test", "inf@mailroom.test", MALFORMED)
    wait_for(lambda: len(mailroom.cli_json("intake", "list")) == 2, what="the retried message")
    assert mailroom.stop() == 0


def _filers(pid: int) -> list[int]:
    """The filing processes among a `serve` process's children."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(p) for p in path.read_text().split()] if path.exists() else []
    found = []
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"mailroom.filer" in cmdline:
            found.append(child)
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # a zombie has ended; only its exit status is left


@pytest.mark.slow
def test_filing_runs_in_its_own_process_which_dies_with_serve(mailroom: MailroomInstance) -> None:
    mailroom.start()
    assert mailroom.proc is not None
    serve_pid = mailroom.proc.pid
    filers = wait_for(lambda: _filers(serve_pid), what="the filing process")
    assert len(filers) == 1
    filer = filers[0]
    serve_nice = os.getpriority(os.PRIO_PROCESS, serve_pid)
    wait_for(  # set by the child once it runs: accepting mail goes before filing it
        lambda: os.getpriority(os.PRIO_PROCESS, filer) > serve_nice, what="a lower priority"
    )
    send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", VALID)
    wait_for(lambda: not mailroom.spooled(), what="the spool to drain")
    mailroom.kill()
    wait_for(lambda: _gone(filer), timeout=10, what="the filer to die with its parent")
    assert len(mailroom.cli_json("items", "list")) == 1


@pytest.mark.slow
def test_a_filing_process_that_dies_is_started_again(mailroom: MailroomInstance) -> None:
    mailroom.start()
    assert mailroom.proc is not None
    serve_pid = mailroom.proc.pid
    first = wait_for(lambda: _filers(serve_pid), what="the filing process")[0]
    os.kill(first, signal.SIGKILL)
    send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", VALID)  # still answered 250
    second = wait_for(
        lambda: [p for p in _filers(serve_pid) if p != first and not _gone(p)],
        timeout=30,
        what="a new filing process",
    )
    assert len(second) == 1
    wait_for(lambda: not mailroom.spooled(), what="the spool to drain")
    assert mailroom.stop() == 0
    assert len(mailroom.cli_json("items", "list")) == 1
    assert "filing process ended unexpectedly" in mailroom.log.read_text()


@pytest.mark.slow
def test_sigusr1_writes_every_threads_stack_to_the_log_and_serve_goes_on(
    mailroom: MailroomInstance,
) -> None:
    mailroom.start()
    assert mailroom.proc is not None
    # serve's own word that it runs (an open port alone could be another test's serve, on a
    # port handed out twice): only then is the handler surely in place.
    wait_for(lambda: "mailroom: listening on" in mailroom.log.read_text(), what="serve started")
    mailroom.proc.send_signal(signal.SIGUSR1)
    # The dump is written by the main thread (mailroom.stacks), waiting in the loop run() started.
    dump = re.compile(
        r"[Tt]hread 0x[0-9a-f]+ \(most recent call first\):.*mailroom/service\.py", re.S
    )
    try:
        wait_for(lambda: dump.search(mailroom.log.read_text()), what="a stack dump in the log")
    except AssertionError as exc:
        ended = mailroom.proc.poll()
        raise AssertionError(
            f"{exc}; serve exit status {ended}; its log:\n{mailroom.log.read_text()[-6000:]}"
        ) from None
    send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", VALID)  # still serving
    assert mailroom.stop() == 0
    assert "stopping: filing process stopped" in mailroom.log.read_text()


@pytest.mark.slow
def test_a_message_of_megabytes_is_spooled_beside_the_loop_and_filed(
    tmp_path: Path, db_url: str
) -> None:
    from bench.workload import big_item
    from ingest.smtp import INLINE_SPOOL_BYTES

    letter = big_item(3_000_000)
    assert len(letter.data) > 10 * INLINE_SPOOL_BYTES
    mailroom = MailroomInstance(
        tmp_path / "office", db_url, **{"smtp.max_message_bytes": 4_000_000}
    )
    mailroom.cli("init", "--demo")
    try:
        mailroom.start()
        send(mailroom.port, letter.mail_from, "inf@mailroom.test", letter.data)
        send(mailroom.port, "liming@th.gz.test", "inf@mailroom.test", VALID)
        wait_for(
            lambda: len(mailroom.cli_json("items", "list")) == 2, timeout=60, what="both filed"
        )
        assert {row["state"] for row in mailroom.cli_json("intake", "list")} == {"filed"}
    finally:
        mailroom.close()
