"""Receipts (回执), refusals (退稿) and answers to a unit's 查询: rendered from Jinja2 templates,
threaded, auto-submitted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, select_autoescape

from ledger.compose import Attachment, Mail, Sender, compose
from ledger.status import ItemStatus, UnitStatus, points_text
from ledger.wording import IDENTITY, N_, TemplateSet, Words
from parser.types import DecodedMessage, Problem

TEMPLATE_DIR = Path(__file__).parent / "templates"


def template_set(language: str = "zh-Hans", office_dir: Path | None = None) -> TemplateSet:
    """This wing's templates in `language`, under the office's `<office_dir>/ingest/`."""
    return TemplateSet(TEMPLATE_DIR, language, office_dir, "ingest")


@dataclass(frozen=True)
class Explained:
    code: str
    text: str
    fix: str


_HOUR = 60  # minutes
_DAY = 24 * _HOUR


def duration_text(minutes: int, words: Words = IDENTITY) -> str:
    """A span as a reader takes it in: under two hours in minutes, under two days in hours,
    else in days (40 分钟, 5 小时, 10 天; rounded, the text around it says 约)."""
    if minutes < 2 * _HOUR:
        return words("{n} 分钟", n=minutes)
    if minutes < 2 * _DAY:
        return words("{n} 小时", n=round(minutes / _HOUR))
    return words("{n} 天", n=round(minutes / _DAY))


class ReplyWriter:
    """Renders reply mail in one language set (packaged `zh-Hans` by default)."""

    def __init__(
        self,
        sender: str,
        sender_name: str,
        zone: tzinfo,
        templates: TemplateSet | None = None,
        required_signoff: tuple[str, ...] = ("unit", "author", "phone", "date"),
    ):
        self.templates = templates or template_set()
        self.words = self.templates.words()
        self.env = Environment(
            loader=self.templates.loader(),
            autoescape=select_autoescape(["html.j2"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._plain = Environment(autoescape=False)
        self._plain.filters["duration"] = lambda minutes: duration_text(minutes, self.words)
        self.problem_texts: dict[str, dict[str, str]] = self.templates.table("problems.toml")
        self.sender = sender
        self.sender_name = sender_name
        self.from_ = Sender(sender, sender_name)
        self.zone = zone
        # The elements a refusal reminds the sender of: the subject's, then the sign-off's the
        # rulebook requires (标识、标题、正文、作者单位、姓名、联系电话、日期 for Guangzhou).
        labels = self.templates.table("signoff.toml")
        self.role_titles: dict[str, str] = labels["roles"]
        self.elements = "、".join([*labels["subject"], *(labels[e] for e in required_signoff)])

    def explain(self, problem: Problem) -> Explained:
        entry = self.problem_texts.get(problem.code, {"text": problem.code, "fix": ""})
        params: dict[str, Any] = {"found": None, "expected": None, **dict(problem.params)}
        if "roles" in params:  # registry roles, as the office calls them: 分管副秘书长或办公室主任
            titles = [self.role_titles.get(r, r) for r in str(params["roles"]).split(",") if r]
            params["roles"] = self.words("或").join(
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
        attachments: tuple[Attachment, ...] = (),
    ) -> Mail:
        return compose(
            kind=kind,
            sender=self.from_,
            to=to,
            subject=subject,
            text=self.env.get_template(f"{template or kind}.txt.j2").render(context),
            html=self.env.get_template(f"{template or kind}.html.j2").render(context),
            now=context["now"],
            answering=original,
            attachments=attachments,
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
    ) -> Mail:
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
        subject = self.words("回执：{tracking_no} {title}", tracking_no=tracking_no, title=title)
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
    ) -> Mail:
        """Mail to postmaster, passed on to the operator with the original attached."""
        context = {
            "sender": envelope_from or original.from_address,
            "recipient": recipient,
            "received_local": self.local_time(received_at),
            "office_name": self.sender_name,
            "now": now,
        }
        return self._message(
            to=to,
            subject=self.words("发给 postmaster 的邮件"),
            original=original,
            kind="postmaster",
            context=context,
            attachments=(Attachment("postmaster.eml", raw),),
        )

    def refusal_unregistered(
        self, *, to: str, original: DecodedMessage, received_at: datetime, now: datetime
    ) -> Mail:
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
            subject=self.words("退稿：发件邮箱未登记为信息员邮箱"),
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
    ) -> Mail:
        context = {
            "addressee": addressee,
            "problems": [self.explain(p) for p in problems],
            "original_subject": original.subject,
            "elements": self.elements,
            "received_local": self.local_time(received_at),
            "office_name": self.sender_name,
            "now": now,
        }
        subject = self.words(
            "退稿：{subject}", subject=original.subject or self.words("（无主题）")
        )
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
        not_own_item: str = "",
        bad_period: str = "",
    ) -> Mail:
        """The answer to an officer's 查询: the unit's period, one of its items, or why not
        (`not_own_item`: a number not of the unit; `bad_period`: what is no period)."""
        w = self.words
        refused = ""
        if not_own_item:
            refused = w("登记编号 {n} 不是本单位报送的信息", n=not_own_item)
        elif bad_period:
            refused = w("“{p}”不是可查询的期间", p=bad_period)
        context: dict[str, Any] = {
            "unit_name": unit_name,
            "refused": refused,
            "item": self._item_line(item) if item is not None else None,
            "office_name": self.sender_name,
            "now": now,
        }
        if refused:
            subject = w("查询结果：未予办理")
        elif item is not None:
            subject = w("查询结果：{n}", n=item.tracking_no)
        else:
            subject = ""
        if found is not None:
            s = found.standing
            metric = s.metric if s is not None else "points"
            total = (Decimal(s.submitted) if metric == "count" else s.points) if s else Decimal(0)
            target = s.target if s is not None else None
            context.update(
                period_text=self.period_text(found.period.label),
                span=self._span(found.period.start, found.period.end),
                as_of=self.local_time(now),
                submitted=len(found.items),
                adopted=sum(1 for i in found.items if i.state == "adopted"),
                metric_text=w("报送条数") if metric == "count" else w("得分"),
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
            subject = w("查询结果：{p}信息报送情况", p=context["period_text"])
        return self._message(
            to=to, subject=subject, original=original, kind="status", context=context
        )

    def _item_line(self, item: ItemStatus) -> dict[str, Any]:
        return {
            "tracking_no": item.tracking_no,
            "title": item.title,
            "received_local": self.local_time(item.received_at),
            "state_text": self.words(STATE_TEXT[item.state]),
            # A clue (线索) is recorded without a publication name.
            "adoptions": "、".join(a or self.words("线索") for a in item.adoptions),
            "points": item.points,
        }

    def _span(self, start: datetime, end: datetime) -> str:
        first = start.astimezone(self.zone).date()
        last = (end.astimezone(self.zone) - timedelta(days=1)).date()
        day = "{0.year}年{0.month}月{0.day}日".format
        return f"{day(first)}至{day(last)}"

    def period_text(self, label: str) -> str:
        """2027Q1 → 2027年度第一季度; 2027 → 2027年度; 2027-03 → 2027年3月."""
        if "Q" in label:
            year, number = label.split("Q")
            return self.words("{y}年度第{n}季度", y=year, n=_NUMBERS[int(number) - 1])
        if "-" in label:
            year, month = label.split("-")
            return f"{year}年{int(month)}月"
        return self.words("{y}年度", y=label)


STATE_TEXT = {
    "adopted": N_("已采用"),
    "declined": N_("不采用"),
    "returned": N_("退回修改"),
    "superseded": N_("已由修改稿替代"),
    "pending": N_("待编辑审核"),
}
_NUMBERS = "一二三四五六七八九十"
