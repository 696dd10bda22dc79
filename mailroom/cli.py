"""The `mailroom` command (SPEC §7.1). User mistakes: one line on stderr, non-zero exit.

Each group of commands lives in `mailroom.commands`, registers its own subcommands and sets
the function that runs them; this module reads the config, opens the app and runs it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError, ProgrammingError

from mailroom.app import App
from mailroom.commands import desk, intake, report, scoring, setup, solicit, web
from mailroom.commands.output import shorten
from mailroom.config import config_path, load_config
from mailroom.errors import UserError

__all__ = ["main", "shorten"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mailroom", description="Email intake, ledger and reports for 政务信息."
    )
    p.add_argument("--config", help="config file (default: $MAILROOM_CONFIG, then ./mailroom.toml)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (setup, intake, scoring, solicit, report, desk, web):
        group.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app: App | None = None
    try:
        config = load_config(config_path(args.config))
        app = App.open(config, create=args.command == "init")
        code: int = args.run(app, args)
        sys.stdout.flush()  # here, so that a reader gone away is seen below, not at exit
        return code
    except UserError as exc:
        print(f"mailroom: {exc}", file=sys.stderr)
        return 2
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        hint = "" if args.command == "init" else " (has `mailroom init` been run?)"
        print(f"mailroom: database error: {reason}{hint}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`mailroom standings | head -3`): stop quietly, as `cat` would.
        # Python would complain again when flushing stdout at exit, so point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # the shell's status for a process ended by SIGPIPE
    finally:
        if app is not None:
            app.close()


if __name__ == "__main__":
    sys.exit(main())
