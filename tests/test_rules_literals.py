"""No Guangzhou rule is written into the code (issue 5, acceptance 3; SPEC §5.2).

The numbers and names to look for are read from the shipped rulebook itself, so the check
grows with it. Three scans of every Python source outside tests/ (migrations' generated
column sizes included):
1. the scoring modules hold no number but 0 and 1 (points, targets, ladders, shares, streak
   lengths all come from the rulebook), except the few listed below with their reason;
2. no module holds a limit, a target or the direct-report share as a number, except the
   listed unrelated uses (months in a year, a batch size);
3. no string in code (docstrings and comments aside) names a publication, grade, bonus,
   bonus level or deduction of the rulebook.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ledger.rulebook import load_rulebook
from tests.conftest import REPO

PACKAGES = ("mailroom", "ingest", "parser", "ledger", "reports", "migrations")
SCORING_MODULES = (
    "ledger/scoring.py",
    "ledger/standings.py",
    "ledger/solicit.py",
    "ingest/notices.py",
)
RULES = load_rulebook("guangzhou-2004")

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
    ("ingest/outbound.py", 6): "longest outbound retry delay, in hours",
}


def rule_numbers() -> set[int]:
    numbers = {RULES.body_chars, RULES.attachment_chars, RULES.direct_share_percent}
    for seq in RULES.sequences:
        numbers |= {t for t in (seq.quarterly_target, seq.annual_target) if t is not None}
    return numbers


def rule_names() -> set[str]:
    names: set[str] = set()
    for pub in RULES.publications:
        names |= {pub.name, *pub.aliases, *(g.name for g in pub.grades)}
    for bonus in RULES.bonuses:
        names |= {bonus.name, *(lv.name for lv in bonus.levels)}
    names |= {d.name for d in RULES.deductions}
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


def test_no_code_names_a_publication_bonus_or_deduction() -> None:
    names = rule_names()
    found = [
        f"{path}:{line}: {text!r}"
        for path, tree in sources()
        for line, text in strings_in(tree)
        for name in names
        if name in text
    ]
    assert found == []
