"""Serving the Discord app: check the token, load the index, connect to the gateway (and /healthz when asked)."""

from __future__ import annotations

import discord

from bot.discord.app import create_bot
from bot.discord.settings import settings_from_env, shard_from_env
from bot.discord.threads import follow_ups_from_env
from bot.service import ChatService
from bot.settings import SettingsError


def run(settings, args) -> int:
    """`advisor serve discord`: check the token, load the index, then connect to the gateway."""
    from bot.health import address_from_env, start_in_thread_from_env

    token, guild_id = settings_from_env()  # before the slow model load
    shard = shard_from_env()
    follow_ups_from_env(None)  # a bad ADVISOR_DISCORD_THREAD_FOLLOW_UPS fails now, not after the model loads
    address_from_env()  # a bad ADVISOR_HEALTH_PORT fails now, not after the model loads
    service = ChatService.from_settings(settings)
    client = create_bot(service, guild_id, shard)
    health = start_in_thread_from_env(service)  # ADVISOR_HEALTH_PORT: /healthz for container health checks
    try:
        client.run(token, log_handler=None)  # the CLI has configured logging
    except discord.LoginFailure as exc:
        raise SettingsError(f"Discord rejected DISCORD_TOKEN ({exc}); reset the bot token and export it again.") \
            from None
    except discord.PrivilegedIntentsRequired:  # message content, asked for by ADVISOR_DISCORD_THREAD_FOLLOW_UPS=1
        raise SettingsError("Discord refused the Message Content intent that ADVISOR_DISCORD_THREAD_FOLLOW_UPS=1 "
                            "needs: switch it on in the developer portal (Bot > Privileged Gateway Intents), or "
                            "unset ADVISOR_DISCORD_THREAD_FOLLOW_UPS.") from None
    finally:
        if health is not None:
            health.stop()
        service.store.close()
    return 0
