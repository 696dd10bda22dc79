"""Bench 3: an IMAP backlog in a real Dovecot folder, Mailroom's poller against a bare FETCH loop.

A private Dovecot (Debian's `dovecot-imapd`, its own config in a temp dir, 127.0.0.1 only)
serves one user whose folders are filled by writing Maildir files directly. The baseline is
a bare imapclient loop in its own process that FETCHes every message's RFC822 (100 per
command); Mailroom's run is `mailroom serve` polling a copy of the same folder through an
`[imap.bench]` table until every message is in the intake log. Dovecot indexes a folder
before the first timed run, so neither side pays for that.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.intake import Settings
from bench.procs import REPO, Databases, mailroom, module_exists, serve_pid, wait_until
from bench.stats import Row, Target
from bench.workload import make_workload
from tests.pgcluster import free_port

USER = "inf"
PASSWORD = "bench-secret"
BATCH = 100


def dovecot_missing() -> str | None:
    """Why Dovecot cannot run here, or None."""
    if shutil.which("dovecot") is None:
        return "dovecot not installed (apt-get install dovecot-imapd)"
    for user in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"system user {user} missing (reinstall dovecot-core)"
    return None


class Dovecot:
    """A private Dovecot on 127.0.0.1, started in the foreground so it is stopped by its PID."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.conf = base / "dovecot.conf"
        self.mail = base / "mail"
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        b = self.base
        return f"""base_dir = {b}/run
state_dir = {b}/state
log_path = {b}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{self.mail}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {b}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={self.mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
"""

    def start(self) -> Dovecot:
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        (self.base / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        self.conf.write_text(self._config())
        self.folder("Processed")
        with open(self.base / "stdout.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError("dovecot exited:\n" + (self.base / "stdout.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_until(ready, 30, f"dovecot on port {self.port}", interval=0.1)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def folder(self, name: str) -> Path:
        """The Maildir++ directory of a folder (created)."""
        root = self.mail / USER
        path = root if name == "INBOX" else root / f".{name}"
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        return path

    def fill(self, name: str, messages: list[bytes]) -> None:
        """Put messages in a folder as Maildir files, owned by the mail user."""
        path = self.folder(name)
        stamp = int(time.time())
        for i, data in enumerate(messages):
            (path / "cur" / f"{stamp}.M{i}P{os.getpid()}.bench,S={len(data)}:2,").write_bytes(data)
        pw = pwd.getpwnam("dovecot")
        for dirpath, _dirs, filenames in os.walk(self.mail):
            os.chown(dirpath, pw.pw_uid, pw.pw_gid)
            for f in filenames:
                os.chown(os.path.join(dirpath, f), pw.pw_uid, pw.pw_gid)

    def warm(self, name: str) -> int:
        """Have Dovecot index the folder (not part of any timed run); returns its size."""
        from imapclient import IMAPClient

        with IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=120) as client:
            client.login(USER, PASSWORD)
            info = client.select_folder(name, readonly=True)
            client.fetch(client.search("ALL"), ["FLAGS", "RFC822.SIZE"])
            return int(info[b"EXISTS"])


def fetch_all(port: int, folder: str) -> dict[str, Any]:
    """The baseline: log in, select, FETCH every message's RFC822, `BATCH` per command."""
    from imapclient import IMAPClient

    started = time.monotonic()
    count = size = 0
    with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=120) as client:
        client.login(USER, PASSWORD)
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        for i in range(0, len(uids), BATCH):
            for data in client.fetch(uids[i : i + BATCH], ["RFC822"]).values():
                count += 1
                size += len(data[b"RFC822"])
    return {"count": count, "bytes": size, "wall": time.monotonic() - started}


def _baseline_run(port: int, folder: str, time_limit: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.imap", str(port), folder],
        capture_output=True,
        timeout=time_limit,
        cwd=REPO,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _poller_run(
    settings: Settings, databases: Databases, dovecot: Dovecot, folder: str, count: int
) -> float:
    """Seconds from `mailroom serve` listening to every message of the folder in the intake."""
    from bench.intake import _counts
    from ledger.db import Ledger

    extra = (
        "\n[imap.bench]\n"
        'host = "127.0.0.1"\n'
        f"port = {dovecot.port}\n"
        "ssl = false\n"
        f'username = "{USER}"\n'
        f'password = "{PASSWORD}"\n'
        f'folder = "{folder}"\n'
        'processed_folder = "Processed"\n'
        'mailbox = "daily"\n'
    )
    root = settings.work / f"imap-{folder}"
    with mailroom(databases, root, "sqlite", extra) as instance:
        started = time.monotonic()
        serve_pid(instance)
        ledger = Ledger.from_url(instance.db_url)
        try:
            done_at = wait_until(
                lambda: _counts(ledger)[0] >= count,
                settings.time_limit,
                f"the poller to take {count} messages",
            )
        finally:
            ledger.dispose()
    return done_at - started


def run_imap(settings: Settings, databases: Databases, count: int) -> tuple[list[Row], Any]:
    missing = dovecot_missing()
    measure = f"IMAP backlog of {count:,}: fetched/filed"
    if missing:
        return [Row("3", measure, "msgs/s", skipped=missing)], {}
    poller = module_exists("ingest.imap")
    dovecot = Dovecot(settings.work / "dovecot")
    dovecot.start()
    details: dict[str, Any] = {"baseline": [], "poller": []}
    try:
        messages = [x.data for x in make_workload(count, seed=3)]
        dovecot.fill("Backlog", messages)
        dovecot.warm("Backlog")
        base: list[float] = []
        mine: list[float] = []
        for i in range(settings.runs):
            settings.say(f"run {i + 1}/{settings.runs} IMAP: bare FETCH loop")
            result = _baseline_run(dovecot.port, "Backlog", settings.time_limit)
            if result["count"] != count:
                raise RuntimeError(f"the FETCH loop saw {result['count']} of {count} messages")
            details["baseline"].append(result)
            base.append(count / result["wall"])
            if poller:
                folder = f"Backlog{i + 1}"
                dovecot.fill(folder, messages)
                dovecot.warm(folder)
                settings.say(f"run {i + 1}/{settings.runs} IMAP: mailroom poller (SQLite)")
                seconds = _poller_run(settings, databases, dovecot, folder, count)
                details["poller"].append({"count": count, "wall": seconds})
                mine.append(count / seconds)
    finally:
        dovecot.stop()
    if not poller:
        return [
            Row("3", f"IMAP backlog of {count:,}: bare FETCH loop", "msgs/s", runs=base),
            Row(
                "3",
                f"IMAP backlog of {count:,}: poller filing all",
                "msgs/s",
                skipped="ingest.imap not landed",
            ),
        ], details
    return [
        Row(
            "3",
            f"IMAP backlog of {count:,}: poller filing all (SQLite)",
            "msgs/s",
            runs=mine,
            baseline=base,
            baseline_name="FETCH loop",
            target=Target(">=", 0.50, "ratio"),
        )
    ], details


if __name__ == "__main__":
    json.dump(fetch_all(int(sys.argv[1]), sys.argv[2]), sys.stdout)
