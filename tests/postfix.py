"""A throw-away Postfix for the tests: Mailroom's relay, as an office runs it, on 127.0.0.1.

The binaries come from Debian's `postfix` (installed by scripts/setup with "No configuration";
the package's own service is never started). This instance has its own `config_directory`
(main.cf, master.cf, lookup tables), `queue_directory` and `data_directory` in a temp dir, and
listens on loopback only, on unprivileged ports:

- the relay (`port`): Mailroom hands its mail to it; mail for a domain in `routes` goes on to
  `127.0.0.1:<port>` (the office's domain to Mailroom's own listener, so bounces come back);
- the far end (`mx_port`): the mail server of `refused_domain`, which refuses every mailbox
  there with `550 5.1.1` at RCPT, as a server does for an address that no longer exists. The
  relay has taken the mail by then, so it bounces it with a delivery report (RFC 3464) to the
  mail's return path: a real bounce, not a refusal Mailroom hears itself.

Postfix is started as root (`postfix -c DIR start`): its master runs as root and its daemons as
the `postfix` user (made by the package), which must own `data_directory`; Postfix makes the
queue's subdirectories itself. Its log is `maillog` in the temp dir (`postlogd`; no syslog).
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
from pathlib import Path

from tests.pgcluster import free_port

POSTFIX = Path("/usr/sbin/postfix")

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.{relay_domain}
mydomain = {relay_domain}
myorigin = $myhostname
# Nothing is delivered here: every domain is relayed, by transport_maps or not at all.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
transport_maps = texthash:{root}/conf/transport
smtpd_peername_lookup = no
smtp_host_lookup = native
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
"""

# Chroot off: the daemons read the temp dir directly.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
127.0.0.1:{mx_port} inet n - n - - smtpd
  -o myhostname=mx.{refused_domain}
  -o smtpd_recipient_restrictions=check_recipient_access,texthash:{root}/conf/refused,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class Postfix:
    """One private Postfix: `start()`, `stop()` (also on failure: use it as a context)."""

    def __init__(
        self,
        routes: dict[str, int],
        refused_domain: str = "gone.example",
        relay_domain: str = "mailroom.test",
        port: int | None = None,
    ) -> None:
        if not POSTFIX.exists():
            raise RuntimeError("Postfix not found: install Debian's 'postfix' (scripts/setup does)")
        if os.geteuid() != 0:
            raise RuntimeError("Postfix's master must be started as root: run the tests as root")
        try:
            owner = pwd.getpwnam("postfix")
        except KeyError:
            raise RuntimeError("no 'postfix' user: Debian's 'postfix' package makes it") from None
        # Not under pytest's 0700 temp root: the postfix user must be able to reach it.
        self.root = Path(tempfile.mkdtemp(prefix="mailroom-postfix-"))
        self.root.chmod(0o755)
        self.port = port or free_port()
        self.mx_port = free_port()
        self.refused_domain = refused_domain
        conf = self.root / "conf"
        for sub in ("conf", "queue", "data"):
            (self.root / sub).mkdir()
        os.chown(self.root / "data", owner.pw_uid, owner.pw_gid)
        values = {
            "root": self.root,
            "port": self.port,
            "mx_port": self.mx_port,
            "refused_domain": refused_domain,
            "relay_domain": relay_domain,
        }
        (conf / "main.cf").write_text(MAIN_CF.format(**values), encoding="utf-8")
        (conf / "master.cf").write_text(MASTER_CF.format(**values), encoding="utf-8")
        transport = {domain: f"smtp:[127.0.0.1]:{p}" for domain, p in routes.items()}
        transport[refused_domain] = f"smtp:[127.0.0.1]:{self.mx_port}"
        (conf / "transport").write_text(
            "".join(f"{domain} {hop}\n" for domain, hop in transport.items()), encoding="utf-8"
        )
        (conf / "refused").write_text(
            f"{refused_domain} 550 5.1.1 mailbox unavailable\n", encoding="utf-8"
        )
        self.conf = conf
        self.running = False

    @property
    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def _postfix(self, command: str) -> subprocess.CompletedProcess[str]:
        # The master daemonizes and its children inherit our descriptors: give it none.
        return subprocess.run(
            [str(POSTFIX), "-c", str(self.conf), command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
        )

    def _port_open(self, port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    def _master_pid(self) -> int | None:
        path = self.root / "queue" / "pid" / "master.pid"
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        return None

    def start(self) -> Postfix:
        done = self._postfix("start")
        self.running = True  # whatever it says, stop() looks for a master to end
        if done.returncode != 0:
            raise RuntimeError(f"postfix start failed:\n{done.stdout}\n{self.log}")
        deadline = time.monotonic() + 30
        while not (self._port_open(self.port) and self._port_open(self.mx_port)):
            if time.monotonic() > deadline:
                raise RuntimeError("Postfix did not listen within 30 s:\n" + self.log)
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """`postfix -c DIR stop`, then wait for the master to be gone (SIGKILL to its process
        group after 10 s: it leads one of its own)."""
        if not self.running:
            return
        pid = self._master_pid()
        self._postfix("stop")
        deadline = time.monotonic() + 10
        while pid is not None and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                assert os.getpgid(pid) == pid != os.getpgid(0), "the master leads its own group"
                os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self._port_open(self.port) or self._port_open(self.mx_port):
            if time.monotonic() > deadline:
                raise RuntimeError("Postfix did not stop within 20 s:\n" + self.log)
            time.sleep(0.02)
        self.running = False

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Postfix:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()
