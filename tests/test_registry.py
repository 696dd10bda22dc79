"""The registry import and export (SPEC §5.1), on SQLite and PostgreSQL alike.

Fixture files live in tests/data/registry/: Chinese headers saved as GB18030 the way Excel on
Chinese Windows saves CSV, a UTF-8 file with a BOM, and files with bad rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.db import Ledger
from ledger.demo import DEMO_DIR, DEMO_FILES, load_demo
from ledger.models import Person, Unit
from ledger.registry import (
    ImportSummary,
    RegistryError,
    export_registry,
    import_registry,
)
from ledger.registry.formats import DATE_COLUMNS
from ledger.rulebook import load_rulebook
from mailroom.errors import UserError

DATA = Path(__file__).parent / "data" / "registry"


def count(session: Session, model: type[Unit] | type[Person]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def unit(session: Session, code: str) -> Unit:
    return session.scalars(select(Unit).where(Unit.code == code)).one()


def people_of(session: Session, code: str) -> dict[str, Person]:
    stmt = select(Person).join(Person.unit).where(Unit.code == code)
    return {person.role: person for person in session.scalars(stmt)}


def snapshot(session: Session) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every column of every unit and person, to prove an import changed nothing."""
    units = session.execute(select(Unit.__table__).order_by(Unit.id)).all()
    people = session.execute(select(Person.__table__).order_by(Person.id)).all()
    return [tuple(row) for row in units], [tuple(row) for row in people]


def import_files(ledger: Ledger, *paths: Path) -> ImportSummary:
    with ledger.transaction() as session:
        return import_registry(session, list(paths), load_rulebook("guangzhou-2004"))


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty folder for exports (the SQLite ledger lives in tmp_path itself)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


# -- the demo registry ---------------------------------------------------------------------------


def test_demo_registry_loads_the_guangzhou_units_and_people(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        summary = load_demo(session)
    assert summary == ImportSummary(units_added=30, people_added=90)

    with ledger.reader() as session:
        assert count(session, Unit) == 30
        assert count(session, Person) == 90
        stmt = select(Unit.sequence, func.count()).group_by(Unit.sequence)
        assert dict(session.execute(stmt).all()) == {
            "district": 12,
            "dept_a": 8,
            "dept_b": 6,
            "direct": 3,
            "office": 1,
        }

        tianhe = unit(session, "TH")
        assert (tianhe.name, tianhe.mark, tianhe.sequence) == ("天河区", "【天河区】", "district")
        officer = people_of(session, "TH")["officer"]
        assert (officer.name, officer.email, officer.phone, officer.title) == (
            "李明",
            "liming@th.gz.test",
            "13800138000",
            "信息科科员",
        )
        assert people_of(session, "YX")["officer"].email == "wangfang@yx.gz.test"
        assert unit(session, "YX").mark == "【越秀区】"

        parents = {u.code: u.parent.code for u in session.scalars(select(Unit)) if u.parent}
        assert parents == {"DT": "JSW", "GZG": "JTW", "GDJ": "JMW"}

        office = unit(session, "GZB")
        assert (office.sequence, office.mark) == ("office", "【市府办公厅】")
        editors = session.scalars(select(Person).where(Person.role == "editor")).all()
        assert {e.unit_id for e in editors} == {office.id}
        assert "chenjing@gzb.gz.test" in {e.email for e in editors}
        assert len(editors) == 3

        # Every ranked unit has its officer and both leaders; all mail goes to .test only.
        for u in session.scalars(select(Unit).where(Unit.sequence != "office")):
            assert set(people_of(session, u.code)) == {
                "officer",
                "supervising_leader",
                "principal_leader",
            }, u.code
        emails = session.scalars(select(Person.email)).all()
        assert all(email.endswith(".gz.test") for email in emails)
        assert len(set(emails)) == len(emails)


def test_reimporting_the_demo_changes_nothing(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        load_demo(session)
    with ledger.reader() as session:
        before = snapshot(session)

    summary = import_files(ledger, DEMO_DIR / "people.csv", DEMO_DIR / "units.csv")

    assert summary == ImportSummary(unchanged=120)
    with ledger.reader() as session:
        assert snapshot(session) == before


def test_a_changed_row_updates_in_place_and_a_missing_column_keeps_its_value(
    ledger: Ledger, tmp_path: Path
) -> None:
    with ledger.transaction() as session:
        load_demo(session)
        officer_id = people_of(session, "TH")["officer"].id
    # No phone or title column: those stay as they are; the name is corrected.
    people = write_csv(
        tmp_path / "people.csv",
        [["unit_code", "role", "name", "email"], ["TH", "officer", "李 明", "liming@th.gz.test"]],
    )
    units = write_csv(
        tmp_path / "units.csv",
        [["code", "name", "mark", "sequence"], ["TH", "天河区政府", "天河区", "district"]],
    )

    summary = import_files(ledger, people, units)

    assert summary == ImportSummary(units_updated=1, people_updated=1)
    with ledger.reader() as session:
        officer = people_of(session, "TH")["officer"]
        assert (officer.id, officer.name) == (officer_id, "李 明")
        assert (officer.phone, officer.title) == ("13800138000", "信息科科员")
        assert unit(session, "TH").name == "天河区政府"
        assert count(session, Person) == 90


# -- encodings, Chinese headers, workbooks -------------------------------------------------------


def test_chinese_headers_in_gb18030_csv_files(ledger: Ledger) -> None:
    units, people = DATA / "units_zh_gb18030.csv", DATA / "people_zh_gb18030.csv"
    with pytest.raises(UnicodeDecodeError):
        units.read_bytes().decode("utf-8")  # the fixture really is GB18030, not UTF-8

    summary = import_files(ledger, units, people)

    assert summary == ImportSummary(units_added=4, people_added=5)
    with ledger.reader() as session:
        tianhe = unit(session, "TH")
        assert (tianhe.name, tianhe.mark, tianhe.sequence) == ("天河区", "【天河区】", "district")
        port = unit(session, "GZG")
        assert port.sequence == "direct"
        assert port.parent is not None and port.parent.code == "JTW"
        assert unit(session, "GZB").sequence == "office"
        roles = {role: p.email for role, p in people_of(session, "TH").items()}
        assert roles == {
            "officer": "liming@th.gz.test",
            "supervising_leader": "zhuhongmei@th.gz.test",
            "principal_leader": "hudeming@th.gz.test",
        }
        assert people_of(session, "GZB")["editor"].name == "陈静"
    assert import_files(ledger, people, units) == ImportSummary(unchanged=9)


def test_utf8_csv_with_bom_and_crlf_and_any_column_order(ledger: Ledger) -> None:
    path = DATA / "units_bom.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    summary = import_files(ledger, path)

    assert summary == ImportSummary(units_added=4)
    with ledger.reader() as session:
        marks = dict(session.execute(select(Unit.code, Unit.mark)).all())
        assert marks == {
            "TH": "【天河区】",
            "JSW": "【市建委】",
            "DT": "【广州地铁】",
            "GZB": "【市府办公厅】",
        }
        assert unit(session, "JSW").sequence == "dept_a"
        subway = unit(session, "DT")
        assert subway.parent is not None and subway.parent.code == "JSW"


def test_xlsx_with_chinese_sheet_names_and_numeric_cells(ledger: Ledger, tmp_path: Path) -> None:
    workbook = Workbook()
    units = workbook.active
    units.title = "单位"
    units.append(["单位代码", "单位名称", "标识", "序列", "上级单位代码"])
    units.append(["TH", "天河区", "【天河区】", "区县级市", None])
    units.append(["JMW", "市经济贸易委员会", "市经贸委", "部门A", None])
    units.append([None, None, None, None, None])  # a blank row Excel leaves behind
    units.append(["GDJ", "广州供电局", "[广州供电局]", "直报点", "JMW"])
    people = workbook.create_sheet("人员")
    people.append(["单位代码", "角色", "姓名", "邮箱", "电话", "职务"])
    # Excel keeps a typed phone number as a number.
    people.append(["TH", "信息员", "李明", "liming@th.gz.test", 13800138000, "信息科科员"])
    people.append(["GDJ", "信息员", "赖伟坚", "laiweijian@gdj.gz.test", None, None])
    workbook.create_sheet("说明").append(["填表说明：每个单位一行"])
    path = tmp_path / "registry.xlsx"
    workbook.save(path)

    summary = import_files(ledger, path)

    assert summary == ImportSummary(units_added=3, people_added=2)
    with ledger.reader() as session:
        officer = people_of(session, "TH")["officer"]
        assert (officer.phone, officer.title) == ("13800138000", "信息科科员")
        assert people_of(session, "GDJ")["officer"].phone == ""
        power = unit(session, "GDJ")
        assert power.mark == "【广州供电局】"
        assert power.parent is not None and power.parent.code == "JMW"
    assert import_files(ledger, path) == ImportSummary(unchanged=5)


def test_xlsx_problems_name_the_sheet_and_its_row(ledger: Ledger, tmp_path: Path) -> None:
    workbook = Workbook()
    units = workbook.active
    units.title = "units"
    units.append(["code", "name", "mark", "sequence", "parent_code"])
    units.append(["TH", "天河区", "天河区", "district", None])
    units.append(["GDJ", "广州供电局", "广州供电局", "直报点", None])
    people = workbook.create_sheet("people")
    people.append(["unit_code", "role", "name", "email", "phone", "title"])
    people.append(["TH", "officer", "李明", "liming@th", None, None])
    path = tmp_path / "registry.xlsx"
    workbook.save(path)

    with pytest.raises(RegistryError) as caught:
        import_files(ledger, path)

    assert caught.value.problems == [
        "registry.xlsx sheet units line 3: a direct (直报点) unit needs a parent_code",
        "registry.xlsx sheet people line 2: 'liming@th' is not an email address",
    ]
    with ledger.reader() as session:
        assert count(session, Unit) == 0


def test_a_quoted_value_spanning_lines_keeps_line_numbers_true(
    ledger: Ledger, tmp_path: Path
) -> None:
    path = tmp_path / "units.csv"
    path.write_text(
        'code,name,mark,sequence\nTH,"天河区\n(人民政府)",天河区,district\nYX,越秀区,越秀区,city\n',
        encoding="utf-8",
    )
    with pytest.raises(RegistryError) as caught:
        import_files(ledger, path)
    assert caught.value.problems[0].startswith("units.csv line 4: unknown sequence 'city'")


def test_a_direct_unit_may_name_a_parent_already_in_the_ledger(
    ledger: Ledger, tmp_path: Path
) -> None:
    with ledger.transaction() as session:
        load_demo(session)
    path = write_csv(
        tmp_path / "new.csv",
        [
            ["code", "name", "mark", "sequence", "parent_code"],
            ["BYJC", "广州白云国际机场股份有限公司", "【白云机场】", "direct", "JTW"],
        ],
    )

    assert import_files(ledger, path) == ImportSummary(units_added=1)
    with ledger.reader() as session:
        airport = unit(session, "BYJC")
        assert airport.parent is not None and airport.parent.code == "JTW"


# -- export --------------------------------------------------------------------------------------


def test_export_to_xlsx_then_reimport_changes_nothing(ledger: Ledger, out_dir: Path) -> None:
    with ledger.transaction() as session:
        load_demo(session)
        before = snapshot(session)
    path = out_dir / "registry.xlsx"
    with ledger.reader() as session:
        export_registry(session, path)

    workbook = load_workbook(path)
    assert workbook.sheetnames == ["units", "people"]
    header = [cell.value for cell in workbook["units"][1]]
    assert header == ["code", "name", "mark", "sequence", "parent_code", *DATE_COLUMNS]
    assert all(cell.font.bold for cell in workbook["people"][1])
    assert workbook["units"].max_row == 31 and workbook["people"].max_row == 91
    assert list(out_dir.iterdir()) == [path]  # no partial file left behind

    assert import_files(ledger, path) == ImportSummary(unchanged=120)
    with ledger.reader() as session:
        assert snapshot(session) == before


def test_export_to_csv_then_reimport_changes_nothing(ledger: Ledger, out_dir: Path) -> None:
    with ledger.transaction() as session:
        load_demo(session)
        before = snapshot(session)
    units, people = out_dir / "units.csv", out_dir / "people.csv"
    with ledger.reader() as session:
        export_registry(session, units, "units")
        export_registry(session, people, table="people")

    data = people.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # so Excel reads it as UTF-8
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0] == "unit_code,role,name,email,phone,title,active_from,active_to"
    assert "TH,officer,李明,liming@th.gz.test,13800138000,信息科科员,," in text
    assert "DT,广州市地下铁道总公司,【广州地铁】,direct,JSW,," in units.read_text("utf-8-sig")

    assert import_files(ledger, units, people) == ImportSummary(unchanged=120)
    with ledger.reader() as session:
        assert snapshot(session) == before


def test_export_refuses_an_unclear_request(ledger: Ledger, out_dir: Path) -> None:
    with ledger.reader() as session:
        with pytest.raises(RegistryError, match="units or people"):
            export_registry(session, out_dir / "registry.csv")
        with pytest.raises(RegistryError, match=r"unsupported file type '\.ods'"):
            export_registry(session, out_dir / "registry.ods")
        with pytest.raises(RegistryError, match="cannot write the file"):
            export_registry(session, out_dir / "no-such-folder" / "registry.xlsx")
    assert list(out_dir.iterdir()) == []


# -- bad input: every problem reported, nothing changed ------------------------------------------


def test_bad_rows_are_all_reported_by_line_and_nothing_is_imported(ledger: Ledger) -> None:
    # line 3: unknown sequence; line 5: a direct unit without its parent.
    with pytest.raises(RegistryError) as caught:
        import_files(ledger, DATA / "bad_units.csv")

    error = caught.value
    assert isinstance(error, UserError)
    assert str(error) == "registry not imported, nothing was changed: 2 problems: " + " | ".join(
        error.problems
    )
    assert error.problems == [
        "bad_units.csv line 3: unknown sequence 'county'; use district (区、县级市), "
        "dept_a (工作部门A类), dept_b (工作部门B类), direct (直报点) or office (本办)",
        "bad_units.csv line 5: a direct (直报点) unit needs a parent_code",
    ]
    with ledger.reader() as session:
        assert count(session, Unit) == 0
        assert count(session, Person) == 0


def test_bad_people_rows_leave_the_existing_registry_untouched(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        load_demo(session)
        before = snapshot(session)

    with pytest.raises(RegistryError) as caught:
        import_files(ledger, DATA / "bad_people.csv")

    assert caught.value.problems == [
        "bad_people.csv line 3: liming@th.gz.test is already listed as officer of TH on "
        "bad_people.csv line 2",
        "bad_people.csv line 4: editors belong to the office unit (sequence office), "
        "not to TH (district)",
        "bad_people.csv line 5: unknown unit code 'XX'",
        "bad_people.csv line 6: 'liuyang at th.gz.test' is not an email address",
        "bad_people.csv line 7: unknown role 'boss'; use officer (信息员), supervising_leader "
        "(主管领导), principal_leader (主要领导), editor (编辑), or an approver: "
        "section_chief (信息科长), deputy_secretary_general (分管副秘书长), director "
        "(办公室主任), secretary_general (秘书长), vice_mayor (分管副市长), mayor (市长)",
    ]
    assert str(caught.value).startswith("registry not imported, nothing was changed: 5 problems")
    with ledger.reader() as session:
        assert snapshot(session) == before


def test_unknown_headers_and_empty_fields_are_named(ledger: Ledger, tmp_path: Path) -> None:
    odd_header = write_csv(
        tmp_path / "units.csv",
        [["code", "name", "mark", "sequence", "备注"], ["TH", "天河区", "天河区", "district", ""]],
    )
    empty_fields = write_csv(
        tmp_path / "people.csv",
        [["unit_code", "role", "name", "email"], ["", "officer", "", "a@th.gz.test"]],
    )

    with pytest.raises(RegistryError) as caught:
        import_files(ledger, odd_header, empty_fields)

    problems = caught.value.problems
    assert problems[0].startswith("units.csv line 1: unknown header '备注'")
    assert problems[1:] == [
        "people.csv line 2: unit_code is empty",
        "people.csv line 2: name is empty",
    ]
    with ledger.reader() as session:
        assert count(session, Unit) == 0


def test_duplicate_codes_marks_and_bad_parents_are_refused(ledger: Ledger, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "units.csv",
        [
            ["code", "name", "mark", "sequence", "parent_code"],
            ["TH", "天河区", "天河区", "district", ""],
            ["TH", "天河区", "【天河】", "district", ""],
            ["HZ", "海珠区", "[天河区]", "district", ""],
            ["DT", "广州地铁", "广州地铁", "direct", "NOPE"],
            ["GZG", "广州港集团", "广州港集团", "direct", "DT"],
            ["YX", "越秀区", "越秀区", "district", "TH"],
            ["GZB", "新闻信息处", "【市府办公厅", "office", ""],
        ],
    )

    with pytest.raises(RegistryError) as caught:
        import_files(ledger, path)

    assert caught.value.problems == [
        "units.csv line 3: unit code 'TH' is already on units.csv line 2",
        "units.csv line 4: mark 【天河区】 is already used by unit TH on units.csv line 2",
        "units.csv line 5: parent_code: unknown unit code 'NOPE'",
        "units.csv line 6: parent DT is a direct unit; a direct unit's parent must be a "
        "ranked unit that has no parent itself",
        "units.csv line 7: only direct (直报点) units have a parent_code",
        "units.csv line 8: mark '【市府办公厅' is not a name such as 【天河区】",
    ]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("units.xls", b"\xd0\xcf\x11\xe0", "units.xls: unsupported file type '.xls'"),
        ("units.csv", b"", "units.csv: no header row"),
        ("units.csv", b"foo,bar\r\n1,2\r\n", "units.csv line 1: header row not recognised"),
        ("units.xlsx", b"not a zip", "units.xlsx: cannot open as an .xlsx workbook"),
    ],
)
def test_unusable_files_are_refused(
    ledger: Ledger, tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RegistryError) as caught:
        import_files(ledger, path)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(expected)


def test_demo_files_are_plain_utf8_with_english_headers() -> None:
    units, people = (path.read_bytes() for path in DEMO_FILES)
    assert not units.startswith(b"\xef\xbb\xbf")
    assert units.decode("utf-8").splitlines()[0] == "code,name,mark,sequence,parent_code"
    assert people.decode("utf-8").splitlines()[0] == "unit_code,role,name,email,phone,title"
