"""What a test measures of the code it runs: the peak of Python's allocations, and the SQL
statements an engine ran."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, event

T = TypeVar("T")


def peak_of(call: Callable[[], T]) -> tuple[T, int]:
    """`call()`'s result, and the most bytes Python had allocated while it ran (tracemalloc,
    counting from the call's start)."""
    tracemalloc.start()
    try:
        result = call()
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@contextmanager
def statements_run(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements `engine` runs inside the block, in order (the list grows as they
    run, so it can be read inside the block too)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)
