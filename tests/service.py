"""Run `mailroom` as real processes for the tests: a config in a temp dir, a free port."""

from __future__ import annotations

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
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

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

    def __init__(self, root: Path, db_url: str, **overrides: Any) -> None:
        """`overrides` are `section.key` settings (e.g. `imap.inf.host`), added or replaced."""
        self.root = root
        self.port = free_port()
        self.db_url = db_url
        root.mkdir(parents=True, exist_ok=True)
        settings = {
            "database": {"url": db_url},
            "smtp": {"listen": f"127.0.0.1:{self.port}", "max_message_bytes": 200_000},
            "mailboxes": {
                "daily": "inf@mailroom.test",
                "solicited": "sfxx@mailroom.test",
                "desk": "desk@mailroom.test",
            },
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
    def spool_new(self) -> Path:
        return self.root / "var" / "spool" / "new"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "mailroom.cli", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"mailroom {' '.join(args)} failed:\n{result.stderr}")
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def start(self, *extra: str) -> None:
        assert self.proc is None
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mailroom.cli",
                    "--config",
                    str(self.config),
                    "serve",
                    *extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
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
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

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


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


__all__ = ["MailroomInstance", "pid_alive", "plain_text", "signal", "wait_for", "with_message_id"]
