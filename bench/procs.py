"""Processes the benches start: the baseline sink, `mailroom serve`, PostgreSQL, the client.

Everything listens on 127.0.0.1 only; every wait is bounded. Mailroom instances and the
PostgreSQL cluster are the test suite's own helpers (`tests/service.py`, `tests/pgcluster.py`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.pgcluster import PgCluster, free_port
from tests.service import MailroomInstance, wait_for

REPO = Path(__file__).resolve().parent.parent
MAX_MESSAGE_BYTES = 26 * 1024 * 1024


def proc_kib(pid: int, key: str) -> int:
    """A `kB` field of /proc/PID/status, e.g. VmHWM (peak resident set) or VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def descendants(pid: int) -> list[int]:
    """A process's children, their children, and so on (Linux /proc)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        path = Path(f"/proc/{current}/task/{current}/children")
        try:
            children = [int(c) for c in path.read_text().split()]
        except FileNotFoundError:
            continue
        found += children
        todo += children
    return found


def tree_kib(pid: int, key: str) -> int:
    """`proc_kib` summed over a process and its descendants (serve and its filing process).

    For VmHWM the sum of each process's own peak: an upper bound of the tree's peak.
    """
    return sum(each_kib(pid, key))


def each_kib(pid: int, key: str) -> list[int]:
    """`proc_kib` of a process, then of each of its descendants still there."""
    found = [proc_kib(pid, key)]
    for child in descendants(pid):
        with contextlib.suppress(FileNotFoundError, KeyError):  # ended meanwhile, or a zombie
            found.append(proc_kib(child, key))
    return found


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def cli_has(*command: str) -> bool:
    """True when `mailroom COMMAND --help` is a known command."""
    result = subprocess.run(
        [sys.executable, "-m", "mailroom.cli", *command, "--help"],
        capture_output=True,
        timeout=60,
        cwd=REPO,
    )
    return result.returncode == 0


def _port_open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Sink:
    """The baseline (`python -m bench.sink`) in its own process."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Sink:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.sink", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
            )
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError("the bench sink exited:\n" + self.log.read_text())
            return _port_open(self.port)

        wait_for(ready, timeout=30, what=f"the bench sink on port {self.port}")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __exit__(self, *_exc: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class Client:
    """`python -m bench.client` in its own process; `result()` waits (bounded) for its JSON."""

    def __init__(self, port: int, mode: str, workload: Path, time_limit: float) -> None:
        self.time_limit = time_limit
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.client",
                "--port",
                str(port),
                "--mode",
                mode,
                "--workload",
                str(workload),
                "--time-limit",
                str(time_limit),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )

    def result(self) -> dict[str, Any]:
        try:
            out, err = self.proc.communicate(timeout=self.time_limit + 300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError("the bench client did not finish in time") from None
        if not out.strip():
            raise RuntimeError("the bench client failed:\n" + err.decode(errors="replace"))
        result: dict[str, Any] = json.loads(out)
        if result["accepted"] != result["total"]:
            raise RuntimeError(
                f"the server accepted {result['accepted']} of {result['total']} messages: "
                f"{result['errors']}"
            )
        return result


def run_client(port: int, mode: str, workload: Path, time_limit: float) -> dict[str, Any]:
    return Client(port, mode, workload, time_limit).result()


class Databases:
    """Fresh databases for Mailroom instances: a SQLite file, or a new PostgreSQL database."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.cluster: PgCluster | None = None
        self._base: Path | None = None
        self._names = itertools.count(1)

    def postgres(self) -> PgCluster:
        if self.cluster is None:
            # Its own temp dir, open to the `postgres` user that owns the cluster under root.
            self._base = Path(tempfile.mkdtemp(prefix="mailroom-bench-pg-"))
            self._base.chmod(0o755)
            self.cluster = PgCluster(self._base / "cluster", durable=True)
            self.cluster.start()
        return self.cluster

    def url(self, kind: str, root: Path) -> str:
        if kind == "sqlite":
            (root / "var").mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{root / 'var' / 'mailroom.db'}"
        cluster = self.postgres()
        name = f"bench_{next(self._names)}"
        cluster.execute(f"CREATE DATABASE {name}")
        return cluster.url(name)

    def drop(self, url: str) -> None:
        if self.cluster is not None and url.startswith("postgresql"):
            name = url.rsplit("/", 1)[1]
            self.cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
        if self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None


@contextmanager
def mailroom(
    databases: Databases,
    root: Path,
    kind: str,
    extra_config: str = "",
    serve_args: tuple[str, ...] = (),
) -> Iterator[MailroomInstance]:
    """A Mailroom with the demo registry on a fresh database; `serve` started, then killed."""
    root.mkdir(parents=True)
    url = databases.url(kind, root)
    overrides: dict[str, Any] = {"smtp.max_message_bytes": MAX_MESSAGE_BYTES}
    instance = MailroomInstance(root, url, **overrides)
    if extra_config:
        with open(instance.config, "a", encoding="utf-8") as fh:
            fh.write(extra_config)
    try:
        instance.cli("init", "--demo")
        instance.start(*serve_args)
        yield instance
    finally:
        if instance.proc is not None:
            instance.kill()
        databases.drop(url)


def serve_pid(instance: MailroomInstance) -> int:
    assert instance.proc is not None
    return instance.proc.pid


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> float:
    """Poll `predicate` until true; returns the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def workdir_filesystem(path: Path) -> str:
    """The file system type of `path` (fsync on tmpfs costs nothing: say where we measured)."""
    best, fstype = "", "unknown"
    target = os.path.realpath(path)
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        mount = fields[1]
        inside = target.startswith(mount.rstrip("/") + "/") or target == mount
        if inside and len(mount) > len(best):
            best, fstype = mount, fields[2]
    return fstype
