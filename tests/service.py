"""Run `mailroom` as real processes for the tests: a config in a temp dir, a free port."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger.db import Ledger
from ledger.models import Intake, OutboundMessage, Person
from tests.pgcluster import free_port


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class MailroomInstance:
    """One configured Mailroom: its config file, its `var/`, and a `serve` process."""

    def __init__(
        self, root: Path, db_url: str, clock: datetime | None = None, **overrides: Any
    ) -> None:
        """`overrides` are `section.key` settings (e.g. `imap.inf.host`), added or replaced.
        With a `clock`, serve and every CLI command live at that instant (running on from it
        as the instance is made), as `scripts/at` does for a whole run."""
        self.root = root
        self.env = dict(os.environ)
        if clock is not None:
            self.env["MAILROOM_TEST_CLOCK_OFFSET"] = str(clock.timestamp() - time.time())
            clock_dir = str(Path(__file__).parent / "clock")
            self.env["PYTHONPATH"] = os.pathsep.join(
                p for p in (clock_dir, self.env.get("PYTHONPATH")) if p
            )
        self.port = free_port()
        self.db_url = db_url
        root.mkdir(parents=True, exist_ok=True)
        settings: dict[str, dict[str, object]] = {
            "database": {"url": db_url},
            "smtp": {"listen": f"127.0.0.1:{self.port}", "max_message_bytes": 200_000},
            "mailboxes": {
                "daily": "inf@mailroom.test",
                "solicited": "sfxx@mailroom.test",
                "desk": "desk@mailroom.test",
            },
            # Early warnings would write to every lagging unit of the demo in most tests' quarter;
            # the tests of warnings turn them on.
            "reports": {"warnings": False},
            # The console would want the one port 8080 in every test; its tests give it one.
            "web": {"enabled": False},
        }
        for dotted, value in overrides.items():
            section, _, key = dotted.rpartition(".")
            settings.setdefault(section, {})[key] = value
        lines = []
        for section, values in settings.items():
            lines.append(f"[{section}]")
            for key, value in values.items():
                lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        self.config = root / "mailroom.toml"
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "serve.log"

    @property
    def outbox(self) -> Path:
        return self.root / "var" / "outbox" / "new"

    @property
    def spool_dir(self) -> Path:
        return self.root / "var" / "spool"

    def spooled(self) -> list[str]:
        """The spool ids accepted and not yet filed (journal and files)."""
        from ingest.spool import Spool

        return Spool(self.spool_dir).pending()

    def cli(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "mailroom.cli", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
            env=self.env,
            input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"mailroom {' '.join(args)} failed:\n{result.stderr}")
        return result

    def init(self, demo: bool = True) -> None:
        """`mailroom init [--demo]`, run in this process (a fresh interpreter costs seconds)."""
        from mailroom.cli import main

        assert main(["--config", str(self.config), "init", *(["--demo"] if demo else [])]) == 0

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def start(self, *extra: str, prelude: str = "") -> None:
        """`mailroom serve`; with a `prelude`, Python run in serve's process before it starts
        (a test's patch: its filing process, a program of its own, runs unpatched)."""
        assert self.proc is None
        program = (
            ["-c", prelude + "\nimport sys\nfrom mailroom.cli import main\nsys.exit(main())"]
            if prelude
            else ["-m", "mailroom.cli"]
        )
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *program, "--config", str(self.config), "serve", *extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                env=self.env,
            )
        wait_for(self._listening, timeout=30, what=f"mailroom serve on port {self.port}")

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError("mailroom serve exited:\n" + self.log.read_text())
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"mailroom serve did not stop in 30 s; its log ends:\n{self.stacks()}"
            ) from exc
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def wait(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "it") -> Any:
        """`wait_for`, with serve's log and its processes' stacks in the failure."""
        try:
            return wait_for(predicate, timeout=timeout, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; serve's log ends:\n{self.stacks()}") from None

    def stacks(self) -> str:
        """serve and its filing process write every thread's stack to the log (SIGUSR1):
        the end of the log, with them, for a test that waited in vain."""
        if self.proc is not None:
            for pid in (self.proc.pid, *children(self.proc.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGUSR1)
            time.sleep(1)
        return self.log.read_text(errors="replace")[-20000:]

    def close(self) -> None:
        if self.proc is not None:
            self.stop()

    def outbox_messages(self) -> list[EmailMessage]:
        if not self.outbox.exists():
            return []
        out = []
        for path in sorted(self.outbox.iterdir()):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out


def remove_editors(session: Session) -> None:
    """Take the demo's editors out of the registry: tests that follow units' mail and its
    replies then see no desk forwards (SPEC §4.1) among them."""
    session.execute(delete(Person).where(Person.role == "editor"))


class LedgerView:
    """Reads the ledger of a running instance directly (cheaper than a CLI process per look)."""

    def __init__(self, db_url: str) -> None:
        self.ledger = Ledger.from_url(db_url)

    def states(self) -> Counter[str]:
        with self.ledger.reader() as s:
            return Counter(s.scalars(select(Intake.state)).all())

    def filed_ids(self) -> Counter[str | None]:
        with self.ledger.reader() as s:
            return Counter(s.scalars(select(Intake.message_id).where(Intake.state == "filed")))

    def rows(self) -> list[tuple[str, str | None]]:
        """(state, Message-ID) of every intake row, oldest first."""
        with self.ledger.reader() as s:
            found = s.execute(select(Intake.state, Intake.message_id).order_by(Intake.id))
            return [(state, message_id) for state, message_id in found]

    def outbox(self) -> list[OutboundMessage]:
        with self.ledger.reader() as s:
            return list(s.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))

    def close(self) -> None:
        self.ledger.dispose()


def with_message_id(raw: bytes, message_id: str) -> bytes:
    """The same mail under another Message-ID: to Mailroom, another item (not a duplicate)."""
    replaced, count = re.subn(
        rb"^Message-ID: *<[^>]*>",
        b"Message-ID: <" + message_id.encode() + b">",
        raw,
        count=1,
        flags=re.MULTILINE | re.IGNORECASE,
    )
    assert count == 1, "the message has no Message-ID header to replace"
    return replaced


def plain_text(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux /proc), e.g. serve's filing process."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


__all__ = [
    "LedgerView",
    "MailroomInstance",
    "pid_alive",
    "plain_text",
    "signal",
    "wait_for",
    "with_message_id",
]
