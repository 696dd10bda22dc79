"""`parser/` stays pure (SPEC §2): no ingest, ledger, SQLAlchemy, sockets, clock or file I/O."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.conftest import REPO

PARSER = REPO / "parser"
ALLOWED = {
    "__future__", "base64", "binascii", "codecs", "collections", "contextlib", "dataclasses",
    "datetime", "difflib", "email", "functools", "hashlib", "html", "io", "olefile", "parser",
    "quopri", "re", "struct", "typing", "unicodedata", "xml", "zipfile",
}  # fmt: skip
FORBIDDEN = {
    "ingest", "ledger", "mailroom", "reports", "migrations", "sqlalchemy", "alembic", "socket",
    "smtplib", "imaplib", "imapclient", "aiosmtpd", "asyncio", "time", "os", "pathlib",
    "subprocess", "shutil", "tempfile", "urllib", "http", "requests", "random",
}  # fmt: skip
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
IO_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}


def modules() -> list[Path]:
    files = sorted(PARSER.rglob("*.py"))
    assert len(files) >= 8
    return files


def imported(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "use absolute imports in parser/"
            out.add((node.module or "").split(".")[0])
    return out


def test_parser_imports_only_the_standard_library_and_small_parsing_libraries() -> None:
    for path in modules():
        names = imported(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        assert not names & FORBIDDEN, (path.name, names & FORBIDDEN)
        assert names <= ALLOWED, (path.name, names - ALLOWED)
        for name in names - {"olefile", "parser"}:
            assert name in sys.stdlib_module_names, name


def test_parser_reads_no_clock_and_opens_no_file() -> None:
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            assert name not in CLOCK_CALLS, f"{path.name}:{node.lineno} reads the clock"
            if isinstance(func, ast.Name):  # zf.open(member) reads memory; a bare open() a file
                assert name not in IO_CALLS, f"{path.name}:{node.lineno} calls {name}()"


def test_the_check_catches_a_forbidden_import() -> None:
    names = imported(ast.parse("from ledger.models import Unit\nimport socket, time\n"))
    assert names & FORBIDDEN == {"ledger", "socket", "time"}
