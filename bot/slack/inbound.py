"""Slack events in: which messages are questions, and their text and conversation as a Question."""

from __future__ import annotations

import html
import re

from retrieval.vocabulary import Question

PLATFORM = "slack"
HUMAN_SUBTYPES = (None, "", "thread_broadcast", "file_share")

_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<([^>|]+)(?:\|([^>]*))?>")


def clean_text(text: str) -> str:
    """A Slack message's text as the user meant it: mentions dropped, links unwrapped, entities decoded."""
    text = _MENTION.sub(" ", text or "")
    text = _LINK.sub(lambda m: m.group(2) or ("" if m.group(1).startswith("!") else m.group(1)), text)
    return " ".join(html.unescape(text).split())


def from_bot(event: dict, bot_user_id: str | None = None) -> bool:
    """True for messages from this app or any other bot."""
    return bool(event.get("bot_id") or event.get("subtype") == "bot_message"
                or (bot_user_id and event.get("user") == bot_user_id))


def is_question(event: dict, bot_user_id: str | None = None) -> bool:
    """A person's new message (not a bot's, not an edit, deletion or channel join)."""
    return not from_bot(event, bot_user_id) and event.get("subtype") in HUMAN_SUBTYPES


def to_question(event: dict, thread: str) -> Question:
    """A message event (a mention, a DM, or the message a shortcut points at) as a Question in `thread`."""
    return Question(clean_text(event.get("text", "")), event.get("user", ""), PLATFORM, event.get("channel", ""),
                    thread or "")


def command_to_question(command: dict, thread: str) -> Question:
    """An /ask command's text as a Question in the asker's private conversation `thread`."""
    return Question(clean_text(command.get("text", "")), command.get("user_id", ""), PLATFORM,
                    command.get("channel_id", ""), thread)


def shortcut_to_question(body: dict) -> Question:
    """The "Ask advisor" shortcut: the text of the message it was used on, asked by who used it, in its thread."""
    message = body.get("message") or {}
    return Question(clean_text(message.get("text", "")), (body.get("user") or {}).get("id", ""), PLATFORM,
                    (body.get("channel") or {}).get("id", ""), message.get("thread_ts") or message.get("ts"))
