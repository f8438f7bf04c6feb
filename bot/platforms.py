"""The platforms `advisor serve` runs on: a name -> a loader of its `run(settings, args)`, imported when chosen."""

from __future__ import annotations

from typing import Callable

Runner = Callable[..., int]


def _slack() -> Runner:
    from bot.slack.serve import run  # slack-bolt and aiohttp load only for `serve slack`

    return run


def _discord() -> Runner:
    from bot.discord.serve import run  # discord.py loads only for `serve discord`

    return run


def _console() -> Runner:
    from bot.console.session import run

    return run


PLATFORMS: dict[str, Callable[[], Runner]] = {"slack": _slack, "discord": _discord, "console": _console}


def runner(name: str) -> Runner:
    """The `run(settings, args)` of platform `name` (one of PLATFORMS)."""
    return PLATFORMS[name]()
