"""The Discord settings: the bot token, the guild to sync commands to, and the shard, from the environment."""

from __future__ import annotations

import os

from bot.settings import SettingsError, require_env

TOKEN_HINT = ("Create a bot in the Discord developer portal (Bot > Reset Token) and export DISCORD_TOKEN; "
              "see deploy/discord/README.md.")


def settings_from_env() -> tuple[str, int | None]:
    """DISCORD_TOKEN (required) and DISCORD_GUILD_ID (optional), or a SettingsError saying what to set."""
    token = require_env("DISCORD_TOKEN", hint=TOKEN_HINT)
    if token.count(".") != 2:
        raise SettingsError("DISCORD_TOKEN does not look like a bot token (three parts separated by dots); "
                            "copy it from Bot > Reset Token, not the application id or client secret.")
    guild = os.environ.get("DISCORD_GUILD_ID", "").strip()
    if guild and not guild.isdigit():
        raise SettingsError("DISCORD_GUILD_ID should be a server id (digits: right-click the server > Copy Server ID), "
                            "or unset it to sync the commands globally.")
    return token, int(guild) if guild else None


def shard_from_env() -> tuple[int, int] | None:
    """(DISCORD_SHARD_ID, DISCORD_SHARD_COUNT) when both are set, for running one shard per process; else None."""
    raw_id, raw_count = (os.environ.get(n, "").strip() for n in ("DISCORD_SHARD_ID", "DISCORD_SHARD_COUNT"))
    if not raw_id and not raw_count:
        return None
    if not (raw_id.isdigit() and raw_count.isdigit() and int(raw_id) < int(raw_count)):
        raise SettingsError("DISCORD_SHARD_ID and DISCORD_SHARD_COUNT go together: a count of processes (e.g. 2) "
                            "and this process's number from 0 to count-1; unset both to run one process.")
    return int(raw_id), int(raw_count)
