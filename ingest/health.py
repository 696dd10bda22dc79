"""Is the database usable? The listener asks before answering `250`; a broken one means `451`.

A verdict is cached for `ttl` seconds, so a healthy database costs one `SELECT 1` per interval,
not one per message; concurrent callers share a single probe. The workers report what they
see (`mark_down` on a lost connection), which makes the next answer `451` at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ledger.db import DatabaseLost, Ledger

log = logging.getLogger(__name__)


def database_unavailable(exc: BaseException) -> bool:
    """True when the database (not the message) is the problem: keep the message and retry.

    A lost or refused connection, a locked SQLite file, a SQLite file deleted under the
    service; not a row the database would not take.
    """
    if isinstance(exc, DatabaseLost):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


class DatabaseHealth:
    def __init__(
        self,
        ledger: Ledger,
        ttl: float = 1.0,
        probe_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ledger = ledger
        self.ttl = ttl
        self.probe_timeout = probe_timeout
        self.clock = clock
        self._ok = True
        self._checked = float("-inf")
        self._probe: asyncio.Future[bool] | None = None

    def mark_down(self, reason: object) -> None:
        if self._ok:
            log.warning("database unavailable: %s", reason)
        self._ok = False
        self._checked = self.clock()

    def mark_up(self) -> None:
        if not self._ok:
            log.info("database available again")
        self._ok = True
        self._checked = self.clock()

    def _probe_now(self) -> bool:
        lost = self.ledger.file_lost()
        if lost is not None:
            self.mark_down(lost)
            return False
        try:
            with self.ledger.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            self.mark_down(str(exc.orig or exc).strip().splitlines()[0])
            return False
        self.mark_up()
        return True

    async def usable(self) -> bool:
        """The cached verdict, or a fresh probe when it is older than `ttl`."""
        if self.clock() - self._checked < self.ttl:
            return self._ok
        if self._probe is None:
            loop = asyncio.get_running_loop()
            self._probe = asyncio.ensure_future(self._bounded_probe(loop))
        probe = self._probe
        try:
            return await asyncio.shield(probe)
        finally:
            if probe.done() and self._probe is probe:
                self._probe = None

    async def _bounded_probe(self, loop: asyncio.AbstractEventLoop) -> bool:
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(None, self._probe_now), self.probe_timeout
            )
        except TimeoutError:
            self.mark_down(f"no answer within {self.probe_timeout:g} s")
            return False
