"""No office's rule is written into the code (issue 5, acceptance 3; SPEC §5.2, §9).

The numbers and names to look for are read from every shipped rulebook itself, so the check
grows with them. Four scans of every Python source outside tests/ (migrations' generated
column sizes included):
1. the scoring modules hold no number but 0 and 1 (points, targets, ladders, shares, streak
   lengths all come from the rulebook), except the few listed below with their reason;
2. no module holds a limit, a target or the direct-report share as a number, except the
   listed unrelated uses (months in a year, a batch size);
3. no module holds an amount of money (a `yuan` of a publication, grade, bonus level or
   award) as a number, except the listed unrelated uses and a column's width (`String(200)`);
4. no string in code (docstrings and comments aside) names a publication, grade, bonus,
   bonus level, deduction, sequence (its name, title, sheet or aliases), unit bonus or award
   of a rulebook, except the listed words the code uses for a concept of its own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

from ledger.rulebook import RULEBOOK_DIR, Rulebook, load_rulebook
from tests.conftest import REPO

PACKAGES = ("mailroom", "ingest", "parser", "ledger", "reports", "web", "migrations")
SCORING_MODULES = (
    "ledger/scoring.py",
    "ledger/standings.py",
    "ledger/solicit.py",
    "ingest/notices.py",
)
# Every shipped rulebook, with the revisions it replaced.
BOOKS: tuple[Rulebook, ...] = tuple(
    book
    for path in sorted(RULEBOOK_DIR.glob("*.toml"))
    for newest in (load_rulebook(path.stem),)
    for book in (newest, *newest.earlier)
)

# (file, value): why this number is not a rule.
SCORING_ALLOWED = {
    ("ledger/standings.py", 100): "a share is given in percent",
}
UNRELATED_USES = {
    ("ledger/calendar.py", 12): "months in a year",
    ("ledger/rulebook.py", 12): "months in a year (validating months_per_quarter)",
    ("ingest/outbound.py", 50): "outbound rows claimed per batch",
    ("reports/schedule.py", 12): "months in a year (the months in which quarters begin)",
    ("parser/validate.py", 6): "the Chinese digit 六 in written dates",
    ("parser/validate.py", 50): "longest author name kept from a sign-off (characters)",
    ("parser/tnef.py", 6): "TNEF binary format: PT_CURRENCY tag and the 6-byte header",
    ("parser/tnef.py", 72): "TNEF binary format: PT_CLSID tag 0x0048",
    ("parser/word.py", 12): "Word 97 piece table: 12 bytes per piece descriptor",
    ("ingest/imap.py", 50): "IMAP messages per FETCH",
    ("ingest/worker.py", 50): "spooled messages per transaction (group commit)",
    ("ingest/outbound.py", 6): "longest outbound retry delay, in hours",
    ("ingest/outbound.py", 250): "SMTP reply code 250 (the relay took the command)",
    ("parser/commands.py", 200): "longest subject read as a 查询 (characters)",
    ("ledger/accounts.py", 12): "shortest password of a console account (characters)",
    ("ledger/similar.py", 50): "candidates compared exactly per lookup; filings between prunes",
    ("reports/warnings.py", 12): "months in a year",
    ("web/app.py", 50): "rows on a page of the console",
    ("web/office.py", 50): "rows on a page of the console",
    ("web/pages.py", 50): "rows on a page of the console",
    # Numbers that are also amounts of money (yuan) in a rulebook:
    ("mailroom/config.py", 100): "refusals per hour to all addresses at one domain",
    ("mailroom/config.py", 200): "SMTP sessions open at once",
    ("ingest/settings.py", 100): "refusals per hour to all addresses at one domain",
    ("ingest/smtp.py", 200): "SMTP sessions open at once",
    ("ingest/filer.py", 500): "bytes of a log line passed to the parent process",
    ("ingest/imap.py", 500): "UIDs per RFC822.SIZE request",
    ("ingest/outbound.py", 500): "SMTP reply codes: 5xx is a permanent failure",
    ("ingest/pipeline.py", 1000): "milliseconds in a second (statement_timeout)",
    ("parser/decode.py", 100): "MIME boundaries followed at most",
    ("parser/decode.py", 2000): "longest address header read, in characters",
    ("parser/normalize.py", 200): "characters of a title compared",
    ("parser/validate.py", 100): "longest unit name kept from a sign-off (characters)",
    ("parser/validate.py", 200): "longest sign-off line, in characters",
    ("parser/validate.py", 1000): "longest subject read, in characters",
    ("ledger/audit.py", 500): "audit rows read per batch",
    ("ledger/outbox.py", 2000): "characters of a delivery error kept",
    ("ledger/registry/checks.py", 100): "column sizes of ledger.models, in characters",
    ("ledger/registry/checks.py", 200): "column sizes of ledger.models, in characters",
    ("ledger/rulebook.py", 100): "a percentage's upper bound (validating a rulebook)",
    ("ledger/standings.py", 100): "a share or a rate is given in percent",
    ("reports/model.py", 100): "an adoption rate in percent",
    ("reports/schedule.py", 300): "a retry delay of a report send, in seconds",
    ("ingest/desk/mail.py", 100): "per cent of a similarity shown to editors",
    ("parser/bounce.py", 100): "recipients read from one bounce",
    ("parser/bounce.py", 300): "characters of a bounce's reason kept",
    ("parser/bounce.py", 1000): "characters of a bounce's subject read",
    ("ledger/accounts.py", 200): "longest session token read from a cookie",
    ("ledger/rulebook.py", 1000): "a warning point's share in thousandths (its once-only key)",
    ("reports/warnings.py", 1000): "a warning point's share in thousandths (its once-only key)",
    ("reports/warnings.py", 100): "per cent of the period gone",
    ("ledger/similar.py", 500): "ids per IN list",
    ("migrations/versions/0015_similar_keys.py", 500): "items re-keyed per round",
    ("web/actions.py", 200): "characters taken from a form field",
    ("web/app.py", 200): "HTTP 200; fields in a form",
    ("web/office.py", 100): "characters taken from a query parameter",
    ("web/office.py", 200): "characters taken from a form field",
    ("web/office.py", 400): "HTTP 400",
    ("web/office.py", 1000): "units named in one form",
    ("web/office.py", 2000): "characters of a topic or a message shown",
    ("web/pages.py", 100): "characters of a search term",
    ("web/pages.py", 200): "characters of a message shown",
    ("web/registry.py", 400): "HTTP 400",
    ("web/registry.py", 500): "HTTP 500",
    ("web/registry.py", 2000): "characters of a message shown",
}
# (file, name): why this string is not the rule of that name.
NAMES_UNRELATED = {
    (path, "约稿"): "the 约稿 (solicitation, SPEC §5.5) is a concept of the code; Longgang's and "
    "Changji's deduction for a late one is named after it"
    for path in (
        "mailroom/commands/solicit.py",
        "ingest/notices.py",
        "parser/validate.py",
        "ledger/solicit.py",
        "reports/xlsx.py",
        "web/office.py",
    )
}


def rule_numbers() -> set[int]:
    numbers: set[int] = set()
    for book in BOOKS:
        numbers |= {book.body_chars, book.attachment_chars, book.direct_share_percent}
        for seq in book.sequences:
            targets = (seq.monthly_target, seq.quarterly_target, seq.annual_target)
            numbers |= {t for t in targets if t is not None}
    return numbers - {0}  # 0: the rulebook has none


def money_amounts() -> set[int]:
    amounts: set[int] = set()
    for book in BOOKS:
        for pub in book.publications:
            amounts |= {pub.yuan, *(g.yuan for g in pub.grades)}
        for bonus in book.bonuses:
            amounts |= {lv.yuan for lv in bonus.levels}
        amounts |= {a.yuan for a in book.awards}
    return amounts - {0}  # 0: nothing is paid


def rule_names() -> set[str]:
    names: set[str] = set()
    for book in BOOKS:
        for pub in book.publications:
            names |= {pub.name, *pub.aliases, *(g.name for g in pub.grades)}
        for bonus in book.bonuses:
            names |= {bonus.name, *(lv.name for lv in bonus.levels)}
        names |= {d.name for d in book.deductions}
        for seq in book.sequences:
            names |= {seq.name, seq.report_title, seq.sheet_name, *seq.aliases}
        names |= {b.name for b in book.unit_bonuses}
        names |= {a.name for a in book.awards} | set(book.award_names)
    return names


def sources() -> Iterator[tuple[str, ast.AST]]:
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def numbers_in(tree: ast.AST) -> Iterator[tuple[int, float]]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            yield node.lineno, node.value


def strings_in(tree: ast.AST) -> Iterator[tuple[int, str]]:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node.lineno, node.value


def column_widths(tree: ast.AST) -> set[tuple[int, float]]:
    """The numbers given to `String(…)`: a column's width in characters, never money."""
    widths: set[tuple[int, float]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and "String" in (
            getattr(node.func, "id", None),
            getattr(node.func, "attr", None),
        ):
            for arg in (*node.args, *(k.value for k in node.keywords)):
                widths |= set(numbers_in(arg))
    return widths


def money_found(files: Iterable[tuple[str, ast.AST]]) -> list[str]:
    amounts = money_amounts()
    found = []
    for path, tree in files:
        widths = column_widths(tree)
        found += [
            f"{path}:{line}: {value!r}"
            for line, value in numbers_in(tree)
            if value in amounts
            and (line, value) not in widths
            and (path, value) not in UNRELATED_USES
        ]
    return found


def names_found(files: Iterable[tuple[str, ast.AST]]) -> list[str]:
    names = rule_names()
    found = []
    for path, tree in files:
        for line, text in strings_in(tree):
            named = sorted(n for n in names if n in text and (path, n) not in NAMES_UNRELATED)
            if named:
                found.append(f"{path}:{line}: {text!r} names {', '.join(named)}")
    return found


def test_the_scan_sees_what_it_looks_for() -> None:
    # The scan is not vacuous: the rulebook's numbers and names are what it hunts for.
    assert {450, 4000, 18, 12, 72, 48, 6, 50} <= rule_numbers()
    assert {"穗府信息", "标题", "短波", "调研", "市领导", "国办领导批示", "迟报"} <= rule_names()
    planted = ast.parse('POINTS = {"调研": 5}\nTARGET = 18\n"""穗府信息 in a docstring."""')
    assert sorted(v for _, v in numbers_in(planted)) == [5, 18]
    assert sorted(v for _, v in strings_in(planted)) == ["穗府信息 in a docstring.", "调研"]
    module = ast.parse('"""A docstring naming 穗府信息."""\nX = 1\n')
    assert list(strings_in(module)) == []
    assert {path for path, _ in sources()} >= set(SCORING_MODULES)


def test_scoring_modules_hold_no_numbers_but_zero_and_one() -> None:
    found = [
        f"{path}:{line}: {value!r}"
        for path, tree in sources()
        if path in SCORING_MODULES
        for line, value in numbers_in(tree)
        if value not in (0, 1) and (path, value) not in SCORING_ALLOWED
    ]
    assert found == []


def test_no_module_holds_a_limit_target_or_share() -> None:
    numbers = rule_numbers()
    found = [
        f"{path}:{line}: {value!r}"
        for path, tree in sources()
        for line, value in numbers_in(tree)
        if value in numbers and (path, value) not in UNRELATED_USES
    ]
    assert found == []


def test_the_scans_see_sequence_titles_and_money() -> None:
    # Every rulebook's sequences, unit bonuses and awards, and its amounts of money, are hunted.
    assert {
        "区、县级市序列",
        "部门A类",
        "区县",
        "驻龙岗单位序列",
        "园区",
        "州直重点部门",
    } <= rule_names()
    assert {"组织奖", "跟班培训", "先进集体", "先进单位", "信息报送先进单位"} <= rule_names()
    assert {50, 150, 250, 400, 1000, 2000} <= money_amounts()
    planted = ast.parse(
        'TITLE = "州直重点部门序列"\n'
        'SHEET = {"street": "街道"}\n'
        "PAY = {'周刊': 150, 'award': 2000.0}\n"
        "name = mapped_column(String(150))\n"
        'op.add_column("t", sa.Column("c", sa.String(length=2000)))\n'
    )
    assert money_found([("ledger/payments.py", planted)]) == [
        "ledger/payments.py:3: 150",
        "ledger/payments.py:3: 2000.0",
    ]
    assert names_found([("reports/xlsx.py", planted)]) == [
        "reports/xlsx.py:1: '州直重点部门序列' names "
        "州直重点部门, 州直重点部门序列, 部门, 重点部门",
        "reports/xlsx.py:2: '街道' names 街道",
        "reports/xlsx.py:3: '周刊' names 周刊",
    ]
    # The concept words are let through only where listed.
    solicited = ast.parse('SUBJECT = "【约稿】"\n')
    assert names_found([("ingest/notices.py", solicited)]) == []
    assert names_found([("ledger/scoring.py", solicited)]) == [
        "ledger/scoring.py:1: '【约稿】' names 约稿"
    ]


def test_no_module_holds_an_amount_of_money() -> None:
    assert money_found(sources()) == []


def test_no_code_names_a_rule() -> None:
    assert names_found(sources()) == []
