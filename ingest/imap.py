"""IMAP pollers: existing mailboxes (`inf@`, `sfxx@`) feed the same pipeline as the listener.

One poller per `[imap.<name>]` table, each in its own thread, so one bad account never stops
the others. A poll selects the folder, lists every UID (`UID SEARCH ALL`: no `CHARSET`, which
Chinese providers reject), skips those the ledger already holds for this (account, folder,
UIDVALIDITY), fetches the rest in batches bounded in count and bytes, and runs each through
the pipeline, whose transaction also records the message's place (`ImapMessage`). Only after
that commit is the message moved to the processed folder (or flagged), and the move recorded;
a move lost to a crash is simply done at the next poll. A batch's move runs on the server, in
a mover thread, while the next batch is filed. A new UIDVALIDITY starts a fresh key
space (the pipeline recognises messages it filed before by their content).

Between polls the poller waits in IDLE where the server offers it, and polls again at least
every `poll_seconds`. Lost connections are retried with exponential back-off. With several
instances on one PostgreSQL, a folder is polled by one instance at a time: the holder of an
advisory lock on a dedicated connection, which a dead instance loses with its connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from imapclient import IMAPClient
from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.exc import DBAPIError

from ingest.door import take_batch
from ingest.health import database_unavailable
from ingest.pipeline import Arrival, ImapOrigin, Outcome, Pipeline
from ingest.settings import ImapFolder
from ledger.models import ImapMessage

log = logging.getLogger(__name__)

FETCH_COUNT = 50  # messages per FETCH
FETCH_BYTES = 20 * 1024 * 1024  # and at most this much message data per FETCH
SIZE_CHUNK = 500  # UIDs per RFC822.SIZE request
KEYWORD = b"$Mailroom"  # set beside \Seen in flag mode, where the server allows keywords
LONGEST_BACKOFF = 60.0
TIMEOUT = 60.0  # socket timeout of one IMAP command


class FolderLease(Protocol):
    """The right to poll one folder: held by one instance at a time."""

    def acquire(self) -> bool: ...

    def held(self) -> bool: ...

    def release(self) -> None: ...


class SoleInstanceLease:
    """SQLite: one `mailroom serve` per database, so the folder is always ours."""

    def acquire(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    def release(self) -> None:
        return None


def _int4(value: int) -> int:
    return value - (1 << 32) if value >= (1 << 31) else value


LOCK_SPACE = _int4(zlib.crc32(b"mailroom imap folder"))


class AdvisoryLease:
    """PostgreSQL: a session advisory lock held on a dedicated connection.

    The lock lives as long as the connection: an instance that dies (even by SIGKILL) drops
    its connection and the lock with it, and another instance takes the folder over.
    """

    def __init__(self, engine: Engine, account: str, folder: str) -> None:
        self.engine = engine
        self.key = _int4(zlib.crc32(f"{account}/{folder}".encode()))
        self.name = f"{account}/{folder}"
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        if self._conn is not None:
            return self.held()
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            conn.execute(
                text("SELECT set_config('application_name', :name, false)"),
                {"name": f"mailroom imap pid={os.getpid()} host={socket.gethostname()}"},
            )
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:space, :key)"),
                {"space": LOCK_SPACE, "key": self.key},
            ).scalar()
        except DBAPIError:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        log.info("imap %s: this instance polls it now", self.name)
        self._conn = conn
        return True

    def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
        except DBAPIError:
            log.warning("imap %s: lost the database connection that held the folder", self.name)
            self._forget()
            return False
        return True

    def _forget(self) -> None:
        if self._conn is not None:
            self._conn.invalidate()  # never back to the pool with the lock on it
            self._conn.close()
            self._conn = None

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(DBAPIError):
            self._conn.execute(
                text("SELECT pg_advisory_unlock(:space, :key)"),
                {"space": LOCK_SPACE, "key": self.key},
            )
        self._forget()


def lease_for(engine: Engine, config: ImapFolder) -> FolderLease:
    if engine.dialect.name == "postgresql":
        return AdvisoryLease(engine, config.account, config.folder)
    return SoleInstanceLease()


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ImapPoller:
    def __init__(
        self,
        config: ImapFolder,
        pipeline: Pipeline,
        lease: FolderLease,
        max_bytes: int,
        on_filed: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.ledger = pipeline.ledger
        self.lease = lease
        self.max_bytes = max_bytes
        self.on_filed = on_filed
        self.clock = clock
        self.account = config.account
        self.where = f"imap {config.name} ({self.account}/{config.folder})"
        self._uidvalidity: int | None = None
        self._keywords = False  # may we set our own keyword (PERMANENTFLAGS holds \*)?

    # --- the thread ---

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set: lease, connect, poll, wait; back off after a failure."""
        failures = 0
        client: IMAPClient | None = None
        while not stop.is_set():
            try:
                if not self.lease.acquire():
                    self._drop(client)
                    client = None
                    stop.wait(min(self.config.poll_seconds, 5))
                    continue
                if client is None:
                    client = self._connect()
                self._poll(client, stop)
                failures = 0
                self._wait(client, stop)
            except Exception as exc:
                failures += 1
                delay = min(2.0 ** (failures - 1), LONGEST_BACKOFF)
                if database_unavailable(exc) or isinstance(exc, OSError | IMAPClient.Error):
                    log.warning("%s: %s; retrying in %g s", self.where, _one_line(exc), delay)
                else:
                    log.exception("%s failed; retrying in %g s", self.where, delay)
                self._drop(client)
                client = None
                stop.wait(delay)
        self._drop(client)
        self.lease.release()

    def poll_once(self) -> int:
        """One connection, one poll; returns how many messages were newly processed."""
        if not self.lease.acquire():
            return 0
        client = self._connect()
        try:
            return self._poll(client, threading.Event())
        finally:
            self._drop(client)
            self.lease.release()

    def _connect(self) -> IMAPClient:
        cfg = self.config
        client = IMAPClient(cfg.host, port=cfg.port, ssl=cfg.ssl, timeout=TIMEOUT)
        client.normalise_times = False  # INTERNALDATE as an aware datetime
        try:
            client.login(cfg.username, cfg.password or "")
            if cfg.processed_folder:
                self._ensure_folder(client, cfg.processed_folder)
        except BaseException:
            with contextlib.suppress(OSError):
                client.shutdown()
            raise
        log.info("%s: connected", self.where)
        return client

    def _ensure_folder(self, client: IMAPClient, folder: str) -> None:
        if client.folder_exists(folder):
            return
        try:
            client.create_folder(folder)
        except IMAPClient.Error:
            if not client.folder_exists(folder):  # else another client made it meanwhile
                raise
        log.info("%s: created the folder %s", self.where, folder)

    def _drop(self, client: IMAPClient | None) -> None:
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            with contextlib.suppress(OSError):
                client.shutdown()

    def _wait(self, client: IMAPClient, stop: threading.Event) -> None:
        """Until the server announces new mail (IDLE), `poll_seconds` pass, or `stop`."""
        deadline = time.monotonic() + self.config.poll_seconds
        if not client.has_capability("IDLE"):
            while not stop.is_set() and time.monotonic() < deadline and self.lease.held():
                stop.wait(min(1.0, max(deadline - time.monotonic(), 0)))
            return
        client.idle()
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                responses = client.idle_check(timeout=min(1.0, max(deadline - time.monotonic(), 0)))
                if any(_announces_mail(r) for r in responses):
                    return
        finally:
            client.idle_done()

    # --- one poll ---

    def _poll(self, client: IMAPClient, stop: threading.Event) -> int:
        cfg = self.config
        selected = client.select_folder(cfg.folder)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        self._keywords = b"\\*" in selected.get(b"PERMANENTFLAGS", ())
        self._note_uidvalidity(uidvalidity)
        uids = sorted(int(uid) for uid in client.search("ALL"))
        if not uids:
            return 0
        known = self._known(uidvalidity, uids)
        self._act(client, uidvalidity, [uid for uid in uids if known.get(uid) is False])
        new = [uid for uid in uids if uid not in known]
        processed = 0
        # A filed batch is moved (or flagged) on the server while the next batch is filed:
        # the connection is the mover thread's from the move's start until it is waited for,
        # and the poll touches it only outside that span, so never two at once.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap-move") as mover:
            filed: list[int] = []  # committed, not yet moved
            for batch, too_large in self._batches(client, new):
                if stop.is_set() or not self.lease.held():
                    break
                done: list[int] = []
                for uid in too_large:
                    if self._quarantine_too_large(client, uidvalidity, uid) is not None:
                        done.append(uid)
                fetched = client.fetch(batch, ["BODY.PEEK[]", "INTERNALDATE"]) if batch else {}
                moving = mover.submit(self._move, client, filed) if filed else None
                try:
                    # One transaction for the fetched batch (group commit), as for the spool.
                    messages = self._messages(uidvalidity, batch, fetched, stop)
                    for arrival, outcome in take_batch(self.pipeline, messages):
                        if outcome is not None and arrival.imap is not None:
                            done.append(arrival.imap.uid)
                except BaseException:
                    if moving is not None:
                        self._moved_quietly(moving, uidvalidity, filed)
                    raise
                if moving is not None:
                    moving.result()
                    self._record_acted(uidvalidity, filed)
                filed = done
                processed += len(done)
                if done:
                    self.on_filed()
            self._act(client, uidvalidity, filed)
        return processed

    def _moved_quietly(self, moving: Future[None], uidvalidity: int, uids: list[int]) -> None:
        """Wait for a move begun in the mover thread and record it, while the batch after it
        failed to be filed: a failure here is only logged (the error on its way out is the
        one to tell), and the messages are moved at the next poll, as after a crash."""
        try:
            moving.result()
            self._record_acted(uidvalidity, uids)
        except Exception as exc:
            log.warning("%s: a move left for the next poll: %s", self.where, _one_line(exc))

    def _note_uidvalidity(self, uidvalidity: int) -> None:
        if self._uidvalidity is None:
            with self.ledger.reader() as session:
                self._uidvalidity = session.scalar(
                    select(ImapMessage.uidvalidity)
                    .where(
                        ImapMessage.account == self.account,
                        ImapMessage.folder == self.config.folder,
                    )
                    .order_by(ImapMessage.id.desc())
                    .limit(1)
                )
        if self._uidvalidity is not None and self._uidvalidity != uidvalidity:
            log.warning(
                "%s: UIDVALIDITY changed from %s to %s; the server renumbered the folder, "
                "messages filed before are recognised by their content",
                self.where,
                self._uidvalidity,
                uidvalidity,
            )
        self._uidvalidity = uidvalidity

    def _known(self, uidvalidity: int, uids: list[int]) -> dict[int, bool]:
        """UIDs the ledger holds for this folder and UIDVALIDITY: uid → moved/flagged yet."""
        with self.ledger.reader() as session:
            rows = session.execute(
                select(ImapMessage.uid, ImapMessage.acted_at).where(
                    ImapMessage.account == self.account,
                    ImapMessage.folder == self.config.folder,
                    ImapMessage.uidvalidity == uidvalidity,
                    ImapMessage.uid >= uids[0],
                    ImapMessage.uid <= uids[-1],
                )
            ).all()
        return {int(uid): acted is not None for uid, acted in rows}

    def _batches(
        self, client: IMAPClient, uids: list[int]
    ) -> Iterator[tuple[list[int], list[int]]]:
        """(UIDs to fetch whole, UIDs over the size limit), bounded in count and bytes."""
        for chunk in _chunks(uids, SIZE_CHUNK):
            sizes = client.fetch(chunk, ["RFC822.SIZE"])
            batch: list[int] = []
            too_large: list[int] = []
            total = 0
            for uid in chunk:
                if uid not in sizes:
                    continue  # expunged since the search
                size = int(sizes[uid].get(b"RFC822.SIZE", 0))
                if size > self.max_bytes:
                    too_large.append(uid)
                    continue
                if batch and (len(batch) >= FETCH_COUNT or total + size > FETCH_BYTES):
                    yield batch, too_large
                    batch, too_large, total = [], [], 0
                batch.append(uid)
                total += size
            if batch or too_large:
                yield batch, too_large

    def _arrival(self, uidvalidity: int, uid: int, internal: Any) -> Arrival:
        received = internal if isinstance(internal, datetime) else None
        if received is None or received.tzinfo is None:
            received = self.clock()
        return Arrival(
            mailbox=self.config.mailbox,
            channel="imap",
            received_at=received.astimezone(UTC),
            mail_from=None,
            rcpt="",
            imap=ImapOrigin(self.account, self.config.folder, uidvalidity, uid),
        )

    def _messages(
        self,
        uidvalidity: int,
        uids: list[int],
        fetched: dict[int, dict[bytes, Any]],
        stop: threading.Event,
    ) -> Iterator[tuple[bytes, Arrival]]:
        """The fetched messages to file, in UID order, until asked to stop."""
        for uid in uids:
            if stop.is_set():
                return
            data = fetched.get(uid)
            if data is None:
                continue  # expunged since the search: nothing to file
            raw = data.get(b"BODY[]")
            if not isinstance(raw, bytes):
                # The server lost its content (NIL): skipped, looked for again at the next poll.
                log.warning("%s: UID %s came back without its content; skipped", self.where, uid)
                continue
            yield raw, self._arrival(uidvalidity, uid, data.get(b"INTERNALDATE"))

    def _quarantine_too_large(
        self, client: IMAPClient, uidvalidity: int, uid: int
    ) -> Outcome | None:
        fetched = client.fetch([uid], ["BODY.PEEK[HEADER]", "INTERNALDATE", "RFC822.SIZE"])
        data = fetched.get(uid)
        if data is None:
            return None
        head = data.get(b"BODY[HEADER]")
        size = data.get(b"RFC822.SIZE")
        error = f"{size} bytes, over the limit of {self.max_bytes} ([smtp] max_message_bytes)"
        arrival = self._arrival(uidvalidity, uid, data.get(b"INTERNALDATE"))
        raw = head if isinstance(head, bytes) else b""
        return self.pipeline.quarantine(raw, arrival, "too_large", error)

    def _act(self, client: IMAPClient, uidvalidity: int, uids: list[int]) -> None:
        """Move or flag messages whose intake is committed, then record that it was done."""
        if not uids:
            return
        self._move(client, uids)
        self._record_acted(uidvalidity, uids)

    def _move(self, client: IMAPClient, uids: list[int]) -> None:
        """Move or flag messages whose intake is committed (in the poll's thread or the
        mover's, never both at once)."""
        try:
            self._move_or_flag(client, uids)
        except IMAPClient.Error:
            # Some are gone already (another client moved them): act on those still here.
            wanted = ",".join(str(uid) for uid in uids)
            still_here = {int(uid) for uid in client.search(["UID", wanted])}
            left = [uid for uid in uids if uid in still_here]
            if left:
                self._move_or_flag(client, left)

    def _record_acted(self, uidvalidity: int, uids: list[int]) -> None:
        """Record that these messages were moved or flagged: the next poll leaves them be."""
        with self.ledger.transaction() as session:
            session.execute(
                update(ImapMessage)
                .where(
                    ImapMessage.account == self.account,
                    ImapMessage.folder == self.config.folder,
                    ImapMessage.uidvalidity == uidvalidity,
                    ImapMessage.uid.in_(uids),
                )
                .values(acted_at=self.clock())
            )

    def _move_or_flag(self, client: IMAPClient, uids: list[int]) -> None:
        processed = self.config.processed_folder
        if not processed:
            client.add_flags(uids, [b"\\Seen", KEYWORD] if self._keywords else [b"\\Seen"])
        elif client.has_capability("MOVE"):
            client.move(uids, processed)
        else:
            client.copy(uids, processed)
            client.delete_messages(uids)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(uids)
            else:
                client.expunge()


def _announces_mail(response: Any) -> bool:
    return (
        isinstance(response, tuple)
        and len(response) >= 2
        and response[1]
        in (
            b"EXISTS",
            b"RECENT",
        )
    )


def _one_line(exc: BaseException) -> str:
    text_ = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text_[0] if text_ else ''}"
