"""Errors every layer of lait may raise; the bottom layer, so it imports nothing of lait."""


class UsageError(Exception):
    """A mistake in how lait was called (bad path, bad option): the CLI shows it as one line, exit 2."""
