"""Coverage-guided fuzzing of the parser's entry points with atheris (run on demand, not in CI).

    .venv/bin/pip install -c constraints.txt -e '.[fuzz]'
    mkdir -p var/fuzz && .venv/bin/python tests/fuzz/fuzz_parser.py \
        -max_total_time=660 -print_final_stats=1 var/fuzz tests/data/mail examples

libFuzzer writes new interesting inputs to the first folder and reads the others as seeds.
The first input byte picks the target: the whole message path (decode → classify → validate),
the Word reader, or the TNEF reader. Anything raised other than the readers' own documented
errors is a finding, and libFuzzer saves the input as `crash-…`.
"""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import atheris

# The standard library and olefile are imported first, so only Mailroom's parser is
# instrumented: coverage feedback where the bugs would be, and many more runs a second.
import difflib  # noqa: F401  isort: skip
import email.parser  # noqa: F401
import html.parser  # noqa: F401
import xml.parsers.expat  # noqa: F401
import zipfile  # noqa: F401

import olefile  # noqa: F401

with atheris.instrument_imports(include=["parser"]):
    from parser import Limits, SenderContext, classify, decode_message, validate
    from parser.tnef import TnefError, tnef_attachments
    from parser.word import WordError, word_text

SENDER = SenderContext(
    unit_code="TH", unit_name="天河区", unit_mark="【天河区】", person_name="李明"
)
LIMITS = Limits(
    body_chars=450, attachment_chars=4000, clock_skew=timedelta(minutes=15), late_report_days=3
)
RECEIVED = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")


def one_input(data: bytes) -> None:
    target, rest = (data[0] % 4, data[1:]) if data else (0, b"")
    if target == 1:
        try:
            word_text(rest, "fuzz.docx")
            word_text(rest, "fuzz.doc")
        except WordError:
            pass
        return
    if target == 2:
        with contextlib.suppress(TnefError):
            tnef_attachments(rest)
        return
    # Seeds are whole messages: feed them whole too, so the first byte is not lost.
    raw = data if target == 0 else rest
    msg = decode_message(raw)
    classify(msg, None, ("inf@mailroom.test",))
    for sender in (SENDER, None):
        validate(msg, sender, LIMITS, RECEIVED, ZONE)
    validate(msg, SENDER, LIMITS, RECEIVED, ZONE, mailbox="solicited")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
