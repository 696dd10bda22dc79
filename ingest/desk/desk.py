"""The desk's two doors: `forward` (a filed item to the editors) and `handle` (an editor's
message: who may command, each line through the verb table, what goes back)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from ingest.desk.keys import DnsTxt, reply_key
from ingest.desk.mail import DeskMail
from ingest.desk.reply import LineOutcome, Reply
from ingest.desk.scoring import DeskScoring
from ingest.desk.trust import Trust, Untrusted, admit
from ingest.desk.verbs import apply_line
from ingest.replies import ReplyWriter
from ingest.settings import DeskSettings
from ledger.editors import REPLY_KEY_SECRET, stored_secret
from ledger.models import Intake, Submission, Unit
from ledger.rulebook import Rulebook
from ledger.similar import Match
from parser.commands import CommandLine, Script, parse_commands
from parser.types import DecodedMessage, Problem


class _GroupRefused(Exception):
    """Raised inside a savepoint so a reply that does not apply whole rolls back."""


class Desk:
    """Long-lived and shared by every desk mailbox: it holds settings only. What belongs to
    one message lives in that message's `Reply`."""

    def __init__(
        self,
        settings: DeskSettings,
        rulebook: Rulebook,
        replies: ReplyWriter,
        dns_txt: DnsTxt | None = None,
    ) -> None:
        self.settings = settings
        self.dns_txt = dns_txt
        self.scoring = DeskScoring(rulebook, settings.office.zone, replies.words)
        self.mail = DeskMail(settings, rulebook, replies, self.scoring)
        self._secret: str | None = settings.reply_key_secret

    def secret(self, session: Session, now: datetime) -> str:
        if self._secret is None:
            self._secret = stored_secret(session, REPLY_KEY_SECRET, now)
        return self._secret

    def forward(
        self,
        session: Session,
        item: Submission,
        unit: Unit,
        raw: bytes,
        warnings: tuple[Problem, ...],
        now: datetime,
        similar: tuple[Match, ...] = (),
    ) -> int:
        """Queue the desk forward of a filed item to every desk recipient; returns how many.

        `warnings` are the receipt's, with their figures (the item row keeps only their codes);
        `similar` the other units' near-identical items found as it was filed.
        """
        key = reply_key(self.secret(session, now), item.id)
        return self.mail.forward(session, item, unit, raw, warnings, key, now, similar)

    def handle(
        self,
        session: Session,
        intake: Intake,
        msg: DecodedMessage,
        raw: bytes,
        rcpt: str,
        now: datetime,
    ) -> None:
        """Judge and apply one message to the desk; sets the intake's state and reasons."""
        script = parse_commands(msg.body_text, self.scoring.bonus_verbs())
        intake.details = {**(intake.details or {}), "command_lines": len(script.lines)}
        try:
            trust = admit(
                session,
                self.settings,
                lambda: self.secret(session, now),
                msg,
                raw,
                rcpt,
                script,
                now,
                self.dns_txt,
            )
        except Untrusted as refused:
            intake.state, intake.reasons = "command_refused", [refused.code]
            if refused.editor is not None:
                self.mail.confirm(
                    session, intake, msg, refused.editor, [], script, now, problem=refused.code
                )
            return
        source = f"intake:{intake.id} {msg.message_id or ''}".strip()
        reply = Reply(session, intake.id, trust, source, now)
        outcomes = self._apply(reply, script)
        self.mail.notices(reply)
        applied = [o for o in outcomes if o.applied]
        intake.state = "command" if applied else "command_refused"
        intake.reasons = sorted({o.code for o in outcomes if o.code})
        intake.details = {
            **intake.details,
            "applied": len(applied),
            "refused": len(outcomes) - len(applied),
        }
        self.mail.confirm(session, intake, msg, trust.editor, outcomes, script, now)

    def act(self, session: Session, editor: str, line: str, now: datetime) -> LineOutcome:
        """One batch line (`GZ-2026-000123 采用 穗府信息 标题`) from an editor signed in
        elsewhere (the web console): applied as a line of a reply to the desk would be, with the
        same audit (`editor` is the actor) and the same notice to the unit; no confirmation mail.
        """
        script = parse_commands(line, self.scoring.bonus_verbs())
        batch = [ln for ln in script.lines if ln.tracking_no is not None]
        if len(batch) != 1 or script.errors:
            error = script.errors[0].error if script.errors else "not_a_command"
            return LineOutcome(CommandLine(1, line, error=error), code=error)
        reply = Reply(session, None, Trust(editor, None, trusted=True), f"web:{editor}", now)
        (outcome,) = self._apply(reply, replace(script, lines=tuple(batch)))
        self.mail.notices(reply)
        return outcome

    def _apply(self, reply: Reply, script: Script) -> list[LineOutcome]:
        """The reply's own lines as one group (whole or not at all), then each batch line."""
        reply_group = [ln for ln in script.lines if ln.tracking_no is None and not ln.header]
        groups = ([reply_group] if reply_group else []) + [
            [ln] for ln in script.lines if ln.tracking_no is not None
        ]
        outcomes: list[LineOutcome] = []
        for group in groups:
            results = [LineOutcome(ln, tracking_no=ln.tracking_no) for ln in group]
            checkpoint = reply.checkpoint()
            try:
                with reply.session.begin_nested():
                    for result in results:
                        apply_line(self.scoring, reply, result)
                    if any(not r.applied for r in results):
                        raise _GroupRefused
            except _GroupRefused:
                for r in results:
                    if r.applied:
                        r.applied, r.code = False, "reply_not_applied_whole"
                reply.roll_back(checkpoint)
            outcomes.extend(results)
        return outcomes
