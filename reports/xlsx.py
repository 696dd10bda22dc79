"""The .xlsx attachment: the report's tables, one sheet per sequence, with a native bar chart.

Headers are bold on a tinted fill, columns are sized to their text, the header row is frozen,
and each sequence sheet carries an Excel bar chart of points against target.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import copy
from decimal import Decimal
from io import BytesIO
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.data_source import AxDataSource, StrRef
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ledger.wording import IDENTITY, Words
from reports.model import (
    AnnualReport,
    AwardLine,
    ExcellenceLine,
    ExcellentItem,
    MonthlyReport,
    PaymentLine,
    QuarterlyReport,
    Report,
    SequenceTable,
    StandingRow,
)
from reports.render import display_width

Cell = str | int | Decimal | None

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="1F4E79")
THIN = Side(style="thin", color="9E9E9E")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
MISSED_FONT = Font(color="C62828", bold=True)
CHART_WIDTH_CM = 20


def _met_text(met: bool | None, w: Words) -> str:
    return "—" if met is None else w("达标" if met else "未达标")


def _sheet(
    wb: Workbook, title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]]
) -> Worksheet:
    ws = wb.create_sheet(title=title[:31])
    ws.append(list(headers))
    for row in rows:
        ws.append(list(row))
    for cell in ws[1]:
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = BORDER
    # Setting a style object on a cell hashes it against the workbook's styles: for a
    # province's thousand-row sheets that is most of the report's time. The border is set on
    # the first body cell; the others take a copy of its style ids.
    body = (cell for line in ws.iter_rows(min_row=2, max_row=ws.max_row) for cell in line)
    first = next(body, None)
    if first is not None:
        first.border = BORDER
        for cell in body:
            cell._style = copy(first._style)
    for index, header in enumerate(headers, start=1):
        values = [header, *(str(r[index - 1]) for r in rows if r[index - 1] is not None)]
        ws.column_dimensions[get_column_letter(index)].width = min(
            max(display_width(v) for v in values) + 3, 60
        )
    ws.freeze_panes = "A2"
    ws.row_dimensions[1].height = 22
    return ws


def _count_sheet(wb: Workbook, table: SequenceTable, w: Words) -> Worksheet:
    """A sequence ranked by counts: items submitted and adopted, and the months of its quota."""
    headers = w.all("排名", "单位代码", "单位", "报送", "采用")
    rows: list[list[Cell]] = [
        [r.rank, r.unit_code, r.unit_name, r.submitted, r.adopted] for r in table.rows
    ]
    if table.has_quota_months:
        headers.append(w("月度报送达标"))
        for row, r in zip(rows, table.rows, strict=True):
            row.append(r.quota_months)
    return _sheet(wb, table.sheet_name, headers, rows)


def _standings_sheet(wb: Workbook, table: SequenceTable, w: Words) -> Worksheet:
    if table.metric == "count":
        return _count_sheet(wb, table, w)
    pubs = table.columns
    headers = [
        *w.all("排名", "单位代码", "单位", "报送", "采用"),
        *pubs,
        *w.all("加分", "扣分", "得分", "指标", "完成情况"),
    ]
    rows: list[list[Cell]] = []
    for r in table.rows:
        by_pub = dict(r.breakdown)
        rows.append(
            [
                r.rank,
                r.unit_code,
                r.unit_name,
                r.submitted,
                r.adopted,
                *(by_pub.get(p, Decimal(0)) for p in pubs),
                r.bonuses,
                r.deductions,
                r.points,
                r.target,
                _met_text(r.met, w),
            ]
        )
    met_col = len(headers)
    if any(r.task for r in table.rows):
        headers.append(w("年度任务"))
        for row, r in zip(rows, table.rows, strict=True):
            row.append(r.task)
    ws = _sheet(wb, table.sheet_name, headers, rows)
    for row_index, r in enumerate(table.rows, start=2):
        if r.met is False:
            ws.cell(row=row_index, column=met_col).font = MISSED_FONT
    _chart(ws, table.rows, w, name_col=3, points_col=met_col - 2, target_col=met_col - 1)
    return ws


def _chart(
    ws: Worksheet,
    rows: Sequence[StandingRow],
    w: Words,
    *,
    name_col: int,
    points_col: int,
    target_col: int,
) -> None:
    if not rows:
        return
    last = len(rows) + 1
    chart = BarChart()
    chart.type = "bar"  # horizontal bars: long unit names stay readable
    chart.grouping = "clustered"
    chart.title = w("得分与指标")
    chart.y_axis.title = w("分")
    chart.x_axis.scaling.orientation = "maxMin"  # first-ranked unit at the top
    chart.height = max(7.5, 0.8 * len(rows) + 3)
    chart.width = CHART_WIDTH_CM
    chart.add_data(
        Reference(ws, min_col=points_col, max_col=target_col, min_row=1, max_row=last),
        titles_from_data=True,
    )
    names = Reference(ws, min_col=name_col, min_row=2, max_row=last)
    for series in chart.series:  # unit names are text: a string reference, not a number one
        series.cat = AxDataSource(strRef=StrRef(f=str(names)))
    chart.x_axis.delete = False  # show both axes (openpyxl leaves it to the reader otherwise)
    chart.y_axis.delete = False
    ws.add_chart(chart, f"{get_column_letter(target_col + 3)}2")


def _quarterly_extras(wb: Workbook, report: QuarterlyReport, w: Words) -> None:
    notices = [*report.praise, *report.criticism]
    _sheet(
        wb,
        w("表扬与批评"),
        w.all("单位代码", "单位", "类别", "季度数", "通报对象", "提请更换信息员"),
        [
            [
                n.unit_code,
                n.unit_name,
                w("通报表扬" if n.kind == "praise" else "通报批评"),
                n.quarters,
                w(n.audience_title),
                w("是") if n.replace_officer else "",
            ]
            for n in notices
        ],
    )
    _excellent_sheet(wb, report.excellent, w)
    _sheet(
        wb,
        w("核心队伍"),
        w.all("序号", "姓名", "单位", "得分", "信息条数"),
        [[i, c.name, c.unit_name, c.points, c.items] for i, c in enumerate(report.core_team, 1)],
    )
    a = report.analysis
    _sheet(
        wb,
        w("分析"),
        w.all("项目", "本季度", "上季度"),
        [
            [w("报送信息（条）"), a.submitted, a.previous_submitted],
            [w("采用信息（条）"), a.adopted, a.previous_adopted],
            [w("采用率（%）"), a.adoption_rate, a.previous_adoption_rate],
            [w("无信息被采用的单位（个）"), len(a.units_without_adoption), None],
            [w("约稿逾期报送（次）"), a.late_answers, None],
            [w("未配备在任信息员的单位（个）"), len(a.units_without_officer), None],
        ],
    )


def _excellent_sheet(
    wb: Workbook, items: Sequence[ExcellentItem], w: Words, title: str | None = None
) -> None:
    _sheet(
        wb,
        title or w("优秀信息篇目"),
        w.all("序号", "登记编号", "题目", "报送单位", "采用情况", "得分"),
        [
            [i, e.tracking_no, e.title, e.unit_name, e.publication, e.points]
            for i, e in enumerate(items, 1)
        ],
    )


def _payments_sheet(wb: Workbook, payments: Sequence[PaymentLine], w: Words) -> None:
    rows: list[list[Cell]] = [
        [p.unit_name, p.author, p.tracking_no, p.title, p.reason, p.amount_yuan] for p in payments
    ]
    rows.append([w("合计"), None, None, None, None, sum(p.amount_yuan for p in payments)])
    headers = w.all("单位", "撰稿人", "登记编号", "题目", "事由", "金额（元）")
    _sheet(wb, w("稿酬"), headers, rows)


def _monthly_extras(wb: Workbook, report: MonthlyReport, w: Words) -> None:
    if report.deductions is not None:
        _sheet(
            wb,
            w("扣分说明"),
            w.all("单位", "序列", "扣分项", "扣分", "日期", "说明"),
            [
                [d.unit_name, d.sequence_title, d.rule, d.points, d.date, d.note]
                for d in report.deductions
            ],
        )
    if report.lagging is not None:
        _sheet(
            wb,
            w("落后单位"),
            w.all("单位代码", "单位", "本月得分", "累计得分"),
            [
                [r.unit_code, r.unit_name, r.month_points, r.cumulative_points]
                for r in report.lagging
            ],
        )
    if report.payments is not None:
        _payments_sheet(wb, report.payments, w)


def _awards_sheet(wb: Workbook, awards: Sequence[AwardLine], w: Words) -> None:
    _sheet(
        wb,
        w("年度评选"),
        w.all("奖项", "名额", "奖励（元）", "名次", "序列", "单位或姓名", "所在单位", "得分"),
        [
            [
                a.name,
                a.quota,
                a.yuan or None,
                e.rank,
                e.sequence_title,
                e.name,
                e.unit_name,
                e.points,
            ]
            for a in awards
            for e in a.entries
        ],
    )


def _excellence_and_note(
    wb: Workbook, lists: Sequence[ExcellenceLine], note: str, w: Words
) -> None:
    for found in lists:
        _excellent_sheet(wb, found.items, w, found.name)
    if note:
        title = w("工作说明")
        _sheet(wb, title, [title], [[line] for line in note.split("\n") if line.strip()])


def workbook(report: Report, words: Words = IDENTITY) -> Workbook:
    """The report's workbook; its fixed words (sheet names, headers) in `words`' language."""
    w = words
    wb = Workbook()
    assert wb.active is not None
    wb.remove(wb.active)
    if isinstance(report, MonthlyReport):
        for t in report.tables:
            if t.has_quota:
                _sheet(
                    wb,
                    t.sheet_name,
                    w.all("排名", "单位代码", "单位", "本月报送", "本月采用", "报送指标", "完成",
                          "本月得分", "累计得分"),
                    [
                        [r.rank, r.unit_code, r.unit_name, r.month_submitted, r.month_adopted,
                         r.quota, _met_text(r.quota_met, w), r.month_points, r.cumulative_points]
                        for r in t.rows
                    ],
                )  # fmt: skip
                continue
            _sheet(
                wb,
                t.sheet_name,
                w.all("排名", "单位代码", "单位", "本月得分", "累计得分", "年度指标"),
                [
                    [
                        r.rank,
                        r.unit_code,
                        r.unit_name,
                        r.month_points,
                        r.cumulative_points,
                        r.annual_target,
                    ]
                    for r in t.rows
                ],
            )
        _monthly_extras(wb, report, w)
        _excellence_and_note(wb, (), report.note, w)
    else:
        for table in report.tables:
            _standings_sheet(wb, table, w)
        if isinstance(report, QuarterlyReport):
            _quarterly_extras(wb, report, w)
            _excellence_and_note(wb, report.excellence_lists, report.note, w)
        elif isinstance(report, AnnualReport):
            candidate, missed = w("先进/积极单位候选"), w("未完成年度指标")
            _sheet(
                wb,
                w("评选候选与未达标"),
                w.all("单位代码", "单位", "序列", "得分", "指标", "类别"),
                [
                    [r.unit_code, r.unit_name, r.sequence, r.points, r.target, candidate]
                    for r in report.award_candidates
                ]
                + [
                    [r.unit_code, r.unit_name, r.sequence, r.points, r.target, missed]
                    for r in report.missed_target
                ],
            )
            _excellent_sheet(wb, report.excellent, w)
            if report.awards:
                _awards_sheet(wb, report.awards, w)
            if report.payments is not None:
                _payments_sheet(wb, report.payments, w)
            _excellence_and_note(wb, report.excellence_lists, report.note, w)
    if not wb.worksheets:
        _sheet(wb, w("无数据"), [w("说明")], [[w("本期无参加排名的单位")]])
    return wb


def xlsx_bytes(report: Report, words: Words = IDENTITY) -> bytes:
    buffer = BytesIO()
    workbook(report, words).save(buffer)
    return buffer.getvalue()


def write_xlsx(report: Report, path: Path, words: Words = IDENTITY) -> None:
    path.write_bytes(xlsx_bytes(report, words))
