"""Receipts (回执), refusals (退稿) and answers to a unit's 查询: rendered from Jinja2 templates,
threaded, auto-submitted."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ledger.compose import Sender, compose
from ledger.status import ItemStatus, UnitStatus, points_text
from parser.types import DecodedMessage, Problem

TEMPLATE_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Explained:
    code: str
    text: str
    fix: str


_HOUR = 60  # minutes
_DAY = 24 * _HOUR


def duration_text(minutes: int) -> str:
    """A span as a reader takes it in: under two hours in minutes, under two days in hours,
    else in days (40 分钟, 5 小时, 10 天; rounded, the text around it says 约)."""
    if minutes < 2 * _HOUR:
        return f"{minutes} 分钟"
    if minutes < 2 * _DAY:
        return f"{round(minutes / _HOUR)} 小时"
    return f"{round(minutes / _DAY)} 天"


class ReplyWriter:
    """Renders reply mail in one language set (`zh-Hans` by default)."""

    def __init__(
        self,
        sender: str,
        sender_name: str,
        zone: tzinfo,
        language: str = "zh-Hans",
        required_signoff: tuple[str, ...] = ("unit", "author", "phone", "date"),
    ):
        folder = TEMPLATE_DIR / language
        self.env = Environment(
            loader=FileSystemLoader(folder),
            autoescape=select_autoescape(["html.j2"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._plain = Environment(autoescape=False)
        self._plain.filters["duration"] = duration_text
        self.problem_texts: dict[str, dict[str, str]] = tomllib.loads(
            (folder / "problems.toml").read_text(encoding="utf-8")
        )
        self.sender = sender
        self.sender_name = sender_name
        self.from_ = Sender(sender, sender_name)
        self.zone = zone
        # The elements a refusal reminds the sender of: the subject's, then the sign-off's the
        # rulebook requires (标识、标题、正文、作者单位、姓名、联系电话、日期 for Guangzhou).
        labels = tomllib.loads((folder / "signoff.toml").read_text(encoding="utf-8"))
        self.role_titles: dict[str, str] = labels["roles"]
        self.elements = "、".join([*labels["subject"], *(labels[e] for e in required_signoff)])

    def explain(self, problem: Problem) -> Explained:
        entry = self.problem_texts.get(problem.code, {"text": problem.code, "fix": ""})
        params: dict[str, Any] = {"found": None, "expected": None, **dict(problem.params)}
        if "roles" in params:  # registry roles, as the office calls them: 分管副秘书长或办公室主任
            titles = [self.role_titles.get(r, r) for r in str(params["roles"]).split(",") if r]
            params["roles"] = "或".join(
                ["、".join(titles[:-1]), titles[-1]] if titles[1:] else titles
            )
        return Explained(
            code=problem.code,
            text=self._plain.from_string(entry["text"]).render(params),
            fix=self._plain.from_string(entry.get("fix", "")).render(params),
        )

    def local_time(self, instant: datetime) -> str:
        return instant.astimezone(self.zone).strftime("%Y年%m月%d日 %H:%M")

    def _message(
        self,
        *,
        to: str,
        subject: str,
        original: DecodedMessage,
        kind: str,
        context: dict[str, Any],
        template: str | None = None,
    ) -> EmailMessage:
        return compose(
            kind=kind,
            sender=self.from_,
            to=to,
            subject=subject,
            text=self.env.get_template(f"{template or kind}.txt.j2").render(context),
            html=self.env.get_template(f"{template or kind}.html.j2").render(context),
            now=context["now"],
            answering=original,
        )

    def receipt(
        self,
        *,
        to: str,
        original: DecodedMessage,
        unit_name: str,
        tracking_no: str,
        title: str,
        body_chars: int,
        body_limit: int,
        attachment_name: str | None,
        attachment_chars: int | None,
        attachment_limit: int,
        received_at: datetime,
        quarter: str,
        warnings: tuple[Problem, ...],
        now: datetime,
        importance: str = "",
        approver: str = "",
    ) -> EmailMessage:
        context = {
            "importance": importance,
            "approver": approver,
            "unit_name": unit_name,
            "tracking_no": tracking_no,
            "title": title,
            "body_chars": body_chars,
            "body_limit": body_limit,
            "attachment_name": attachment_name,
            "attachment_chars": attachment_chars,
            "attachment_limit": attachment_limit,
            "received_local": self.local_time(received_at),
            "quarter": quarter,
            "warnings": [self.explain(w) for w in warnings],
            "office_name": self.sender_name,
            "now": now,
        }
        subject = f"回执：{tracking_no} {title}"
        return self._message(
            to=to, subject=subject, original=original, kind="receipt", context=context
        )

    def postmaster_forward(
        self,
        *,
        to: str,
        original: DecodedMessage,
        raw: bytes,
        envelope_from: str,
        recipient: str,
        received_at: datetime,
        now: datetime,
    ) -> EmailMessage:
        """Mail to postmaster, passed on to the operator with the original attached."""
        context = {
            "sender": envelope_from or original.from_address,
            "recipient": recipient,
            "received_local": self.local_time(received_at),
            "office_name": self.sender_name,
            "now": now,
        }
        msg = self._message(
            to=to,
            subject="发给 postmaster 的邮件",
            original=original,
            kind="postmaster",
            context=context,
        )
        msg.add_attachment(
            raw, maintype="application", subtype="octet-stream", filename="postmaster.eml"
        )
        return msg

    def refusal_unregistered(
        self, *, to: str, original: DecodedMessage, received_at: datetime, now: datetime
    ) -> EmailMessage:
        """The refusal an unregistered address gets: fixed words that quote nothing of the
        message (its subject, names and address are the sender's to choose, and the
        sender may not be who the From says)."""
        context = {
            "fix": self.explain(Problem.of("unknown_sender", address="")).fix,
            "received_local": self.local_time(received_at),
            "office_name": self.sender_name,
            "now": now,
        }
        return self._message(
            to=to,
            subject="退稿：发件邮箱未登记为信息员邮箱",
            original=original,
            kind="refusal",
            template="refusal_unregistered",
            context=context,
        )

    def refusal(
        self,
        *,
        to: str,
        original: DecodedMessage,
        addressee: str,
        problems: tuple[Problem, ...],
        received_at: datetime,
        now: datetime,
    ) -> EmailMessage:
        context = {
            "addressee": addressee,
            "problems": [self.explain(p) for p in problems],
            "original_subject": original.subject,
            "elements": self.elements,
            "received_local": self.local_time(received_at),
            "office_name": self.sender_name,
            "now": now,
        }
        subject = f"退稿：{original.subject or '（无主题）'}"
        return self._message(
            to=to, subject=subject, original=original, kind="refusal", context=context
        )

    def status(
        self,
        *,
        to: str,
        original: DecodedMessage,
        unit_name: str,
        now: datetime,
        found: UnitStatus | None = None,
        item: ItemStatus | None = None,
        sequence_name: str = "",
        refused: str = "",
    ) -> EmailMessage:
        """The answer to an officer's 查询: the unit's period, one of its items, or why not."""
        context: dict[str, Any] = {
            "unit_name": unit_name,
            "refused": refused,
            "item": self._item_line(item) if item is not None else None,
            "office_name": self.sender_name,
            "now": now,
        }
        subject = "查询结果：" + ((refused and "未予办理") or (item.tracking_no if item else ""))
        if found is not None:
            s = found.standing
            metric = s.metric if s is not None else "points"
            total = (Decimal(s.submitted) if metric == "count" else s.points) if s else Decimal(0)
            target = s.target if s is not None else None
            context.update(
                period_text=period_text(found.period.label),
                span=self._span(found.period.start, found.period.end),
                as_of=self.local_time(now),
                submitted=len(found.items),
                adopted=sum(1 for i in found.items if i.state == "adopted"),
                metric_text="报送条数" if metric == "count" else "得分",
                total=points_text(total),
                target=target,
                gap=points_text(max(Decimal(target or 0) - total, Decimal(0))),
                rank=s.rank if s is not None else None,
                ranked=found.ranked,
                sequence_name=sequence_name,
                items=[self._item_line(i) for i in found.items],
                pending=[self._item_line(i) for i in found.pending],
                solicitations=[
                    {
                        "code": o.code,
                        "topic": o.topic,
                        "deadline_local": self.local_time(o.deadline),
                    }
                    for o in found.open_solicitations
                ],
            )
            subject = f"查询结果：{context['period_text']}信息报送情况"
        return self._message(
            to=to, subject=subject, original=original, kind="status", context=context
        )

    def _item_line(self, item: ItemStatus) -> dict[str, Any]:
        return {
            "tracking_no": item.tracking_no,
            "title": item.title,
            "received_local": self.local_time(item.received_at),
            "state_text": STATE_TEXT[item.state],
            "adoptions": "、".join(item.adoptions),
            "points": item.points,
        }

    def _span(self, start: datetime, end: datetime) -> str:
        first = start.astimezone(self.zone).date()
        last = (end.astimezone(self.zone) - timedelta(days=1)).date()
        return (
            f"{first.year}年{first.month}月{first.day}日至{last.year}年{last.month}月{last.day}日"
        )


STATE_TEXT = {
    "adopted": "已采用",
    "declined": "不采用",
    "returned": "退回修改",
    "superseded": "已由修改稿替代",
    "pending": "待编辑审核",
}
_NUMBERS = "一二三四五六七八九十"


def period_text(label: str) -> str:
    """2027Q1 → 2027年度第一季度; 2027 → 2027年度; 2027-03 → 2027年3月."""
    if "Q" in label:
        year, number = label.split("Q")
        return f"{year}年度第{_NUMBERS[int(number) - 1]}季度"
    if "-" in label:
        year, month = label.split("-")
        return f"{year}年{int(month)}月"
    return f"{label}年度"
