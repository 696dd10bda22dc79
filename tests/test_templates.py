"""Language sets and the office's own templates (`[templates] language` and `dir`).

The Traditional set (zh-Hant) is made from the Simplified one by scripts/make_zh_hant.py and
committed; these tests check that it is in sync, that no fixed Chinese of the mail-writing
code escapes it, that a Traditional office's refusal, receipt and quarterly report read in
Traditional characters (while what the sender wrote is quoted as written), and that the
office's own folder replaces exactly the files it holds.
"""

from __future__ import annotations

import ast
import importlib.util
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import opencc
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from ingest.replies import TEMPLATE_DIR as INGEST_TEMPLATES
from ingest.replies import ReplyWriter
from ingest.replies import template_set as ingest_set
from ledger.db import Ledger
from ledger.models import Unit
from ledger.rulebook import load_rulebook
from mailroom.config import ConfigError, parse_config
from parser.types import Problem
from reports.render import TEMPLATE_DIR as REPORT_TEMPLATES
from reports.render import ReportWriter
from reports.render import template_set as report_set
from tests.conftest import REPO
from tests.reportdata import sample_quarterly
from tests.service import MailroomInstance, plain_text, wait_for

EXAMPLES = REPO / "examples"
TO_TRADITIONAL = opencc.OpenCC("s2tw.json")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_zh_hant", REPO / "scripts/make_zh_hant.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_the_zh_hant_set_is_the_script_s_conversion_of_zh_hans() -> None:
    script = _script()
    expected = []
    for base in (INGEST_TEMPLATES, REPORT_TEMPLATES):
        assert _names(base / "zh-Hant") == _names(base / "zh-Hans")
        expected += [base / "zh-Hant" / n for n in _names(base / "zh-Hans")]
        expected.append(base / "zh-Hans" / "words.toml")  # made from the code's words(…)
    made = script.wanted()
    assert sorted(made) == sorted(expected)
    out_of_date = [
        str(p.relative_to(REPO)) for p, text in made.items() if p.read_text("utf-8") != text
    ]
    assert out_of_date == [], "run scripts/make_zh_hant.py"
    assert script.stale() == []


# The modules whose strings end up in mail. A fixed Chinese text there goes through the
# language set (words(…), N_(…)) unless it reads the same in Traditional (年, 月, 日, numbers).
MAIL_MODULES = (
    "ingest/replies.py",
    "ingest/notices.py",
    "ingest/settings.py",
    "ingest/desk/mail.py",
    "ingest/desk/scoring.py",
    "ingest/desk/verbs.py",
    "reports/build.py",
    "reports/model.py",
    "reports/render.py",
    "reports/scoring.py",
    "reports/xlsx.py",
    "reports/deliver.py",
    "reports/warnings.py",
    "ingest/pipeline.py",
)
NOT_SHOWN = {("ingest/desk/scoring.py", "采用"): "a tag's word, matched after folding"}


def _loose_texts(tree: ast.AST) -> Iterator[str]:
    """Chinese string constants that are no docstring and not inside a words/N_ call."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))  # a docstring (or a bare string statement)
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in {"words", "w", "all", "N_"}:
                skip.update(id(n) for arg in node.args for n in ast.walk(arg))
    for node in ast.walk(tree):
        text = node.value if isinstance(node, ast.Constant) else None
        if (
            isinstance(text, str)
            and id(node) not in skip
            and any("\u4e00" <= c <= "\u9fff" for c in text)
        ):
            yield text


def test_no_fixed_chinese_of_the_mail_code_escapes_the_language_set() -> None:
    escaped = {
        (module, text)
        for module in MAIL_MODULES
        for text in _loose_texts(ast.parse((REPO / module).read_text(encoding="utf-8")))
        if TO_TRADITIONAL.convert(text) != text and (module, text) not in NOT_SHOWN
    }
    assert escaped == set()


def test_the_check_catches_a_fixed_text_outside_the_set() -> None:
    planted = 'def f(w):\n    """回执."""\n    return w("回执：{n}", n=1) + "退稿"\n'
    assert list(_loose_texts(ast.parse(planted))) == ["退稿"]


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "value", "message"),
    [
        ({}, {"language": "zh-TW"}, "[templates] language 'zh-TW' is not a language set"),
        ({}, {"dir": "own"}, "[templates] dir {root}/own is not a folder"),
        ({"own/receipt.txt.j2": "x"}, {"dir": "own"}, "only the subfolders ingest/, reports/"),
        (
            {"own/ingest/reciept.txt.j2": "x"},
            {"dir": "own"},
            "own/ingest/reciept.txt.j2: Mailroom has no template of that name in ingest/",
        ),
        (
            {"own/ingest/receipt.txt.j2": "{% if x %}"},
            {"dir": "own"},
            "own/ingest/receipt.txt.j2 line 1 is not a valid template",
        ),
        (
            {"own/reports/words.toml": "a = "},
            {"dir": "own"},
            "own/reports/words.toml is not valid TOML",
        ),
    ],
)
def test_a_bad_language_or_template_folder_is_one_plain_line(
    tmp_path: Path, setup: dict[str, str], value: dict[str, str], message: str
) -> None:
    for name, text in setup.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        parse_config({"templates": value}, tmp_path, environ={})
    assert message.format(root=tmp_path) in str(err.value)
    assert "\n" not in str(err.value)


def test_the_office_name_defaults_to_the_language_set_s_words(tmp_path: Path) -> None:
    hant = parse_config({"templates": {"language": "zh-Hant"}}, tmp_path, environ={})
    assert hant.outbound.from_name == "政務信息處"
    assert parse_config({}, tmp_path, environ={}).outbound.from_name == "政务信息处"
    own = {"templates": {"language": "zh-Hant"}, "outbound": {"from_name": "某某办"}}
    assert parse_config(own, tmp_path, environ={}).outbound.from_name == "某某办"


# --- the office's own folder -------------------------------------------------------------


def test_an_own_report_template_replaces_only_that_file(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/quarterly.txt.j2").write_text(
        "本办季度小结：{{ report.header.title }}\n", encoding="utf-8"
    )
    (tmp_path / "reports/words.toml").write_text('"主管领导" = "分管領導"\n', encoding="utf-8")
    writer = ReportWriter(report_set("zh-Hant", tmp_path))
    report = sample_quarterly()
    assert writer.text(report) == f"本办季度小结：{report.header.title}\n"
    html = writer.html(report)
    assert "基本情況" in html and "基本情况" not in html  # the package's, in Traditional
    # The office's words.toml changes its one key; every other word is still the package's.
    assert writer.words("主管领导") == "分管領導"
    assert writer.words("主要领导") == "主要領導"
    assert ReportWriter(report_set("zh-Hant")).words("主管领导") == "主管領導"


# --- a Traditional office, end to end --------------------------------------------------------


def _traditional(text: str, *quoted: str) -> None:
    """`text`, less what it quotes (the sender's, the registry's), is Traditional throughout:
    converting it from Simplified changes nothing."""
    for q in quoted:
        text = text.replace(q, "")
    assert any("\u4e00" <= c <= "\u9fff" for c in text)
    changed = [(a, b) for a, b in zip(text, TO_TRADITIONAL.convert(text), strict=True) if a != b]
    assert changed == []


def _registry_and_rulebook_names(db_url: str) -> list[str]:
    ledger = Ledger.from_url(db_url)
    try:
        with ledger.reader() as session:
            names = list(session.scalars(select(Unit.name)))
    finally:
        ledger.dispose()
    book = load_rulebook("guangzhou-2004")
    names += [rule.report_title for rule in book.sequences]
    return sorted(names, key=len, reverse=True)  # longest first: 广州市… before its parts


@pytest.fixture
def office(tmp_path: Path) -> Iterator[MailroomInstance]:
    root = tmp_path / "office"
    own = root / "own" / "ingest"
    own.mkdir(parents=True)
    # The office's own receipt HTML and one subject; everything else is the package's.
    (own / "receipt.html.j2").write_text(
        "<p>本處自訂回執：{{ tracking_no }}</p>\n", encoding="utf-8"
    )
    (own / "words.toml").write_text(
        '"回执：{tracking_no} {title}" = "收文回執：{tracking_no} {title}"\n', encoding="utf-8"
    )
    instance = MailroomInstance(
        root,
        f"sqlite:///{root}/var/mailroom.db",
        **{"templates.language": "zh-Hant", "templates.dir": "own"},
    )
    instance.init()
    try:
        yield instance
    finally:
        instance.close()


def _send(port: int, mail_from: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail(mail_from, ["inf@mailroom.test"], raw)


def _html(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


@pytest.mark.slow
@pytest.mark.wall_clock
def test_a_traditional_office_refuses_receipts_and_reports_in_traditional(
    office: MailroomInstance,
) -> None:
    office.start()
    _send(office.port, "liming@th.gz.test", (EXAMPLES / "valid.eml").read_bytes())
    _send(office.port, "wangfang@yx.gz.test", (EXAMPLES / "malformed.eml").read_bytes())
    # A receipt, a refusal, and the filed item's forward to each of the 3 demo editors.
    wait_for(lambda: len(office.outbox_messages()) == 5, what="a receipt and a refusal")
    office.stop()
    mails = office.outbox_messages()
    replies = {str(m["To"]): m for m in mails if m["Reply-To"] is None}

    refusal = replies["wangfang@yx.gz.test"]
    subject = "越秀区开展城市环境综合整治行动"  # the sender's, quoted as written
    assert str(refusal["Subject"]) == f"退稿：{subject}"
    text = plain_text(refusal)
    for traditional, simplified in [
        ("你單位於", "你单位于"),
        ("落款缺少聯繫電話", "落款缺少联系电话"),
        ("主題開頭缺少單位標識", "主题开头缺少单位标识"),
        ("請按上述要求修改後重新報送", "请按上述要求修改后重新报送"),
        ("標識、標題、正文、作者單位、姓名、聯繫電話、日期", "标识、标题、正文"),
        ("請勿直接回覆", "请勿直接回复"),
    ]:
        assert traditional in text and simplified not in text
    assert f"原郵件主題：{subject}" in text
    _traditional(text, subject, "越秀区", "【越秀区】")
    _traditional(_html(refusal), subject, "越秀区", "【越秀区】")

    receipt = replies["liming@th.gz.test"]
    title = "天河区多措并举推进“放管服”改革取得新成效"  # the sender's, quoted as written
    assert str(receipt["Subject"]).startswith("收文回執：GZ-")  # the office's words.toml
    assert str(receipt["Subject"]).endswith(f" {title}")
    text = plain_text(receipt)
    for traditional, simplified in [
        ("你單位報送的信息已收到並登記", "你单位报送的信息已收到并登记"),
        ("登記編號", "登记编号"),
        ("信息標題：" + title, "信息标题"),
        ("系統自動發送", "系统自动发送"),
    ]:
        assert traditional in text and simplified not in text
    _traditional(text, title, "天河区")
    tracking_no = str(receipt["Subject"]).split()[0].removeprefix("收文回執：")
    # The office's own HTML part; the text part above is still the package's.
    assert _html(receipt).strip() == f"<p>本處自訂回執：{tracking_no}</p>"
    forwards = [m for m in mails if m["Reply-To"] is not None]
    assert len(forwards) == 3 and all("各位編輯" in plain_text(m) for m in forwards)

    out = office.root / "reports"
    office.cli("report", "quarterly", "--period", "2026q1", "--out", str(out))
    report = (out / "quarterly-2026Q1.txt").read_text(encoding="utf-8")
    html = (out / "quarterly-2026Q1.html").read_text(encoding="utf-8")
    for words in (report, html):
        for traditional, simplified in [
            ("2026年度第一季度政務信息工作總結", "政务信息工作总结"),
            ("一、基本情況", "基本情况"),
            ("本季度各單位共報送信息", "本季度各单位共报送信息"),
            ("三、通報表揚和通報批評", "通报表扬"),
            ("四、優秀信息篇目", "优秀信息篇目"),
        ]:
            assert traditional in words and simplified not in words
    # Less the registry's names (units, the office) and the rulebook's (sequences), the plain
    # text is the language set's words throughout.
    _traditional(report, *_registry_and_rulebook_names(office.db_url))
    book = load_workbook(out / "quarterly-2026Q1.xlsx")
    assert {"表揚與批評", "優秀信息篇目", "核心隊伍", "分析"} <= set(book.sheetnames)
    headers = next(book["表揚與批評"].iter_rows(max_row=1, values_only=True))
    assert headers == ("單位代碼", "單位", "類別", "季度數", "通報對象", "提請更換信息員")
    analysis = [r[0] for r in book["分析"].iter_rows(min_row=2, values_only=True)]
    assert analysis[:3] == ["報送信息（條）", "採用信息（條）", "採用率（%）"]


def test_the_package_s_reply_texts_fall_back_under_an_own_folder(tmp_path: Path) -> None:
    (tmp_path / "ingest").mkdir()
    (tmp_path / "ingest/problems.toml").write_text(
        '[late_report]\ntext = "本處自訂：落款日期早於收件日期 {{ days }} 天"\n', encoding="utf-8"
    )
    templates = ingest_set("zh-Hant", tmp_path)
    writer = ReplyWriter("inf@mailroom.test", "政務信息處", ZoneInfo("Asia/Shanghai"), templates)
    assert writer.elements == "標識、標題、正文、作者單位、姓名、聯繫電話、日期"
    late = writer.explain(Problem.of("late_report", days=4))
    assert (late.text, late.fix) == ("本處自訂：落款日期早於收件日期 4 天", "請及時報送信息")
    skew = writer.explain(Problem.of("clock_skew", minutes=300)).text
    assert skew == "發件計算機時間與收件時間相差約 5 小時"
