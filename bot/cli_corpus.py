"""`advisor corpus add|list|remove`: manage the documents the advisor answers from."""

from __future__ import annotations


def register(sub, common) -> None:
    """Add this module's subcommands to the `advisor` parser (`common` holds the shared options)."""
