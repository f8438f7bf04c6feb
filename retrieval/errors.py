"""The base of every error whose message is for the user: the CLI prints it as one line and exits 2."""

from __future__ import annotations


class AdvisorError(Exception):
    """Bad input, settings or files; the message says what is wrong and what to do, in one line."""
