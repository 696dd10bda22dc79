"""Bench 4, the console part: the items search (`/items?q=…`) and the standings page
(`/standings?period=…`) answered by `mailroom web` on the decade database, timed over HTTP on
loopback as a browser would ask (signed in, one keep-alive connection, the whole body read).
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import Row, Target
from tests.pgcluster import free_port
from tests.service import MailroomInstance, wait_for

USER = "bench@mailroom.test"
# The decade's titles are "{unit}推进第{n}项重点工作取得新成效" (n = 1…97), bodies repeat them.
SEARCHES = {
    "common word (every item matches)": "重点工作",
    "rare word (one item in 97)": "推进第42项",
    "no match": "无此关键词",
}


class Session:
    """One signed-in keep-alive connection to the console."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.cookie = ""

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path, headers={"Cookie": self.cookie} if self.cookie else {})
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def sign_in(self, email: str, password: str) -> None:
        body = urllib.parse.urlencode({"email": email, "password": password, "next": "/"})
        self.conn.request(
            "POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        resp = self.conn.getresponse()
        resp.read()
        cookie = resp.getheader("set-cookie") or ""
        if resp.status != 303 or not cookie:
            raise RuntimeError(f"bench sign-in refused ({resp.status})")
        self.cookie = cookie.split(";", 1)[0]

    def close(self) -> None:
        self.conn.close()


def timed(session: Session, path: str) -> float:
    start = time.monotonic()
    status, body = session.get(path)
    took = time.monotonic() - start
    if status != 200 or b"<table" not in body:
        raise RuntimeError(f"GET {path}: {status}")
    return took


def run_console(
    root: Path, url: str, period: str, runs: int, size: str, kind: str, say: Callable[[str], None]
) -> tuple[list[Row], dict[str, Any]]:
    port = free_port()
    web: dict[str, Any] = {"web.enabled": True, "web.listen": f"127.0.0.1:{port}"}
    instance = MailroomInstance(root / "console", url, **web)
    printed = instance.cli("user", "add", USER, "--role", "staff", "--generate").stdout
    found = re.search(r"^password: (\S+)$", printed, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"user add printed no password: {printed}")
    log = root / "console" / "web.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailroom.cli", "--config", str(instance.config), "web"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=instance.root,
            env=instance.env,
        )
    rows: list[Row] = []
    figures: dict[str, list[float]] = {}
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError("mailroom web exited:\n" + log.read_text()[-2000:])
            try:
                Session(port).get("/healthz")
                return True
            except OSError:
                return False

        wait_for(up, timeout=60, what="mailroom web on the decade")
        session = Session(port)
        session.sign_in(USER, found.group(1))
        pages = {
            f"/items?q=… ({label})": "/items?q=" + urllib.parse.quote(q)
            for label, q in SEARCHES.items()
        }
        pages[f"/standings?period={period}"] = f"/standings?period={period}"
        for name, path in pages.items():
            took = [timed(session, path) for _ in range(runs + 1)]  # the first warms, uncounted
            figures[name] = took[1:]
            say(f"console on {kind}: {name}: {', '.join(f'{t:.3f}' for t in took[1:])} s")
            rows.append(
                Row(
                    "4",
                    f"console {name}, {size} ({kind})",
                    "s",
                    runs=took[1:],
                    target=Target("<=", 0.5),
                    note="mailroom web on loopback, signed in, whole page read",
                )
            )
        session.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rows, figures
