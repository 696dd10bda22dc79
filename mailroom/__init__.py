"""Mailroom's composition root: configuration, the `mailroom` CLI and the wiring of services."""
