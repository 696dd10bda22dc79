"""What intake needs to know of the office, in types of its own.

The composition root (`mailroom.app`) reads the configuration file and builds these, the way
it builds `reports.deliver.ReportSettings` for the reports: nothing in `ingest/` reads the
whole configuration, and none of it imports the root.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from ledger.wording import N_

MAILBOX_KINDS = ("daily", "solicited", "desk")


@dataclass(frozen=True)
class Mailboxes:
    """The addresses Mailroom answers for (SPEC §3.1)."""

    daily: str = "inf@mailroom.test"
    solicited: str = "sfxx@mailroom.test"
    desk: str = "desk@mailroom.test"
    desk_forward: tuple[str, ...] = ()
    postmaster: str = ""  # where mail to postmaster goes (RFC 5321 §4.5.1); "" keeps it

    def kind_of(self, address: str) -> str | None:
        """The mailbox kind an envelope recipient belongs to, plus-addressing included:
        `daily`, `solicited`, `desk`, or `postmaster` (RFC 5321 §4.5.1: `postmaster`
        alone, or at the domain of any mailbox here), else None."""
        text = address.strip().lower()
        local, at, domain = text.rpartition("@")
        if not at:
            local, domain = text, ""
        if not local:
            return None
        base = local.split("+", 1)[0]
        domains = set()
        for kind in MAILBOX_KINDS:
            m_local, _, m_domain = getattr(self, kind).lower().rpartition("@")
            if base == m_local and domain == m_domain:
                return kind
            domains.add(m_domain)
        if base == "postmaster" and (not at or domain in domains):
            return "postmaster"
        return None

    def all_addresses(self) -> tuple[str, ...]:
        return tuple(getattr(self, kind).lower() for kind in MAILBOX_KINDS)


@dataclass(frozen=True)
class Office:
    """Who the office is in the mail it sends, and in which time zone it lives."""

    zone: tzinfo
    sender: str  # the address of its replies (the daily mailbox unless set)
    sender_name: str  # their display name


@dataclass(frozen=True)
class Outbound:
    """How outgoing mail leaves: a relay, or files in a local Maildir."""

    relay_host: str | None = None
    relay_port: int = 25
    from_address: str = ""
    from_name: str = N_("政务信息处")  # unset: in the office's language set
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None  # CA bundle that signed the relay's certificate (else system's)
    helo_name: str = ""  # the name Mailroom greets the relay with ("": the machine's)
    verp: bool = True  # each mail's own return path (`ledger.bounces`); False: the sender's
    retry_seconds: int = 60  # first retry after this; doubling, at most 6 hours
    max_attempts: int = 10
    maildir: Path = Path("var/outbox")


@dataclass(frozen=True)
class ImapFolder:
    """One polled IMAP folder (`[imap.<name>]`)."""

    name: str
    host: str
    port: int = 993
    ssl: bool = True
    username: str = ""
    password: str | None = None
    folder: str = "INBOX"
    processed_folder: str | None = "Processed"
    mailbox: str = "daily"
    poll_seconds: int = 60  # look again at least this often (IDLE wakes sooner)

    @property
    def account(self) -> str:
        """The mailbox's identity in the ledger (`user@host`), whatever the table is called."""
        return f"{self.username}@{self.host.lower()}"


@dataclass(frozen=True)
class IntakeSettings:
    """What judging and filing a message needs."""

    office: Office
    mailboxes: Mailboxes
    tracking_prefix: str = "GZ"
    clock_skew_minutes: int = 15
    late_report_days: int = 3
    time_budget_seconds: int = 30
    known_domains: tuple[str, ...] = ()
    refusals_per_hour: int = 20
    refusals_per_hour_per_domain: int = 100
    status_queries_per_hour: int = 10  # answers to one officer's 查询
    reply_key_secret: str | None = None  # also signs return paths (None: the database's)
    # Other units' near-identical items (撒网式报送): compared over this many days (0: never),
    # named to the editors from this similarity on (`parser.similar.overlap`).
    similar_window_days: int = 30
    similar_threshold: float = 0.5


@dataclass(frozen=True)
class DeskSettings:
    """What the editors' desk needs: its address, its secret, whom it trusts and how."""

    office: Office
    mailboxes: Mailboxes
    reply_key_secret: str | None = None
    require_dkim: bool = False
    passphrase_attempts: int = 5
    passphrase_lockout_minutes: int = 15
    refusals_per_hour: int = 20  # refusal confirmations to one editor
