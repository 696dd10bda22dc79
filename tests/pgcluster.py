"""A throw-away PostgreSQL cluster for the tests: its own data dir in a temp dir, on 127.0.0.1.

The server binaries come from Debian's `postgresql` package. PostgreSQL refuses to run as root,
so when the tests run as root the cluster belongs to the `postgres` system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PG_BIN_CANDIDATES = [
    Path(os.environ.get("MAILROOM_PG_BIN", "")),
    *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True),
]


def find_pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if str(candidate) not in ("", ".") and (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, postgres) not found: install Debian's "
        "'postgresql' package or set MAILROOM_PG_BIN"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self, base: Path, *, durable: bool = False) -> None:
        self.bin = find_pg_bin()
        # Tests trade durability for speed; benchmarks keep PostgreSQL's defaults (fsync on).
        self.durable = durable
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self.user = "mailroom"
        self.proc: subprocess.Popen[bytes] | None = None
        self._run_as: str | None = None
        if os.geteuid() == 0:
            self._run_as = "postgres"
            try:
                pwd.getpwnam(self._run_as)
            except KeyError:
                raise RuntimeError(
                    "running as root needs the 'postgres' system user (Debian's postgresql)"
                ) from None

    def _cmd(self, *args: str) -> list[str]:
        return list(args)

    def _popen_kwargs(self) -> dict[str, object]:
        return {"user": self._run_as} if self._run_as else {}

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if self._run_as:
            pw = pwd.getpwnam(self._run_as)
            os.chmod(self.base, 0o755)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        if (self.data / "PG_VERSION").exists():
            self._run()  # started again after stop(): same data, same port
            return
        subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                # C sorting, but a ctype that classes Chinese characters as letters: in the C
                # ctype pg_trgm makes no trigram of them and the items search finds nothing.
                "--lc-ctype=C.UTF-8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            **self._popen_kwargs(),  # type: ignore[arg-type]
        )
        self._run()

    def _run(self) -> None:
        log = open(self.base / "postgres.log", "ab")  # noqa: SIM115 - kept for the server's life
        self.proc = subprocess.Popen(
            [
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.base),
                *([] if self.durable else ["-c", "fsync=off", "-c", "full_page_writes=off"]),
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **self._popen_kwargs(),  # type: ignore[arg-type]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "PostgreSQL did not start:\n" + (self.base / "postgres.log").read_text()
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                if self._ready():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not accept connections within 30 s")

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.encode())

    def stop(self) -> None:
        if self.proc is None:
            return
        # Fast shutdown: connected clients are cut off (a smart one would wait for them).
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
