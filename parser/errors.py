"""The error a person can correct: every layer raises it (or a kind of it) for a mistake in
input, configuration or environment; the CLI prints it as one line, never a traceback. It
lives on the ground floor so that every floor above may raise it."""


class UserError(Exception):
    """A mistake in input, configuration or environment that a person can correct."""
