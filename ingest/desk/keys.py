"""Reply keys and DKIM: whether a message carries the office's own mark for an item.

A key is an HMAC of the item id under the reply-key secret (`<item id>-<mac>`). A forward
carries it in the Reply-To plus-address (`desk+<key>@…`), in the subject (`[#<key>]`) and in
its Message-ID, so a reply brings it back in its recipient, its subject or its References.
Pure functions: the secret, the message and (for DKIM) a TXT lookup are handed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.compose import message_id
from parser.normalize import fold
from parser.types import DecodedMessage

log = logging.getLogger(__name__)

MAX_DKIM_SIGNATURES = 3  # signatures tried per message, topmost first (RFC 6376 §6.1)

# A TXT lookup as dkimpy calls it: (name, timeout=…) → the record's bytes, or None.
DnsTxt = Callable[..., bytes | None]

_KEY_MAC_CHARS = 20  # 100 bits of HMAC-SHA256, base32
# ASCII only: under Unicode matching \d takes ٣ (Arabic-Indic three) and [a-z] with IGNORECASE
# takes ſ and K (Kelvin), none of which a key holds.
_KEY = r"([0-9]{1,12})-([a-z2-7]{20})"
_KEY_IN_SUBJECT = re.compile(r"\[#" + _KEY + r"\]", re.IGNORECASE | re.ASCII)
# A forward's Message-ID: `<mailroom.desk.<key>.…>` (earlier versions: `<desk.<key>.…>`).
_KEY_IN_MSGID = re.compile(r"<(?:mailroom\.)?desk\." + _KEY + r"\.", re.IGNORECASE | re.ASCII)
_TRACKING_IN_SUBJECT = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{1,16}-\d{4}-\d{1,9})(?!\d)", re.ASCII)


def reply_key(secret: str, item_id: int) -> str:
    """`<item id>-<mac>`: lowercase letters and digits only, safe in an address local part."""
    mac = hmac.new(secret.encode("utf-8"), f"mailroom-desk-v1:{item_id}".encode(), hashlib.sha256)
    return f"{item_id}-{base64.b32encode(mac.digest()).decode('ascii').lower()[:_KEY_MAC_CHARS]}"


def key_item(secret: str, item_id: str, mac: str) -> int | None:
    """The item id a key names, when its MAC is right; None for a forged or foreign key."""
    if not (item_id.isascii() and item_id.isdigit()):
        return None
    expected = reply_key(secret, int(item_id)).encode("ascii")
    given = f"{item_id}-{mac.lower()}".encode("utf-8", "replace")
    return int(item_id) if hmac.compare_digest(expected, given) else None


@dataclass(frozen=True)
class FoundKeys:
    """The valid keys a message carries (item id → where) and how many were not valid."""

    items: dict[int, str] = field(default_factory=dict)
    invalid: int = 0


def find_keys(secret: str, msg: DecodedMessage, desk_address: str, rcpt: str = "") -> FoundKeys:
    """Keys in the recipient address, the subject and In-Reply-To/References."""
    local, _, domain = desk_address.lower().rpartition("@")
    in_address = re.compile(
        re.escape(local) + r"\+" + _KEY + "@" + re.escape(domain), re.IGNORECASE | re.ASCII
    )
    candidates: list[tuple[str, str, str]] = []
    for address in (rcpt, *msg.recipients):
        m = in_address.fullmatch(address.strip())
        if m:
            candidates.append(("address", m.group(1), m.group(2)))
    for m in _KEY_IN_SUBJECT.finditer(fold(msg.subject)):
        candidates.append(("subject", m.group(1), m.group(2)))
    for ref in (msg.in_reply_to, *reversed(msg.references)):
        m = _KEY_IN_MSGID.match(ref or "")
        if m:
            candidates.append(("references", m.group(1), m.group(2)))
    items: dict[int, str] = {}
    invalid = 0
    for where, item_id, mac in candidates:
        item = key_item(secret, item_id, mac)
        if item is None:
            invalid += 1
        else:
            items.setdefault(item, where)
    return FoundKeys(items, invalid)


def tracking_numbers_in(subject: str) -> set[str]:
    """The tracking numbers a subject names (`GZ-2026-000001`), upper-cased."""
    return {m.group(1).upper() for m in _TRACKING_IN_SUBJECT.finditer(subject)}


def forward_message_id(key: str, domain: str) -> str:
    """A forward's Message-ID, which carries its key back in a reply's References."""
    return message_id("desk", domain, tag=key)


def dkim_passes(raw: bytes, from_domain: str, dns_txt: DnsTxt | None) -> bool:
    """True when a DKIM signature of the From domain (or its parent) verifies, among the
    topmost `MAX_DKIM_SIGNATURES` (a verifier may limit how many it tries, RFC 6376 §6.1)."""
    if not from_domain:
        return False
    import dkim  # here: it and its DNS library cost every command 0.09 s to import

    try:
        checker = dkim.DKIM(raw, minkey=1024)
        count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
        # Each signature costs a DNS lookup that a forger can make wait: the topmost few only.
        for index in range(min(count, MAX_DKIM_SIGNATURES)):
            ok = (
                checker.verify(idx=index, dnsfunc=dns_txt) if dns_txt else checker.verify(idx=index)
            )
            signer = (checker.domain or b"").decode("ascii", "replace").lower()
            if ok and (from_domain == signer or from_domain.endswith("." + signer)):
                return True
    except dkim.DKIMException as exc:
        log.info("DKIM check failed: %s", exc)
    return False
