"""Errors that are the user's to fix: the CLI prints them as one line, never a traceback."""

from parser.errors import UserError

__all__ = ["UserError"]
