"""`python -m mailroom.filer`: the filing process's program (see `ingest.filer`).

serve starts it with its configuration on standard input; it opens the services that
configuration describes and hands them to `ingest.filer.run_filing`.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import sys

from ingest.filer import Filer, die_with_parent, run_filing
from mailroom.config import Config
from mailroom.stacks import write_stacks_on_sigusr1


def filer_for(config: Config) -> Filer:
    """serve's handle on a filing process for this configuration."""
    return Filer([sys.executable, "-m", "mailroom.filer"], pickle.dumps(config))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mailroom.filer", description=__doc__)
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--wake-fd", type=int, required=True)
    p.add_argument("--report-fd", type=int, required=True)
    p.add_argument("--log-level", type=int, default=logging.INFO)
    args = p.parse_args(argv)
    die_with_parent(args.parent)
    write_stacks_on_sigusr1()  # as serve: stacks to the log
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s[filer]: %(message)s"
    )
    logging.getLogger("imapclient").setLevel(logging.WARNING)
    config = pickle.load(sys.stdin.buffer)  # from the parent, which read and checked it
    if not isinstance(config, Config):
        raise SystemExit("mailroom.filer: no configuration on standard input")
    from mailroom.app import App

    app = App.open(config)
    try:
        run_filing(
            app.spool,
            app.pipeline,
            config.imap,
            config.smtp.max_message_bytes,
            args.wake_fd,
            args.report_fd,
        )
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
