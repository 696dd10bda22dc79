"""What a report says, as plain values: the builders fill these, the writers render them.

Every number here comes from the scoring seam (`reports.scoring`), which asks the ledger's
standings queries; nothing in `reports/` computes points a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from ledger.wording import N_


def date_text(day: date) -> str:
    """2026年3月1日: a date as a report writes it."""
    return f"{day.year}年{day.month}月{day.day}日"


ReportKind = Literal["monthly", "quarterly", "annual"]
REPORT_KINDS: tuple[ReportKind, ...] = ("monthly", "quarterly", "annual")


@dataclass(frozen=True)
class StandingRow:
    """One unit's line in a period's standings, as the scoring queries give it."""

    unit_code: str
    unit_name: str
    sequence: str
    rank: int
    submitted: int
    adopted: int
    points: Decimal
    target: Decimal | None
    met: bool | None
    # Where the points come from, as labelled columns: 采用得分, 线索得分, 直报点分成.
    breakdown: tuple[tuple[str, Decimal], ...] = ()
    bonuses: Decimal = Decimal(0)
    deductions: Decimal = Decimal(0)
    # The annual task and how far it got (市采用 3/15，区采用 5/18，积分 120/300); "" if none.
    task: str = ""
    quota: int | None = None  # a count quota for the period (items), and whether it is met
    quota_met: bool | None = None
    quota_months: str = ""  # of a longer period: the quota's months met, "2/3"; "" if none


@dataclass(frozen=True)
class DeductionLine:
    """A deduction of the month, explained (the rulebook's `monthly_deductions`)."""

    unit_name: str
    sequence_title: str
    rule: str
    points: Decimal
    note: str
    date: str


@dataclass(frozen=True)
class PaymentLine:
    """One payment (稿酬, author reward) in yuan."""

    unit_name: str
    author: str
    tracking_no: str
    title: str
    reason: str
    amount_yuan: int


@dataclass(frozen=True)
class AwardEntryLine:
    sequence_title: str
    name: str
    unit_name: str
    points: Decimal
    rank: int


@dataclass(frozen=True)
class AwardLine:
    """An award with its quota, and the units or officers proposed within it."""

    name: str
    kind: Literal["unit", "officer"]
    quota: int
    yuan: int
    entries: tuple[AwardEntryLine, ...]


@dataclass(frozen=True)
class ExcellenceLine:
    """One of the rulebook's lists of good items (优秀调研信息, 领导批示好信息)."""

    name: str
    items: tuple[ExcellentItem, ...]


@dataclass(frozen=True)
class MonthlyRow:
    """A unit in the monthly 通报: the month's points and the year's so far, ranked by those."""

    unit_code: str
    unit_name: str
    sequence: str
    month_points: Decimal
    cumulative_points: Decimal
    rank: int
    annual_target: Decimal | None
    # The month's items and its count quota, where the rulebook sets one (报送 100 篇/月).
    month_submitted: int = 0
    month_adopted: int = 0
    quota: int | None = None
    quota_met: bool | None = None


@dataclass(frozen=True)
class SequenceTable:
    """A sequence's rows, with the title and .xlsx sheet name its rulebook gives it."""

    sequence: str
    title: str
    rows: tuple[StandingRow, ...]
    sheet_name: str = ""
    metric: str = "points"  # count: the rulebook ranks by items submitted

    @property
    def has_quota_months(self) -> bool:
        return any(r.quota_months for r in self.rows)

    @property
    def columns(self) -> tuple[str, ...]:
        """The breakdown columns this table needs, in first-seen order."""
        seen: dict[str, None] = {}
        for row in self.rows:
            for name, _ in row.breakdown:
                seen.setdefault(name, None)
        return tuple(seen)


@dataclass(frozen=True)
class MonthlyTable:
    sequence: str
    title: str
    rows: tuple[MonthlyRow, ...]
    sheet_name: str = ""

    @property
    def has_quota(self) -> bool:
        return any(r.quota is not None for r in self.rows)


@dataclass(frozen=True)
class StreakNotice:
    """A streak rule that fired for a unit: praise or criticism to one of its leaders."""

    unit_code: str
    unit_name: str
    kind: Literal["praise", "criticism"]
    quarters: int
    audience: Literal["supervising_leader", "principal_leader"]
    replace_officer: bool = False

    @property
    def rule(self) -> str:
        return f"{self.kind}{self.quarters}"

    @property
    def audience_title(self) -> str:
        """In Simplified, as the code writes it: a writer puts it in its language set."""
        return N_("主管领导") if self.audience == "supervising_leader" else N_("主要领导")


@dataclass(frozen=True)
class ExcellentItem:
    """One of the period's 优秀信息篇目."""

    tracking_no: str
    unit_name: str
    title: str
    publication: str
    points: Decimal


@dataclass(frozen=True)
class CoreMember:
    """A member of the 优秀信息员核心队伍 for the quarter."""

    name: str
    unit_name: str
    points: Decimal
    items: int


@dataclass(frozen=True)
class Analysis:
    """The quarter in figures, against the previous quarter."""

    submitted: int
    adopted: int
    previous_submitted: int
    previous_adopted: int
    units_without_adoption: tuple[str, ...]
    late_answers: int
    # Guangzhou 二(二): every unit has an info officer; these had none in office on the day issued.
    units_without_officer: tuple[str, ...] = ()

    @staticmethod
    def rate(adopted: int, submitted: int) -> Decimal | None:
        """Adoption rate in per cent, one decimal; None when nothing was submitted."""
        if submitted == 0:
            return None
        return (Decimal(adopted) * 100 / Decimal(submitted)).quantize(Decimal("0.1"))

    @property
    def adoption_rate(self) -> Decimal | None:
        return self.rate(self.adopted, self.submitted)

    @property
    def previous_adoption_rate(self) -> Decimal | None:
        return self.rate(self.previous_adopted, self.previous_submitted)


@dataclass(frozen=True)
class ReportHeader:
    """What every report says about itself."""

    kind: ReportKind
    period: str  # 2026-03, 2026Q1 or 2026
    title: str  # 2026年度第一季度政务信息工作总结
    span: str  # 2025年12月1日至2026年2月28日
    office_name: str
    issued: str  # 2026年3月1日

    @property
    def basename(self) -> str:
        """Files of this report are named like `quarterly-2026Q1.xlsx`."""
        return f"{self.kind}-{self.period}"


@dataclass(frozen=True)
class MonthlyReport:
    header: ReportHeader
    tables: tuple[MonthlyTable, ...]
    # Sections a rulebook asks for; None when it does not.
    deductions: tuple[DeductionLine, ...] | None = None
    lagging: tuple[MonthlyRow, ...] | None = None
    payments: tuple[PaymentLine, ...] | None = None
    note: str = ""  # the office's own text for the period

    @property
    def payments_total(self) -> int:
        return sum(p.amount_yuan for p in self.payments or ())


@dataclass(frozen=True)
class QuarterlyReport:
    header: ReportHeader
    tables: tuple[SequenceTable, ...]
    praise: tuple[StreakNotice, ...]
    criticism: tuple[StreakNotice, ...]
    excellent: tuple[ExcellentItem, ...]
    core_team: tuple[CoreMember, ...]
    analysis: Analysis
    excellence_lists: tuple[ExcellenceLine, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class AnnualReport:
    header: ReportHeader
    tables: tuple[SequenceTable, ...]
    # Units whose every quarter met its target: candidates for 先进单位/积极单位.
    award_candidates: tuple[StandingRow, ...]
    missed_target: tuple[StandingRow, ...]
    excellent: tuple[ExcellentItem, ...] = field(default=())
    # Award quotas of the rulebook (先进集体 20 …), and the payment sheet when it asks for one.
    awards: tuple[AwardLine, ...] = ()
    payments: tuple[PaymentLine, ...] | None = None
    has_tasks: bool = False  # units have an annual task table (任务基数表)
    has_targets: bool = True  # some unit has an annual target or task
    excellence_lists: tuple[ExcellenceLine, ...] = ()
    officer_award_names: tuple[str, ...] = ()
    officer_candidates: tuple[CoreMember, ...] = ()
    note: str = ""

    @property
    def payments_total(self) -> int:
        return sum(p.amount_yuan for p in self.payments or ())


Report = MonthlyReport | QuarterlyReport | AnnualReport
