"""A throw-away Dovecot IMAP server for the tests: its own config in a temp dir, on 127.0.0.1.

The binaries come from Debian's `dovecot-imapd` (the package's own service is never started).
Mail is stored as Maildir under the temp dir, owned by the `dovecot` user; `imap-login` runs
as `dovenull`. Tests put messages in with IMAP APPEND, as a mail server's delivery would.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from imapclient import IMAPClient

from tests.pgcluster import free_port

DOVECOT = Path("/usr/sbin/dovecot")
DOVEADM = Path("/usr/bin/doveadm")

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
# Every IMAP session's commands, as the server received them (`*.in`): tests read them.
rawlog_dir = {root}/rawlog
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
default_internal_user = dovecot
default_login_user = dovenull
# The mail owner is the `dovecot` system user, below Debian's default first_valid_uid.
first_valid_uid = 1
# No statistics: processes would wait for the stats service, which slows every stop by 5 s.
stats_writer_socket_path =
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class Dovecot:
    """One private Dovecot: `start()`, `stop()`, users with passwords, IMAP helpers."""

    def __init__(
        self, users: dict[str, str] | None = None, capabilities: str | None = None
    ) -> None:
        """`capabilities` replaces what the server announces (e.g. without IDLE and MOVE)."""
        if not DOVECOT.exists():
            raise RuntimeError(
                "Dovecot not found: install Debian's 'dovecot-imapd' (scripts/setup does)"
            )
        # Not under pytest's 0700 temp root: the dovecot users must be able to reach it.
        self.root = Path(tempfile.mkdtemp(prefix="mailroom-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.users = dict(users or {"inf": "secret"})
        self.conf = self.root / "dovecot.conf"
        config = CONFIG.format(root=self.root, port=self.port)
        if capabilities is not None:
            config += f"imap_capability = {capabilities}\n"
        self.conf.write_text(config, encoding="utf-8")
        passwd = "".join(f"{user}:{{PLAIN}}{pw}\n" for user, pw in self.users.items())
        (self.root / "passwd").write_text(passwd, encoding="utf-8")
        for owned in ("mail", "rawlog"):
            (self.root / owned).mkdir()
            if os.geteuid() == 0:
                pw = pwd.getpwnam("dovecot")
                os.chown(self.root / owned, pw.pw_uid, pw.pw_gid)
        self.running = False

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def start(self) -> Dovecot:
        # Dovecot daemonizes and its children inherit our descriptors: give it none.
        subprocess.run(
            [str(DOVECOT), "-c", str(self.conf)],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        deadline = time.monotonic() + 30
        while not self._port_open():
            if time.monotonic() > deadline:
                raise RuntimeError("Dovecot did not listen within 30 s:\n" + self.log)
            time.sleep(0.05)
        self.running = True
        return self

    def stop(self) -> None:
        """Stop the server and every process of it; connections are cut at once.

        SIGTERM to the master (what `doveadm stop` sends); login processes can take seconds
        to follow, so whatever is left after a moment gets SIGKILL, as in a crash. The
        Maildir on disk is safe either way.
        """
        if not self.running:
            return
        pid = int((self.root / "run" / "master.pid").read_text().strip())
        group = os.getpgid(pid)
        assert group == pid != os.getpgid(0), "Dovecot should lead its own process group"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 0.3
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self._port_open() or _alive(pid):
            if time.monotonic() > deadline:
                raise RuntimeError("Dovecot did not stop within 30 s")
            time.sleep(0.02)
        # A master killed outright leaves its pid file, and a start would think it still runs.
        (self.root / "run" / "master.pid").unlink(missing_ok=True)
        self.running = False

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def client(self, user: str = "inf") -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=30)
        client.login(user, self.users[user])
        return client

    def append(
        self,
        raws: list[bytes],
        folder: str = "INBOX",
        user: str = "inf",
        at: datetime | None = None,
    ) -> None:
        """Deliver `raws` into `folder`, each with `at` (default: the test's own clock) as its
        INTERNALDATE: Dovecot keeps the machine's real time, which a test run at another date
        must not see. (Dovecot takes the date given unless it lies in its own future.)"""
        client = self.client(user)
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in raws:
                client.append(folder, raw, msg_time=at or datetime.now(UTC))
        finally:
            client.logout()

    def uids(self, folder: str = "INBOX", user: str = "inf") -> list[int]:
        client = self.client(user)
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            return sorted(int(uid) for uid in client.search("ALL"))
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX", user: str = "inf") -> dict[int, set[str]]:
        client = self.client(user)
        try:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
            return {
                int(uid): {f.decode() if isinstance(f, bytes) else str(f) for f in data[b"FLAGS"]}
                for uid, data in fetched.items()
            }
        finally:
            client.logout()

    def uidvalidity(self, folder: str = "INBOX", user: str = "inf") -> int:
        client = self.client(user)
        try:
            return int(client.select_folder(folder, readonly=True)[b"UIDVALIDITY"])
        finally:
            client.logout()

    def commands_received(self) -> list[str]:
        """Every line clients sent (commands and literals), session by session, from the rawlogs."""
        lines: list[str] = []
        for path in sorted((self.root / "rawlog").glob("*.in")):
            for line in path.read_text(errors="replace").splitlines():
                lines.append(line.partition(" ")[2])  # after the timestamp
        return lines

    def doveadm(self, *args: str) -> str:
        result = subprocess.run(
            [str(DOVEADM), "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout
