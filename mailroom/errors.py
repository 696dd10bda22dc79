"""Errors that are the user's to fix: the CLI prints them as one line, never a traceback."""


class UserError(Exception):
    """A mistake in input, configuration or environment that a person can correct."""
