"""`advisor report`: what the team asks, what the corpus fails to cover, how answers are rated."""

from __future__ import annotations


def register(sub, common) -> None:
    """Add this module's subcommands to the `advisor` parser (`common` holds the shared options)."""
