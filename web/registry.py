"""The console's registry: units and people (with their dates in office), and an import of a
.csv/.xlsx file in two steps — upload, then a preview of every change and every bad row, then
confirm — staff only.

Between the steps the uploaded bytes wait server-side, in a directory of its own under the
system temp dir named by a random token, bound to the session that uploaded them (the account
and a hash of the session's CSRF token) and kept at most an hour; applying or cancelling removes
them. The preview runs `import_registry` in a transaction that is rolled back, so it shows
exactly what confirming will do (an import is all or nothing).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ledger.accounts import SignedIn
from ledger.audit import record
from ledger.models import Person, Unit
from ledger.registry.apply import ImportSummary, import_registry
from ledger.registry.checks import RegistryError

if TYPE_CHECKING:
    from web.app import Console

UPLOADS = "mailroom-console-uploads"
KEEP_SECONDS = 3600
TOKEN = re.compile(r"[0-9a-f]{32}")
SUFFIXES = (".csv", ".xlsx")
ROLE_TEXT = {
    "officer": "信息员",
    "supervising_leader": "分管领导",
    "principal_leader": "主要领导",
    "editor": "编辑",
    "section_chief": "科（处）长",
    "deputy_secretary_general": "副秘书长",
    "director": "主任",
    "secretary_general": "秘书长",
    "vice_mayor": "副市长",
    "mayor": "市长",
}
UNIT_FIELDS = ("名称", "标识", "序列", "上级单位", "起始日期", "截止日期")
PERSON_FIELDS = ("姓名", "电话", "职务", "起始日期", "截止日期")


def routes(console: Console) -> list[Route]:
    from web.app import READ, STAFF

    r = Registry(console)
    return [
        Route("/registry", console.route(READ, r.page)),
        Route("/registry/upload", console.route(STAFF, r.upload, files=1), methods=["POST"]),
        Route("/registry/apply", console.route(STAFF, r.apply), methods=["POST"]),
        Route("/registry/cancel", console.route(STAFF, r.cancel), methods=["POST"]),
    ]


def uploads_dir() -> Path:
    return Path(tempfile.gettempdir()) / UPLOADS


def _own_root() -> bool:
    """The uploads' root exists, is a directory of this user (not a link another user left in
    a shared temp dir) and only this user's."""
    root = uploads_dir()
    root.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(root)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _binding(signed: SignedIn) -> dict[str, Any]:
    csrf = hashlib.sha256(signed.csrf.encode()).hexdigest()
    return {"account": signed.account.id, "session": csrf}


def _safe_name(name: str, suffix: str) -> str:
    """The uploaded file's own name, for the problem lines (letters, digits, CJK, - and _)."""
    stem = re.sub(r"[^\w\-]+", "_", Path(name.replace("\\", "/")).stem)[:60].strip("._")
    return (stem or "registry") + suffix


def _kept_at(where: Path) -> float | None:
    """When this upload was kept (by this process's clock), or None if it is not one."""
    try:
        at = json.loads((where / "upload.json").read_text(encoding="utf-8"))["at"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return at if isinstance(at, float) else None


def _sweep() -> None:
    """Uploads left behind (never confirmed nor cancelled) go after KEEP_SECONDS. Called just
    after an upload's directory is made, so the root's mtime is the file system's now: the
    ages are the file system's, whatever clock this process keeps."""
    root = uploads_dir()
    try:
        fresh = root.stat().st_mtime
        entries = list(root.iterdir())
    except OSError:
        return
    for entry in entries:
        try:
            old = fresh - entry.stat().st_mtime > KEEP_SECONDS
        except OSError:
            continue
        if old:
            shutil.rmtree(entry, ignore_errors=True)


Rows = dict[Any, tuple[str, ...]]


def snapshot(session: Session) -> tuple[Rows, Rows]:
    """The registry as (units by code, people by (unit code, role, email))."""
    units = list(session.scalars(select(Unit)))
    code_of = {u.id: u.code for u in units}
    unit_rows: Rows = {
        u.code: (
            u.name,
            u.mark,
            u.sequence,
            code_of.get(u.parent_id, "") if u.parent_id else "",
            _day(u.active_from),
            _day(u.active_to),
        )
        for u in units
    }
    people: Rows = {
        (code_of[p.unit_id], p.role, p.email.strip().lower()): (
            p.name,
            p.phone,
            p.title,
            _day(p.active_from),
            _day(p.active_to),
        )
        for p in session.scalars(select(Person))
    }
    return unit_rows, people


def _day(day: date | None) -> str:
    return "" if day is None else day.isoformat()


def changes(
    before: dict[Any, tuple[Any, ...]], after: dict[Any, tuple[Any, ...]], fields: tuple[str, ...]
) -> tuple[list[tuple[Any, tuple[Any, ...]]], list[tuple[Any, list[str]]]]:
    """What was added (key, values) and what changed (key, one line per changed field)."""
    added = [(k, v) for k, v in after.items() if k not in before]
    updated = []
    for k, v in after.items():
        old = before.get(k)
        if old is not None and old != v:
            updated.append(
                (
                    k,
                    [
                        f"{f}：{a or '（空）'} → {b or '（空）'}"
                        for f, a, b in zip(fields, old, v, strict=True)
                        if a != b
                    ],
                )
            )
    return sorted(added, key=str), sorted(updated, key=str)


class Registry:
    def __init__(self, console: Console) -> None:
        self.c = console

    def page(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        with self.c.ledger.reader() as session:
            units = session.scalars(select(Unit).order_by(Unit.sequence, Unit.code)).all()
            parent = {u.id: u.name for u in units}
            people = session.execute(
                select(Person, Unit).join(Person.unit).order_by(Unit.code, Person.role, Person.name)
            ).all()
        return self.c.render(
            request,
            "registry.html.j2",
            signed,
            {
                "units": units,
                "parent": parent,
                "people": people,
                "role_text": ROLE_TEXT,
                "message": (request.query_params.get("done") or "")[:2000],
            },
        )

    def _preview_error(
        self, request: Request, signed: SignedIn, message: str, status: int = 400
    ) -> Response:
        return self.c.render(
            request,
            "error.html.j2",
            signed,
            {"title": "无法导入", "message": message},
            status=status,
        )

    def upload(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        from web.app import UPLOAD_BYTES

        assert form is not None
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            return self._preview_error(request, signed, "请选择要导入的 .csv 或 .xlsx 文件。")
        suffix = Path(file.filename).suffix.lower()
        if suffix not in SUFFIXES:
            return self._preview_error(request, signed, "只能导入 .csv 或 .xlsx 文件。")
        file.file.seek(0)
        data = file.file.read(UPLOAD_BYTES + 1)
        if len(data) > UPLOAD_BYTES:
            return self._preview_error(
                request, signed, f"上传的文件不得超过 {UPLOAD_BYTES >> 20} MB。", status=413
            )
        if not _own_root():
            return self._preview_error(
                request, signed, "服务器暂存目录不可用，请联系系统管理员。", status=500
            )
        token = secrets.token_hex(16)
        where = uploads_dir() / token
        where.mkdir(mode=0o700)
        _sweep()
        path = where / _safe_name(file.filename, suffix)
        path.write_bytes(data)
        meta = {"binding": _binding(signed), "at": time.time()}
        (where / "upload.json").write_text(json.dumps(meta), encoding="utf-8")
        summary, problems, diff = self._dry_run(path)
        if problems:  # nothing to confirm: the file goes now
            shutil.rmtree(where, ignore_errors=True)
        return self.c.render(
            request,
            "registry_preview.html.j2",
            signed,
            {
                "token": token,
                "name": path.name,
                "summary": summary,
                "problems": problems,
                **diff,
                "role_text": ROLE_TEXT,
            },
        )

    def _dry_run(self, path: Path) -> tuple[ImportSummary | None, list[str], dict[str, Any]]:
        """What the import would do, in a transaction rolled back."""
        with self.c.ledger.reader() as session:
            try:
                units_before, people_before = snapshot(session)
                try:
                    summary = import_registry(session, [path], self.c.rulebook)
                except RegistryError as exc:
                    return None, exc.problems, {}
                units_after, people_after = snapshot(session)
            finally:
                session.rollback()
        units_added, units_updated = changes(units_before, units_after, UNIT_FIELDS)
        people_added, people_updated = changes(people_before, people_after, PERSON_FIELDS)
        return (
            summary,
            [],
            {
                "units_added": units_added,
                "units_updated": units_updated,
                "people_added": people_added,
                "people_updated": people_updated,
            },
        )

    def _upload_of(self, form: FormData | None, signed: SignedIn) -> Path | None:
        """The waiting upload this session made under the form's token, or None."""
        value = form.get("token") if form is not None else None
        if not isinstance(value, str) or not TOKEN.fullmatch(value):
            return None
        where = uploads_dir() / value
        at = _kept_at(where)
        if at is None:
            return None
        if abs(time.time() - at) > KEEP_SECONDS:
            shutil.rmtree(where, ignore_errors=True)
            return None
        try:
            binding = json.loads((where / "upload.json").read_text(encoding="utf-8"))["binding"]
        except (OSError, ValueError, KeyError):
            return None
        if binding != _binding(signed):
            return None
        return where

    def apply(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        where = self._upload_of(form, signed)
        if where is None:
            return self._preview_error(
                request, signed, "待导入的文件已失效（已导入、已取消或超过一小时），请重新上传。"
            )
        try:
            files = [p for p in where.iterdir() if p.suffix in SUFFIXES]
            with self.c.ledger.transaction() as session:
                summary = import_registry(session, files, self.c.rulebook)
                record(
                    session,
                    at=self.c.clock(),
                    actor=signed.account.email,
                    action="registry_import",
                    source="web",
                    subject=files[0].name if files else "",
                    details={
                        "units_added": summary.units_added,
                        "units_updated": summary.units_updated,
                        "people_added": summary.people_added,
                        "people_updated": summary.people_updated,
                        "unchanged": summary.unchanged,
                    },
                )
        except RegistryError as exc:
            return self._preview_error(
                request, signed, "导入未执行，名册未作任何改动：" + "；".join(exc.problems)
            )
        finally:
            shutil.rmtree(where, ignore_errors=True)
        message = (
            f"名册已导入：新增单位 {summary.units_added} 个，更新单位 {summary.units_updated} 个，"
            f"新增人员 {summary.people_added} 名，更新人员 {summary.people_updated} 名，"
            f"未变 {summary.unchanged} 行。"
        )
        return RedirectResponse(f"/registry?done={quote(message)}", status_code=303)

    def cancel(self, request: Request, signed: SignedIn, form: FormData | None) -> Response:
        where = self._upload_of(form, signed)
        if where is not None:
            shutil.rmtree(where, ignore_errors=True)
        return RedirectResponse(f"/registry?done={quote('已取消导入。')}", status_code=303)
