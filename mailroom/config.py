"""Configuration: the TOML file of SPEC §7.2, validated at start into frozen dataclasses.

Every key has a default, so an empty file (or no file) is a working embedded configuration.
A bad key or value raises `ConfigError` with one line that names the key.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, TemplateSyntaxError

from ingest.replies import TEMPLATE_DIR as INGEST_TEMPLATES
from ingest.replies import template_set as ingest_templates
from ingest.settings import MAILBOX_KINDS, ImapFolder, Mailboxes, Outbound
from ledger.rulebook import TRACKING_PREFIX_MAX
from ledger.wording import LANGUAGES, SOURCE_LANGUAGE
from mailroom.errors import UserError
from reports.render import TEMPLATE_DIR as REPORT_TEMPLATES


class ConfigError(UserError):
    """A configuration file that cannot be used; the message names the key."""


# The types intake is given are its own (ingest.settings); the configuration fills them in.
MailboxesConfig = Mailboxes
OutboundConfig = Outbound
ImapConfig = ImapFolder


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///var/mailroom.db"


@dataclass(frozen=True)
class SmtpConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8025
    max_message_bytes: int = 25 * 1024 * 1024
    hostname: str = "mailroom.localhost"
    tls_cert: Path | None = None  # with tls_key: STARTTLS is offered
    tls_key: Path | None = None
    max_sessions: int = 200  # SMTP sessions open at once, from everyone (421 beyond)
    max_sessions_per_client: int = 20  # … from one client address


@dataclass(frozen=True)
class RulesConfig:
    rulebook: str = "guangzhou-2004"


@dataclass(frozen=True)
class SecurityConfig:
    reply_key_secret: str | None = None
    require_dkim: bool = False
    known_domains: tuple[str, ...] = ()
    refusals_per_hour: int = 20  # to one mailbox, its +tags folded
    refusals_per_hour_per_domain: int = 100  # to all addresses at one domain
    status_queries_per_hour: int = 10  # answers to one officer's 查询
    passphrase_attempts: int = 5  # wrong Approved: passphrases before a lockout
    passphrase_lockout_minutes: int = 15


REPORT_KINDS = ("monthly", "quarterly", "annual")


@dataclass(frozen=True)
class OfficeConfig:
    timezone: str = "Asia/Shanghai"  # of the calendar and of every time shown to people


@dataclass(frozen=True)
class ReportsConfig:
    recipients: tuple[str, ...] = ()
    schedule_hour: int = 8
    schedule_minute: int = 0
    schedule_day: int = 1
    send: tuple[str, ...] = REPORT_KINDS
    warnings: bool = True  # the rulebook's early warnings (预警) to lagging units


@dataclass(frozen=True)
class IntakeConfig:
    spool_dir: Path = Path("var/spool")
    tracking_prefix: str = ""  # "": the rulebook's `[meta] tracking_prefix`
    clock_skew_minutes: int = 15
    late_report_days: int = 3
    time_budget_seconds: int = 30  # one message's filing; over it: quarantined (too_slow)


@dataclass(frozen=True)
class SimilarConfig:
    window_days: int = 30  # other units' items of this many days are compared; 0: none
    threshold: float = 0.5  # parser.similar.overlap at which an item is named as a duplicate


@dataclass(frozen=True)
class SolicitConfig:
    remind_before_hours: int = 24


@dataclass(frozen=True)
class TemplatesConfig:
    language: str = SOURCE_LANGUAGE  # the packaged set every mail is written in
    dir: Path | None = None  # the office's own templates (ingest/, reports/), laid over it


# The wings whose templates an office may replace: `<dir>/<wing>/<file>`.
TEMPLATE_WINGS = {"ingest": INGEST_TEMPLATES, "reports": REPORT_TEMPLATES}


@dataclass(frozen=True)
class WebConfig:
    """The web console (SPEC §11): served by `mailroom serve` unless `enabled = false`."""

    enabled: bool = True
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    idle_minutes: int = 30  # a session unused this long ends
    behind_tls: bool = False  # served through HTTPS (a proxy): cookies are Secure
    metrics_token: str | None = None  # /metrics from beyond loopback with this bearer token
    login_failures: int = 10  # failed sign-ins per address or client before a pause …
    login_pause_minutes: int = 15  # … of this long


@dataclass(frozen=True)
class Config:
    office: OfficeConfig = field(default_factory=OfficeConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    mailboxes: MailboxesConfig = field(default_factory=MailboxesConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    imap: tuple[ImapConfig, ...] = ()
    rules: RulesConfig = field(default_factory=RulesConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    intake: IntakeConfig = field(default_factory=IntakeConfig)
    solicit: SolicitConfig = field(default_factory=SolicitConfig)
    templates: TemplatesConfig = field(default_factory=TemplatesConfig)
    web: WebConfig = field(default_factory=WebConfig)
    similar: SimilarConfig = field(default_factory=SimilarConfig)
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def sender_address(self) -> str:
        return self.outbound.from_address or self.mailboxes.daily

    @property
    def zone(self) -> ZoneInfo:
        """The office's time zone: its calendar, and every time shown to people."""
        return ZoneInfo(self.office.timezone)


# --- value checkers: each returns the parsed value or raises ValueError with a short reason ---


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _nonempty(value: Any) -> str:
    text = _str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _tracking_prefix(value: Any) -> str:
    """Letters A–Z (as tracking numbers and the editors' tags read them), or "" for the
    rulebook's own prefix."""
    text = _str(value).strip().upper()
    if text and not (text.isascii() and text.isalpha() and len(text) <= TRACKING_PREFIX_MAX):
        raise ValueError(f"must be 1 to {TRACKING_PREFIX_MAX} letters A-Z, or empty")
    return text


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a whole number, 0 or more")
    return value


def _port(value: Any) -> int:
    port = _positive_int(value)
    if port > 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return port


def _secret(value: Any) -> str:
    text = _nonempty(value)
    if len(text) < 16:
        raise ValueError("must be at least 16 characters (a random string; keep it secret)")
    return text


def _address(value: Any) -> str:
    text = _nonempty(value)
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or " " in text:
        raise ValueError(f"{text!r} is not an email address")
    return text


def _address_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("must be a list of email addresses")
    return tuple(_address(v) for v in value)


def _domain_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("must be a list of domain names")
    return tuple(v.strip().lower().lstrip("@") for v in value)


def _host_port(value: Any) -> tuple[str, int]:
    text = _nonempty(value)
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} must be host:port")
    try:
        return host.strip("[]"), _port(int(port))
    except ValueError:
        raise ValueError(f"{text!r} must be host:port with a numeric port") from None


_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
    re.ASCII,
)


def _helo_name(value: Any) -> str:
    """A host name (`mailroom.example.gov.cn`) or an address literal (`[192.0.2.1]`); "" for
    the machine's own name."""
    text = _str(value).strip()
    if not text:
        return ""
    if text.startswith("[") and text.endswith("]"):
        try:
            ipaddress.ip_address(text[1:-1].removeprefix("IPv6:"))
        except ValueError:
            raise ValueError(f"{text!r} is not an address literal such as [192.0.2.1]") from None
        return text
    if not _HOSTNAME.fullmatch(text):
        raise ValueError(f"{text!r} is not a host name (letters, digits, hyphens and dots)")
    return text


def _timezone(value: Any) -> str:
    text = _nonempty(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not a known time zone (e.g. Asia/Shanghai)") from None
    return text


def _mailbox_kind(value: Any) -> str:
    text = _nonempty(value)
    if text not in MAILBOX_KINDS:
        raise ValueError(f"must be one of {', '.join(MAILBOX_KINDS)}")
    return text


def _poll_seconds(value: Any) -> int:
    seconds = _positive_int(value)
    if seconds > 1500:
        # IMAP IDLE must be renewed within 29 minutes (RFC 2177); a poll renews it.
        raise ValueError("must be at most 1500 (25 minutes)")
    return seconds


def _int_from(lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"must be a whole number from {lo} to {hi}")
        return value

    return check


def _threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.3 <= value <= 1:
        raise ValueError("must be a number from 0.3 to 1")
    return float(value)


def _window_days(value: Any) -> int:
    days = _non_negative_int(value)
    if days > 366:
        raise ValueError("must be at most 366 (days)")
    return days


def _report_kinds(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(v in REPORT_KINDS for v in value):
        raise ValueError(f"must be a list of {', '.join(REPORT_KINDS)}")
    return tuple(dict.fromkeys(value))


def _language(value: Any) -> str:
    text = _nonempty(value)
    if text not in LANGUAGES:
        raise ValueError(
            f"{text!r} is not a language set Mailroom has (zh-Hans: Simplified Chinese, "
            "zh-Hant: Traditional Chinese)"
        )
    return text


def check_template_dir(folder: Path) -> None:
    """The office's template folder as `[templates] dir` needs it; ValueError says what is
    wrong: a missing folder, a file Mailroom does not use, or one that cannot be read."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    wings = ", ".join(f"{w}/" for w in TEMPLATE_WINGS)
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.name not in TEMPLATE_WINGS or not path.is_dir():
            raise ValueError(f"{path}: only the subfolders {wings} belong there")
        known = {p.name for p in (TEMPLATE_WINGS[path.name] / SOURCE_LANGUAGE).iterdir()}
        for own in sorted(path.iterdir()):
            if own.name.startswith("."):
                continue
            if own.name not in known:
                raise ValueError(
                    f"{own}: Mailroom has no template of that name in {path.name}/ "
                    f"(it has {', '.join(sorted(known))})"
                )
            try:
                text = own.read_text(encoding="utf-8")
                if own.suffix == ".toml":
                    tomllib.loads(text)
                else:
                    Environment().parse(text)
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"{own} cannot be read: {exc}") from None
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{own} is not valid TOML: {exc}") from None
            except TemplateSyntaxError as exc:
                raise ValueError(
                    f"{own} line {exc.lineno} is not a valid template: {exc.message}"
                ) from None


def _db_url(value: Any) -> str:
    text = _nonempty(value)
    if not text.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return text


# Environment variables that may carry secrets (and the database URL) instead of the file.
ENV_OVERRIDES = {
    "MAILROOM_DATABASE_URL": ("database", "url"),
    "MAILROOM_OUTBOUND_USERNAME": ("outbound", "username"),
    "MAILROOM_OUTBOUND_PASSWORD": ("outbound", "password"),
    "MAILROOM_REPLY_KEY_SECRET": ("security", "reply_key_secret"),
    "MAILROOM_METRICS_TOKEN": ("web", "metrics_token"),
}

Checker = Callable[[Any], Any]

_SECTIONS: dict[str, dict[str, Checker]] = {
    "office": {"timezone": _timezone},
    "database": {"url": _db_url},
    "smtp": {
        "listen": _host_port,
        "max_message_bytes": _positive_int,
        "hostname": _nonempty,
        "tls_cert": _nonempty,
        "tls_key": _nonempty,
        "max_sessions": _positive_int,
        "max_sessions_per_client": _positive_int,
    },
    "mailboxes": {
        "daily": _address,
        "solicited": _address,
        "desk": _address,
        "desk_forward": _address_list,
        "postmaster": _str,
    },
    "outbound": {
        "relay": _host_port,
        "from": _address,
        "from_name": _str,
        "starttls": _bool,
        "username": _str,
        "password": _str,
        "ca_file": _nonempty,
        "helo_name": _helo_name,
        "verp": _bool,
        "retry_seconds": _positive_int,
        "max_attempts": _positive_int,
        "maildir": _nonempty,
    },
    "rules": {"rulebook": _nonempty},
    "security": {
        "reply_key_secret": _secret,
        "require_dkim": _bool,
        "known_domains": _domain_list,
        "refusals_per_hour": _non_negative_int,
        "refusals_per_hour_per_domain": _non_negative_int,
        "status_queries_per_hour": _non_negative_int,
        "passphrase_attempts": _positive_int,
        "passphrase_lockout_minutes": _positive_int,
    },
    "reports": {
        "timezone": _timezone,  # where the office's zone was set before [office]: still read
        "recipients": _address_list,
        "schedule_hour": _int_from(0, 23),
        "schedule_minute": _int_from(0, 59),
        "schedule_day": _int_from(1, 28),
        "send": _report_kinds,
        "warnings": _bool,
    },
    "web": {
        "enabled": _bool,
        "listen": _host_port,
        "idle_minutes": _positive_int,
        "behind_tls": _bool,
        "metrics_token": _secret,
        "login_failures": _positive_int,
        "login_pause_minutes": _positive_int,
    },
    "intake": {
        "spool_dir": _nonempty,
        "tracking_prefix": _tracking_prefix,
        "clock_skew_minutes": _non_negative_int,
        "late_report_days": _non_negative_int,
        "time_budget_seconds": _positive_int,
    },
    "solicit": {"remind_before_hours": _positive_int},
    "templates": {"language": _language, "dir": _nonempty},
    "similar": {"window_days": _window_days, "threshold": _threshold},
}

_IMAP_KEYS: dict[str, Checker] = {
    "host": _nonempty,
    "port": _port,
    "ssl": _bool,
    "username": _nonempty,
    "password": _str,
    "folder": _nonempty,
    "processed_folder": _str,
    "mailbox": _mailbox_kind,
    "poll_seconds": _poll_seconds,
}


def _checked(section: str, raw: Mapping[str, Any], keys: Mapping[str, Checker]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"[{section}] {key}"
        if key not in keys:
            known = ", ".join(sorted(keys))
            raise ConfigError(f"config: unknown key {where} (known keys: {known})")
        try:
            out[key] = keys[key](value)
        except ValueError as exc:
            raise ConfigError(f"config: {where} {exc}") from None
    return out


def _resolve(base: Path, value: str | Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


def _sqlite_url_resolved(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:":
            return prefix + str(_resolve(base, rest))
    return url


def parse_config(
    data: Mapping[str, Any], base_dir: Path, environ: Mapping[str, str] | None = None
) -> Config:
    """Validate a parsed TOML document (plus environment secrets) into a `Config`."""
    environ = os.environ if environ is None else environ
    merged: dict[str, dict[str, Any]] = {}
    imap_raw: Mapping[str, Any] = {}
    for section, body in data.items():
        if section == "imap":
            if not isinstance(body, dict):
                raise ConfigError("config: [imap] must hold one table per polled folder")
            imap_raw = body
            continue
        if section not in _SECTIONS:
            known = ", ".join(sorted([*_SECTIONS, "imap"]))
            raise ConfigError(f"config: unknown section [{section}] (known sections: {known})")
        if not isinstance(body, dict):
            raise ConfigError(f"config: [{section}] must be a table")
        merged[section] = dict(body)
    for var, (section, key) in ENV_OVERRIDES.items():
        if environ.get(var):
            merged.setdefault(section, {})[key] = environ[var]
    checked = {s: _checked(s, merged.get(s, {}), keys) for s, keys in _SECTIONS.items()}

    db = checked["database"]
    database = DatabaseConfig(url=_sqlite_url_resolved(db.get("url", DatabaseConfig.url), base_dir))

    s = checked["smtp"]
    smtp = SmtpConfig()
    if "listen" in s:
        smtp = replace(smtp, listen_host=s["listen"][0], listen_port=s["listen"][1])
    if ("tls_cert" in s) != ("tls_key" in s):
        raise ConfigError("config: [smtp] tls_cert and tls_key must be set together")
    for key in ("tls_cert", "tls_key"):
        if key in s:
            s[key] = _resolve(base_dir, s[key])
    smtp = replace(smtp, **{k: v for k, v in s.items() if k != "listen"})

    mailboxes = replace(MailboxesConfig(), **checked["mailboxes"])
    if len(set(mailboxes.all_addresses())) != len(MAILBOX_KINDS):
        raise ConfigError("config: [mailboxes] daily, solicited and desk must be three addresses")

    t = checked["templates"]
    templates = TemplatesConfig(language=t.get("language", TemplatesConfig.language))
    if "dir" in t:
        own = _resolve(base_dir, t["dir"])
        templates = replace(templates, dir=own)
        try:
            check_template_dir(own)
        except ValueError as exc:
            raise ConfigError(f"config: [templates] dir {exc}") from None

    o = checked["outbound"]
    # The office's name in its mail; unset, the language set's own words for it.
    default_name = ingest_templates(templates.language, templates.dir).words()(
        OutboundConfig.from_name
    )
    outbound = OutboundConfig(
        relay_host=o["relay"][0] if "relay" in o else None,
        relay_port=o["relay"][1] if "relay" in o else 25,
        from_address=o.get("from", ""),
        from_name=o.get("from_name", default_name),
        starttls=o.get("starttls", False),
        username=o.get("username") or None,
        password=o.get("password") or None,
        ca_file=_resolve(base_dir, o["ca_file"]) if "ca_file" in o else None,
        helo_name=o.get("helo_name", OutboundConfig.helo_name),
        verp=o.get("verp", OutboundConfig.verp),
        retry_seconds=o.get("retry_seconds", OutboundConfig.retry_seconds),
        max_attempts=o.get("max_attempts", OutboundConfig.max_attempts),
        maildir=_resolve(base_dir, o.get("maildir", OutboundConfig.maildir)),
    )

    imaps = []
    for name, body in imap_raw.items():
        if not isinstance(body, dict):
            raise ConfigError(f"config: [imap.{name}] must be a table")
        body = dict(body)
        secret = environ.get(f"MAILROOM_IMAP_{name.upper().replace('-', '_')}_PASSWORD")
        if secret:
            body["password"] = secret
        values = _checked(f"imap.{name}", body, _IMAP_KEYS)
        for required in ("host", "username"):
            if required not in values:
                raise ConfigError(f"config: [imap.{name}] {required} is required")
        if values.get("processed_folder") == "":
            values["processed_folder"] = None
        imaps.append(ImapConfig(name=name, **values))

    office = dict(checked["office"])
    reports = dict(checked["reports"])
    if "timezone" in reports:
        legacy = reports.pop("timezone")
        if office.setdefault("timezone", legacy) != legacy:
            raise ConfigError(
                "config: [office] timezone and [reports] timezone differ (set the zone in "
                "[office] only)"
            )

    w = dict(checked["web"])
    web = WebConfig()
    if "listen" in w:
        host, port = w.pop("listen")
        web = replace(web, listen_host=host, listen_port=port)
    web = replace(web, **w)

    i = checked["intake"]
    intake = IntakeConfig(
        spool_dir=_resolve(base_dir, i.get("spool_dir", IntakeConfig.spool_dir)),
        **{k: v for k, v in i.items() if k != "spool_dir"},
    )
    return Config(
        office=OfficeConfig(**office),
        database=database,
        smtp=smtp,
        mailboxes=mailboxes,
        outbound=outbound,
        imap=tuple(imaps),
        rules=RulesConfig(**checked["rules"]),
        security=replace(SecurityConfig(), **checked["security"]),
        reports=replace(ReportsConfig(), **reports),
        intake=intake,
        solicit=SolicitConfig(**checked["solicit"]),
        templates=templates,
        web=web,
        similar=SimilarConfig(**checked["similar"]),
        base_dir=base_dir,
    )


def config_path(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """`--config`, then `$MAILROOM_CONFIG`, then `./mailroom.toml` if it exists."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get("MAILROOM_CONFIG"):
        return Path(environ["MAILROOM_CONFIG"])
    default = Path("mailroom.toml")
    return default if default.exists() else None


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file; with no file, the embedded defaults."""
    if path is None:
        return parse_config({}, Path.cwd(), environ)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config: file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: cannot read {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid TOML: {exc}") from None
    return parse_config(data, path.resolve().parent, environ)
