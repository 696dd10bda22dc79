"""Wiring: one `App` holds the configuration and the services built from it."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event

from ingest.desk import Desk
from ingest.notices import SolicitMailer, mailer_for
from ingest.outbound import RetryPolicy, Transport, deliver_due, transport_for
from ingest.pipeline import Pipeline
from ingest.replies import ReplyWriter, template_set
from ingest.settings import DeskSettings, IntakeSettings, Office
from ingest.spool import Spool
from ledger.bounces import ReturnPaths
from ledger.db import Ledger, sqlite_path
from ledger.rulebook import Rulebook, load_rulebook
from ledger.wording import TemplateSet
from mailroom.config import Config
from mailroom.errors import UserError


def migrate(url: str) -> None:
    """Create or upgrade the database to the newest schema."""
    # Imported here: Alembic is ~10 MB of memory that a running `serve` never needs.
    from alembic import command

    from migrations import alembic_config

    command.upgrade(alembic_config(url), "head")


def no_database(path: Path) -> UserError:
    return UserError(
        f"no database at {path}: create it with `mailroom init` "
        "(`mailroom init --demo` adds the sample registry)"
    )


def refuse_missing_file(ledger: Ledger, path: Path) -> None:
    """Connecting to a SQLite file that is not there raises `UserError`, not a new file."""

    def check(*_args: object) -> None:
        if not path.exists():
            raise no_database(path)

    event.listen(ledger.engine, "do_connect", check)


def office_of(config: Config) -> Office:
    return Office(
        zone=config.zone, sender=config.sender_address, sender_name=config.outbound.from_name
    )


def reply_templates(config: Config) -> TemplateSet:
    """The replies' and notices' language set, under the office's own templates."""
    return template_set(config.templates.language, config.templates.dir)


def intake_settings(config: Config, rulebook: Rulebook) -> IntakeSettings:
    security, intake = config.security, config.intake
    return IntakeSettings(
        office=office_of(config),
        mailboxes=config.mailboxes,
        tracking_prefix=intake.tracking_prefix or rulebook.tracking_prefix,
        clock_skew_minutes=intake.clock_skew_minutes,
        late_report_days=intake.late_report_days,
        time_budget_seconds=intake.time_budget_seconds,
        known_domains=security.known_domains,
        refusals_per_hour=security.refusals_per_hour,
        refusals_per_hour_per_domain=security.refusals_per_hour_per_domain,
        status_queries_per_hour=security.status_queries_per_hour,
        reply_key_secret=security.reply_key_secret,
        similar_window_days=config.similar.window_days,
        similar_threshold=config.similar.threshold,
    )


def desk_settings(config: Config) -> DeskSettings:
    security = config.security
    return DeskSettings(
        office=office_of(config),
        mailboxes=config.mailboxes,
        reply_key_secret=security.reply_key_secret,
        require_dkim=security.require_dkim,
        passphrase_attempts=security.passphrase_attempts,
        passphrase_lockout_minutes=security.passphrase_lockout_minutes,
        refusals_per_hour=security.refusals_per_hour,
    )


@dataclass
class App:
    config: Config
    ledger: Ledger
    rulebook: Rulebook
    pipeline: Pipeline
    spool: Spool
    transport: Transport
    # Each sent mail's own return path, under the reply-key secret (None: `[outbound] verp`
    # is off, and mail goes out from the sender's address).
    return_paths: ReturnPaths | None = None

    @classmethod
    def open(cls, config: Config, *, create: bool = False) -> App:
        """The services on the configured database. A SQLite file is made only when `create`
        (`mailroom init`): on a missing file, any other command says so when it first needs
        the database (its own arguments are checked first), instead of leaving an empty
        database behind."""
        rulebook = load_rulebook(config.rules.rulebook, config.base_dir)
        ledger = Ledger.from_url(config.database.url)
        path = sqlite_path(config.database.url)
        if path is not None:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            else:
                refuse_missing_file(ledger, path)
        office = office_of(config)
        replies = ReplyWriter(
            sender=office.sender,
            sender_name=office.sender_name,
            zone=office.zone,
            templates=reply_templates(config),
            required_signoff=rulebook.required_signoff,
        )
        desk = Desk(desk_settings(config), rulebook, replies)
        return cls(
            config=config,
            ledger=ledger,
            rulebook=rulebook,
            pipeline=Pipeline(intake_settings(config, rulebook), ledger, rulebook, replies, desk),
            spool=Spool(config.intake.spool_dir),
            transport=transport_for(config.outbound),
            return_paths=(
                ReturnPaths(config.sender_address, config.security.reply_key_secret)
                if config.outbound.verp
                else None
            ),
        )

    @property
    def solicit_mailer(self) -> SolicitMailer:
        config = self.config
        return mailer_for(office_of(config), config.mailboxes, reply_templates(config))

    def deliver(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        return deliver_due(
            self.ledger,
            self.transport,
            self.config.sender_address,
            retry=RetryPolicy.of(self.config.outbound),
            should_stop=should_stop,
            return_paths=self.return_paths,
        )

    def close(self) -> None:
        self.spool.close()
        self.ledger.dispose()


def settle_heap() -> None:
    """For a long-running process, once it has started: what it made at start (modules, the
    config, the rulebook, compiled statements) is moved where the garbage collector no longer
    scans it. A page that reads a decade's quarter allocates tens of thousands of rows, and
    each full collection it set off walked that whole start-up heap again: 0.1–0.2 s of a
    0.5 s standings page (`gc.freeze`, as large Python web services do)."""
    gc.collect()
    gc.freeze()
