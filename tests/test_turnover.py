"""Officer turnover and unit changes: dates in office in the registry files, `registry
deactivate`, the `inactive_sender` refusal, the standings before the change, a retired 直报点,
and units left without an officer (`registry check`, the quarterly report)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.pipeline import Arrival
from ledger.models import OutboundMessage, Person, Submission
from ledger.standings import officer_standings, standings
from mailroom.app import App
from mailroom.cli import main
from mailroom.config import load_config
from reports.build import build_report
from reports.model import QuarterlyReport
from reports.render import ReportWriter
from tests.service import plain_text

JAN_05 = datetime(2027, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Guangzhou, in 2027Q1
JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
OLD, NEW = "liming@th.gz.test", "zhaoqian@th.gz.test"


def item(sender: str, title: str, at: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"天河区 <{sender}>"
    msg["To"] = "inf@mailroom.test"
    msg["Subject"] = f"【天河区】{title}"
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid(domain="th.gz.test")
    signoff = (
        f"作者单位：天河区政府办公室\n姓名：李明\n联系电话：020-38620000\n日期：{at:%Y年%m月%d日}"
    )
    msg.set_content(f"{title}。天河区推进政务服务改革，群众办事更加便利。\n\n{signoff}\n")
    return msg.as_bytes()


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "mailroom.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    assert main(["--config", str(path), "init", "--demo"]) == 0
    return path


@pytest.fixture
def app(config: Path) -> Iterator[App]:
    office = App.open(load_config(config))
    try:
        yield office
    finally:
        office.close()


def cli(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def write_people(path: Path, rows: list[str], header: str) -> Path:
    # As Excel on Chinese Windows saves a CSV: GB18030.
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode("gb18030"))
    return path


def test_a_replaced_officer_is_refused_naming_the_new_one_and_history_stays(
    config: Path, app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    early = app.pipeline.process(
        item(OLD, "天河区一窗通办", JAN_05), Arrival("daily", "file", JAN_05)
    )
    assert early.state == "filed"
    with app.ledger.reader() as session:
        before = standings(session, app.rulebook, "2027Q1", app.config.zone)
        officers_before = officer_standings(session, app.rulebook, "2027Q1", app.config.zone)

    # The successor arrives in a file with the Chinese headers; the old officer leaves on the 10th.
    people = write_people(
        tmp_path / "人员.csv",
        ["TH,信息员,赵倩,zhaoqian@th.gz.test,020-38620001,信息科科员,2027-01-10,"],
        "单位代码,角色,姓名,邮箱,电话,职务,起始日期,截止日期",
    )
    assert "1 person added" in cli(config, capsys, "registry", "import", str(people))
    out = cli(config, capsys, "registry", "deactivate", OLD, "--from", "2027-01-10")
    assert "last day in office 2027-01-09" in out
    assert (
        cli(config, capsys, "registry", "import", str(people)).strip()
        == "imported: 1 row unchanged"
    )

    late = app.pipeline.process(
        item(OLD, "天河区二窗通办", JAN_10), Arrival("daily", "file", JAN_10)
    )
    assert (late.state, late.reasons) == ("rejected", ("inactive_sender",))
    fresh = app.pipeline.process(
        item(NEW, "天河区三窗通办", JAN_10), Arrival("daily", "file", JAN_10)
    )
    assert fresh.state == "filed"
    with app.ledger.reader() as session:
        refusal = session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.kind == "refusal", OutboundMessage.to_address == OLD
            )
        ).one()
        text = plain_text(_parse(refusal.message))
        first = session.scalars(select(Submission).order_by(Submission.id)).first()
        assert first is not None
        author = session.get_one(Person, first.author_id)
        after = standings(session, app.rulebook, "2027Q1", app.config.zone)
        officers_after = officer_standings(session, app.rulebook, "2027Q1", app.config.zone)
    assert "已于 2027-01-09 期满" in text and "本单位现登记的信息员为赵倩" in text
    assert "inactive_sender" in text
    # The first item keeps the officer who sent it; the unit's figures gain only the new item.
    assert (author.email, author.active_to) == (OLD, date(2027, 1, 9))
    th_before = next(s for s in before if s.unit_code == "TH")
    th_after = next(s for s in after if s.unit_code == "TH")
    assert (th_before.submitted, th_after.submitted) == (1, 2)
    assert [o for o in officers_after if o.name == "李明"] == [
        o for o in officers_before if o.name == "李明"
    ]


def _parse(data: bytes) -> EmailMessage:
    from email import message_from_bytes, policy

    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_dates_in_office_are_checked_and_exported(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_people(
        tmp_path / "people.csv",
        [
            "TH,officer,赵倩,zhaoqian@th.gz.test,,,2027年1月10日,2027/1/5",
            "TH,officer,钱一,qianyi@th.gz.test,,,next monday,",
        ],
        "unit_code,role,name,email,phone,title,active_from,active_to",
    )
    capsys.readouterr()
    assert main(["--config", str(config), "registry", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "active_to 2027-01-05 is before active_from 2027-01-10" in err
    assert "active_from 'next monday' is not a date" in err

    cli(config, capsys, "registry", "deactivate", OLD, "--from", "2027-03-01")
    export = tmp_path / "out.csv"
    cli(config, capsys, "registry", "export", str(export), "--table", "people")
    line = next(r for r in export.read_text("utf-8-sig").splitlines() if OLD in r)
    assert line.endswith(",,2027-02-28")
    # Exported and imported again: nothing changes.
    out = cli(config, capsys, "registry", "import", str(export))
    assert "added" not in out and "updated" not in out and "unchanged" in out


def test_a_unit_without_an_officer_is_listed_by_check_and_in_the_quarterly_report(
    config: Path, app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    before = json.loads(cli(config, capsys, "registry", "check", "--on", "2027-01-10", "--json"))
    assert before["units_without_officer"] == []
    cli(config, capsys, "registry", "deactivate", OLD, "--from", "2027-01-10")
    on_9 = json.loads(cli(config, capsys, "registry", "check", "--on", "2027-01-09", "--json"))
    on_10 = json.loads(cli(config, capsys, "registry", "check", "--on", "2027-01-10", "--json"))
    assert on_9["units_without_officer"] == []
    assert on_10["units_without_officer"] == [
        {"code": "TH", "name": "天河区", "sequence": "district"}
    ]
    assert "TH    天河区  district" in cli(
        config, capsys, "registry", "check", "--on", "2027-01-10"
    )

    with app.ledger.reader() as session:
        report = build_report(
            session, app.rulebook, "quarterly", "2027Q1", app.config.zone,
            office="广州市人民政府办公厅", issued=date(2027, 3, 1),
        )  # fmt: skip
    assert isinstance(report, QuarterlyReport)
    assert report.analysis.units_without_officer == ("天河区",)
    writer = ReportWriter()
    assert "尚未配备在任信息员的单位（1 个）：天河区，" in writer.text(report)
    assert "尚未配备在任信息员的单位（1 个）：天河区，" in writer.html(report)


def test_a_retired_direct_report_unit_is_not_ranked_after_its_end_date(
    config: Path, app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    units = tmp_path / "units.csv"
    units.write_text(
        "code,name,mark,sequence,parent_code,active_from,active_to\n"
        "DT,广州市地下铁道总公司,【广州地铁】,direct,JSW,,2027-02-28\n",
        encoding="utf-8",
    )
    assert "1 unit updated" in cli(config, capsys, "registry", "import", str(units))
    with app.ledger.reader() as session:
        q1 = standings(session, app.rulebook, "2027Q1", app.config.zone)
        q2 = standings(session, app.rulebook, "2027Q2", app.config.zone)
    assert "DT" in {s.unit_code for s in q1}
    assert "DT" not in {s.unit_code for s in q2} and "TH" in {s.unit_code for s in q2}


def test_an_editor_out_of_office_commands_nothing_and_gets_no_forwards(
    config: Path, app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    def desk_mail(at: datetime) -> bytes:
        msg = EmailMessage()
        msg["From"] = "陈静 <chenjing@gzb.gz.test>"
        msg["To"] = "desk@mailroom.test"
        msg["Subject"] = "编辑台指令"
        msg["Date"] = format_datetime(at)
        msg["Message-ID"] = make_msgid(domain="gzb.gz.test")
        msg.set_content("采用 GZ-2027-000001 穗府信息 标题\n")
        return msg.as_bytes()

    before = app.pipeline.process(desk_mail(JAN_05), Arrival("desk", "file", JAN_05))
    assert "not_an_editor" not in before.reasons  # known, refused for want of a key
    cli(config, capsys, "registry", "deactivate", "chenjing@gzb.gz.test", "--from", "2027-01-10")
    app.pipeline.clock = lambda: JAN_10  # the desk judges by the time it reads the command
    after = app.pipeline.process(desk_mail(JAN_10), Arrival("desk", "file", JAN_10))
    assert (after.state, after.reasons) == ("command_refused", ("not_an_editor",))
    filed = app.pipeline.process(
        item(OLD, "天河区四窗通办", JAN_05), Arrival("daily", "file", JAN_10)
    )
    assert filed.state == "filed"
    with app.ledger.reader() as session:
        forwarded = set(
            session.scalars(
                select(OutboundMessage.to_address).where(OutboundMessage.kind == "desk")
            )
        )
    assert forwarded and "chenjing@gzb.gz.test" not in forwarded
