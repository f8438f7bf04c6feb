"""The Discord settings: the bot token, the guild to sync commands to, and the shard, from the declared variables."""

from __future__ import annotations

from bot.variables import SettingsError, require, value

TOKEN_HINT = ("Create a bot in the Discord developer portal (Bot > Reset Token) and export DISCORD_TOKEN; "
              "see deploy/discord/README.md.")


def settings_from_env() -> tuple[str, int | None]:
    """DISCORD_TOKEN (required) and DISCORD_GUILD_ID (optional), or a SettingsError saying what to set."""
    return require("DISCORD_TOKEN", TOKEN_HINT), value("DISCORD_GUILD_ID")


def shard_from_env() -> tuple[int, int] | None:
    """(DISCORD_SHARD_ID, DISCORD_SHARD_COUNT) when both are set, for running one shard per process; else None."""
    shard, count = value("DISCORD_SHARD_ID"), value("DISCORD_SHARD_COUNT")
    if shard is None and count is None:
        return None
    if shard is None or count is None or shard >= count:
        raise SettingsError("DISCORD_SHARD_ID and DISCORD_SHARD_COUNT go together: a count of processes (e.g. 2) "
                            "and this process's number from 0 to count-1; unset both to run one process.")
    return shard, count
