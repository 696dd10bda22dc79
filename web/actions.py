"""The console's actions on an item: 采用, 不采用, 退回, 撤销, through the desk exactly as an
editor's reply to the desk applies them (the same ledger functions, the same audit with the web
user as the actor, the same notice to the unit). Editors and staff only; every POST carries the
session's CSRF token (checked in `web.app`)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ledger.accounts import SignedIn
from web.labels import reason_text

if TYPE_CHECKING:
    from web.app import Console

# A form's verb → the desk's words (SPEC §4.2).
VERBS = {"adopt": "采用", "decline": "不采用", "return": "退回", "undo": "撤销"}
MAX_WORDS = 200  # characters of publication, grade or reason taken from a form
DONE_TEXT = {
    "adopt": "已登记采用",
    "decline": "已登记不采用",
    "return": "已退回修改",
    "undo": "已撤销",
}


def routes(console: Console) -> list[Route]:
    from web.app import ACT

    return [
        Route(
            "/items/{tracking_no}/act",
            console.route(ACT, lambda r, s, f: act(console, r, s, f)),
            methods=["POST"],
        ),
    ]


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    text = value if isinstance(value, str) else ""
    return " ".join(text.split())[:MAX_WORDS]


def act(console: Console, request: Request, signed: SignedIn, form: FormData | None) -> Response:
    assert form is not None
    tracking_no = request.path_params["tracking_no"][:40]
    verb = _field(form, "verb")
    if verb not in VERBS:
        return _back(tracking_no, "未知的操作")
    words = [tracking_no, VERBS[verb]]
    if verb == "adopt":
        words += [_field(form, "publication"), _field(form, "grade")]
    elif verb in ("decline", "return"):
        words.append(_field(form, "reason"))
    line = " ".join(w for w in words if w)
    applied, code = console.actions.desk(signed.account.email, line)
    return _back(tracking_no, DONE_TEXT[verb] if applied else f"未执行：{reason_text(code)}")


def _back(tracking_no: str, message: str) -> Response:
    return RedirectResponse(f"/items/{quote(tracking_no)}?done={quote(message)}", status_code=303)
