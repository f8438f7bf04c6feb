"""Discord messages and interactions in: the question's text, its conversation, a submitted form's values."""

from __future__ import annotations

import re

import discord

from retrieval.vocabulary import Question

PLATFORM = "discord"


def strip_mentions(text: str, user_id: int, role_id: int | None = None) -> str:
    """The question without the bot's own @mention (user or managed-role form)."""
    text = re.sub(rf"<@!?{user_id}>", " ", text or "")
    if role_id:
        text = text.replace(f"<@&{role_id}>", " ")
    return " ".join(text.split())


def place(channel, default_thread: str) -> tuple[str, str]:
    """(channel, thread) keys of a conversation: a thread is its own; DMs are one conversation each."""
    if isinstance(channel, discord.Thread):
        return str(channel.parent_id), str(channel.id)
    if isinstance(channel, (discord.DMChannel, discord.GroupChannel)):
        return str(channel.id), ""
    return str(getattr(channel, "id", "")), default_thread


def find_value(components: list, custom_id: str) -> str:
    """The value of one text input in a modal submit's (possibly nested) components."""
    for item in components or []:
        if item.get("custom_id") == custom_id and "value" in item:
            return item.get("value") or ""
        nested = item.get("components") or ([item["component"]] if item.get("component") else [])
        found = find_value(nested, custom_id)
        if found:
            return found
    return ""


def to_question(text: str, user_id: int | str, where: tuple[str, str], context: tuple[str, ...] = ()) -> Question:
    """What user `user_id` asked, in the conversation `where` ((channel, thread), from `place`)."""
    channel, thread = where
    return Question(text, str(user_id), PLATFORM, channel, thread, context)
