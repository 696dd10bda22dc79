"""The `mailroom` subcommands, by group. Each module's `add_parsers` registers its commands and
the function that runs each (`run`); the commands' queries live in the ledger."""
