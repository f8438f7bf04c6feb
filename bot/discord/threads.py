"""Discord threads: follow-ups without a new mention (with the message-content intent) and /ask suggestions."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.follow_ups import FollowUps, addressed_elsewhere
from bot.variables import value

FOLLOW_UPS_ENV = "ADVISOR_DISCORD_THREAD_FOLLOW_UPS"
MAX_CHOICES = 25  # Discord's limit on autocomplete choices
MAX_CHOICE_TEXT = 100  # a choice's name and (string) value


def follow_ups_from_env(store) -> FollowUps:
    """ADVISOR_DISCORD_THREAD_FOLLOW_UPS: 1 answers replies in threads advisor answered in without a new mention.

    Off by default: Discord sends the text of such messages only with the privileged Message Content intent,
    which must be switched on in the developer portal first (Bot > Privileged Gateway Intents).
    """
    return FollowUps(store, "discord", value(FOLLOW_UPS_ENV))


def mentioned_elsewhere(message: discord.Message, me_id: int, my_role_id: int | None = None) -> bool:
    """A message for other people: it mentions someone (a user, a role, @everyone) and not advisor, or it replies
    to another person's message."""
    if message.mention_everyone or any(r != my_role_id for r in message.raw_role_mentions):
        return True
    replied = message.reference.resolved if message.reference is not None else None
    replying_to = str(replied.author.id) if isinstance(replied, discord.Message) else ""
    return addressed_elsewhere([str(u.id) for u in message.mentions], [str(me_id)], replying_to)


def to_choices(questions) -> list[app_commands.Choice[str]]:
    """Autocomplete choices for /ask's question (each within Discord's 100 characters)."""
    choices = []
    for question in list(questions)[:MAX_CHOICES]:
        text = " ".join(question.split())
        shown = text if len(text) <= MAX_CHOICE_TEXT else text[:MAX_CHOICE_TEXT - 1] + "…"
        choices.append(app_commands.Choice(name=shown, value=text[:MAX_CHOICE_TEXT]))
    return choices
