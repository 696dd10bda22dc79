"""Bounces of the mail we send: which outbox row a bounce is about, and who keeps bouncing.

Every mail leaves with a return path of its own (VERP): the office's sender address with a
tag that names the outbox row and an HMAC of it under the reply-key secret,
`inf+bounce-<row id>-<mac>@…`. A bounce is sent to that address, so it names its row, and
only the office can make such an address: a stranger cannot mark rows bounced. A bounce that
comes back elsewhere (a relay that rewrote the return path, a mail system that answers the
From address) is matched by the returned message's Message-ID, and then only when the report
names the row's own recipient as failed.

`bouncing_addresses` lists the addresses whose latest mail bounced, for `mailroom registry
check`, with the registered people they belong to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.editors import REPLY_KEY_SECRET, stored_secret
from ledger.models import OutboundMessage, Person, Unit
from ledger.outbox import mark_bounced
from parser.bounce import Bounce, RecipientStatus

_MAC_CHARS = 16  # 80 bits of HMAC-SHA256, base32: the local part stays within 64 characters
_TAG = "bounce"
# The rows a bounce may mark: sent ones, and ones that bounced before (a second report).
MARKABLE = ("sent", "bounced")


def _mac(secret: str, row_id: int) -> str:
    digest = hmac.new(
        secret.encode("utf-8"), f"mailroom-bounce-v1:{row_id}".encode(), hashlib.sha256
    ).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_MAC_CHARS]


def return_path(secret: str, sender: str, row_id: int) -> str:
    """`<local>+bounce-<row id>-<mac>@<domain>` of the office's sender address."""
    local, _, domain = sender.rpartition("@")
    return f"{local}+{_TAG}-{row_id}-{_mac(secret, row_id)}@{domain}"


def row_of_return_path(secret: str, sender: str, address: str) -> int | None:
    """The outbox row a return path names, when its MAC is right; None for any other address."""
    local, _, domain = sender.lower().rpartition("@")
    tag = rf"\+{_TAG}-([0-9]{{1,12}})-([a-z2-7]{{{_MAC_CHARS}}})@"
    pattern = re.compile(re.escape(local) + tag + re.escape(domain), re.IGNORECASE | re.ASCII)
    m = pattern.fullmatch(address.strip().strip("<>")[:320])
    if m is None:
        return None
    row_id = int(m.group(1))
    expected = _mac(secret, row_id).encode("ascii")
    return row_id if hmac.compare_digest(expected, m.group(2).lower().encode("ascii")) else None


class ReturnPaths:
    """Return paths of the office's sender, under the configured reply-key secret or, when the
    configuration sets none, the one kept in the database (read once, then remembered)."""

    def __init__(self, sender: str, secret: str | None = None) -> None:
        self.sender = sender
        self._secret = secret

    def secret(self, session: Session, now: datetime) -> str:
        if self._secret is None:
            self._secret = stored_secret(session, REPLY_KEY_SECRET, now)
        return self._secret

    def of(self, session: Session, row_id: int, now: datetime) -> str:
        return return_path(self.secret(session, now), self.sender, row_id)

    def row_named(self, session: Session, addresses: Iterable[str], now: datetime) -> int | None:
        """The row the first of `addresses` that is one of our return paths names."""
        candidates = [a for a in addresses if f"+{_TAG}-" in a.lower()]
        if not candidates:
            return None
        secret = self.secret(session, now)
        for address in candidates:
            row_id = row_of_return_path(secret, self.sender, address)
            if row_id is not None:
                return row_id
        return None


@dataclass(frozen=True)
class Matched:
    """What became of a bounce: the row it is about (if any), and whether it was marked."""

    row_id: int | None
    how: str  # "return_path", "message_id", or "" when it is about no row of ours
    marked: bool
    recipient: str = ""
    reason: str = ""
    why_not: str = ""  # when not marked: "no_row", "not_failed", "state_<state>"

    def details(self) -> dict[str, object]:
        """What the intake log keeps of it."""
        out: dict[str, object] = {"bounce_of": self.row_id} if self.row_id is not None else {}
        if self.how:
            out["bounce_matched_by"] = self.how
        if self.marked:
            out["bounce_recipient"], out["bounce_reason"] = self.recipient, self.reason
        elif self.why_not:
            out["bounce_not_marked"] = self.why_not
        return out


def record_bounce(
    session: Session, bounce: Bounce, named_row: int | None, now: datetime
) -> Matched:
    """Mark the outbox row a bounce is about `bounced`, with its reason.

    `named_row` is the row our return path named (its MAC checked), or None: then the row is
    the one with the returned message's Message-ID whose recipient the report names as failed.
    A row is marked only when the bounce says delivery failed for good (not a delay).
    """
    if named_row is not None:
        row = session.get(OutboundMessage, named_row)
        how = "return_path"
        failure = _failure_for(row, bounce.failures, exact=False) if row is not None else None
    else:
        row, failure = _by_message_id(session, bounce)
        how = "message_id" if row is not None else ""
    if row is None:
        return Matched(None, "", False, why_not="no_row")
    if failure is not None:
        recipient, reason = failure.recipient, failure.reason or "bounced"
    elif how == "return_path" and bounce.text_permanent:
        # A plain bounce to a row's own return path that names a permanent failure: about that
        # row and its recipient.
        recipient, reason = row.to_address.lower(), bounce.text_reason
    else:
        return Matched(row.id, how, False, why_not="not_failed")
    if row.state not in MARKABLE:
        return Matched(row.id, how, False, why_not=f"state_{row.state}")
    mark_bounced(row, reason, now)
    return Matched(row.id, how, True, recipient, row.last_error or "")


def _failure_for(
    row: OutboundMessage, failures: tuple[RecipientStatus, ...], exact: bool
) -> RecipientStatus | None:
    """The failure that is the row's recipient's; with `exact` only that, else the first one
    (a forward at the far end may have failed under another address)."""
    to = row.to_address.strip().lower()
    for failure in failures:
        if to in (failure.recipient, failure.original):
            return failure
    return None if exact or not failures else failures[0]


def _by_message_id(
    session: Session, bounce: Bounce
) -> tuple[OutboundMessage | None, RecipientStatus | None]:
    """The row with the returned Message-ID that the report names as failed: Message-ID and
    recipient must both agree, as a bounce not sent to our return path proves nothing else."""
    if not bounce.message_id or not bounce.failures:
        return None, None
    rows = session.scalars(
        select(OutboundMessage)
        .where(OutboundMessage.message_id == bounce.message_id)
        .order_by(OutboundMessage.id)
    ).all()
    for row in rows:
        failure = _failure_for(row, bounce.failures, exact=True)
        if failure is not None:
            return row, failure
    return None, None


@dataclass(frozen=True)
class Owner:
    """A registered person with the address: name, role and unit."""

    name: str
    role: str
    unit_code: str
    unit_name: str


@dataclass(frozen=True)
class BouncingAddress:
    """An address whose latest mail bounced."""

    address: str
    bounces: int  # mails to it that bounced since the last one that did not
    last_bounced_at: datetime
    last_reason: str
    last_kind: str  # receipt, refusal, desk, notice, report …
    owners: tuple[Owner, ...]  # who in the registry has it (none: not in the registry)


def bouncing_addresses(session: Session) -> list[BouncingAddress]:
    """Every address whose latest mail (sent or bounced) bounced, in address order."""
    address = func.lower(OutboundMessage.to_address)
    bounced = select(address).where(OutboundMessage.state == "bounced").distinct()
    rows = session.execute(
        select(address, OutboundMessage)
        .where(address.in_(bounced), OutboundMessage.state.in_(MARKABLE))
        .order_by(address, OutboundMessage.id.desc())
    ).all()
    latest: dict[str, list[OutboundMessage]] = {}
    closed: set[str] = set()
    for to, row in rows:
        if to in closed:
            continue
        if row.state != "bounced":  # a later mail went through: the run of bounces ends here
            closed.add(to)
            continue
        latest.setdefault(to, []).append(row)
    owners = _owners(session, list(latest))
    out = []
    for to, run in sorted(latest.items()):
        last = run[0]
        assert last.bounced_at is not None
        out.append(
            BouncingAddress(
                address=to,
                bounces=len(run),
                last_bounced_at=last.bounced_at,
                last_reason=last.last_error or "",
                last_kind=last.kind,
                owners=owners.get(to, ()),
            )
        )
    return out


def _owners(session: Session, addresses: list[str]) -> dict[str, tuple[Owner, ...]]:
    if not addresses:
        return {}
    email = func.lower(Person.email)
    found: dict[str, list[Owner]] = {}
    for to, person, unit in session.execute(
        select(email, Person, Unit)
        .join(Unit, Person.unit_id == Unit.id)
        .where(email.in_(addresses))
        .order_by(Person.id)
    ):
        found.setdefault(to, []).append(Owner(person.name, person.role, unit.code, unit.name))
    return {to: tuple(people) for to, people in found.items()}
