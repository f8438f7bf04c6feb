"""Follow-ups without a new mention: which thread messages are for the bot, and the switches that turn them off."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from bot.guards import BoundedDict
from bot.variables import OFF_WORDS, ON_WORDS

logger = logging.getLogger(__name__)

SETTING = "thread_follow_ups"  # the per-channel switch's name in the store
_COMMAND = re.compile(r"follow[- ]?ups?\s*(?P<value>\S*)", re.IGNORECASE)
SWITCH_USAGE = "Use `follow-ups on` or `follow-ups off`."


def parse_switch(text: str) -> bool | None | str:
    """What "follow-ups on|off" asks for: True / False; "" when it names no value (show the state); None when the
    text is not this command at all (a question)."""
    match = _COMMAND.fullmatch(" ".join((text or "").split()))
    if match is None:
        return None
    value = match["value"].lower()
    if not value or value in ("status", "?"):
        return ""
    if value in ON_WORDS:
        return True
    if value in OFF_WORDS:
        return False
    return None


def addressed_elsewhere(mentioned: Iterable[str], bot_ids: Iterable[str], replying_to: str = "") -> bool:
    """A message that names other people and not the bot, or that replies to another person's message, is
    between people: the bot stays out of it.

    Args:
        mentioned: the ids of the users the message mentions (or starts with).
        bot_ids: the bot's own ids on the platform.
        replying_to: the author of the message it replies to, when the platform says ("" when it is no reply).
    """
    ours = {b for b in bot_ids if b}
    people = {m for m in mentioned if m}
    if people and not people & ours:
        return True
    return bool(replying_to) and replying_to not in ours


class FollowUps:
    """Where follow-ups are on, and which threads the bot has answered in (remembered, else asked of the store).

    Args:
        store: the service's store (None: memory only); it keeps the per-channel switch across restarts.
        platform: "slack" | "discord".
        enabled: the workspace-wide switch (the environment setting).
    """

    def __init__(self, store, platform: str, enabled: bool = True, size: int = 5000):
        self.store = store
        self.platform = platform
        self.enabled = enabled
        self._threads: BoundedDict = BoundedDict(size)
        self._switches: BoundedDict = BoundedDict(size)  # channels whose switch was set in this process

    def note(self, channel: str, thread: str) -> None:
        """The bot has answered in this thread."""
        if thread:
            self._threads.put((channel, thread), True)

    def answered_in(self, channel: str, thread: str) -> bool:
        """Whether the bot answered in this thread ("" channel: in any channel, for platforms whose thread ids are
        unique on their own)."""
        if not thread:
            return False
        if self._threads.touch((channel, thread)):
            return True
        if self.store is None:
            return False
        try:
            found = self.store.answered_in(self.platform, channel or None, thread)
        except Exception:
            logger.exception("Could not ask the store whether thread %s was answered", thread)
            return False
        if found:
            self.note(channel, thread)
        return found

    def on_in(self, channel: str) -> bool:
        """Whether replies in this channel's threads are answered without a mention."""
        if not self.enabled:
            return False
        if channel in self._switches:
            return self._switches.touch(channel)
        value = None
        if self.store is not None:
            try:
                value = self.store.channel_setting(self.platform, channel, SETTING)
            except Exception:
                logger.exception("Could not read the follow-up switch of channel %s", channel)
        on = value != "off"
        self._switches.put(channel, on)
        return on

    def switch(self, channel: str, on: bool) -> None:
        """Turn follow-ups on or off in one channel; kept in the store so that it outlasts a restart.

        Raises:
            Exception: the store could not record it (the caller says so to the user).
        """
        if self.store is not None:
            self.store.set_channel_setting(self.platform, channel, SETTING, "on" if on else "off")
        self._switches.put(channel, on)

    def wanted(self, channel: str, thread: str) -> bool:
        """A reply in `thread` is a follow-up to answer: the switches allow it and the bot answered there."""
        return bool(thread) and self.on_in(channel) and self.answered_in(channel, thread)

    def state_text(self, channel: str) -> str:
        """One line telling a user whether follow-ups are on here, and how to change it."""
        if not self.enabled:
            return "Follow-ups without a mention are turned off for this workspace by its operator."
        if self.on_in(channel):
            return ("Follow-ups are on here: in a thread I answered in, replies get an answer without a new "
                    "mention. `follow-ups off` turns that off for this channel.")
        return "Follow-ups are off here: mention me to ask in a thread. `follow-ups on` turns them back on."
