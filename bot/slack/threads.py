"""Slack channel threads: the 👀 working signal, follow-ups without a new mention, and `/ask follow-ups on|off`."""

from __future__ import annotations

import contextlib
import logging
import re

from slack_sdk.errors import SlackApiError

from bot.follow_ups import SWITCH_USAGE, FollowUps, addressed_elsewhere, parse_switch
from bot.slack.client import slack_error
from bot.variables import value

logger = logging.getLogger(__name__)

FOLLOW_UPS_ENV = "ADVISOR_SLACK_THREAD_FOLLOW_UPS"
WORKING = "eyes"
CHANNEL_TYPES = ("channel", "group")  # message.channels, message.groups
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def mentioned_users(text: str) -> list[str]:
    """The user ids a Slack message mentions (<@U123> or <@U123|name>), in order."""
    return _USER.findall(text or "")


def follow_ups_from_env(store) -> FollowUps:
    """ADVISOR_SLACK_THREAD_FOLLOW_UPS: 1 (default) answers replies in threads advisor answered in; 0 only mentions."""
    return FollowUps(store, "slack", value(FOLLOW_UPS_ENV))


def is_follow_up(event: dict, bot_user_id: str | None, follow_ups: FollowUps) -> bool:
    """A person's reply in a channel thread advisor answered in, meant for advisor.

    Not a follow-up: a top-level message, a message that mentions advisor (the app_mention event answers that
    one), one that mentions someone else and not advisor (a reply to another person starts that way), and the
    switches being off in the workspace or the channel. Edits, bots and joins are filtered out before.
    """
    if event.get("channel_type") not in CHANNEL_TYPES:
        return False
    thread, ts = event.get("thread_ts"), event.get("ts")
    if not thread or thread == ts:
        return False
    mentioned = mentioned_users(event.get("text", ""))
    if bot_user_id and bot_user_id in mentioned:
        return False
    if addressed_elsewhere(mentioned, [bot_user_id or ""]):
        return False
    return follow_ups.wanted(event.get("channel", ""), thread)


@contextlib.asynccontextmanager
async def working(client, channel: str, ts: str):
    """👀 on the asking message while the answer is made; removed when it is posted or failed.

    A reaction that cannot be added or removed (missing reactions:write, the message deleted) never stops the
    answer: it is logged in one line.
    """
    added = await _react(client.reactions_add, channel, ts)
    try:
        yield
    finally:
        if added:
            await _react(client.reactions_remove, channel, ts)


async def _react(call, channel: str, ts: str) -> bool:
    try:
        await call(channel=channel, timestamp=ts, name=WORKING)
        return True
    except SlackApiError as exc:
        error = slack_error(exc)
        if error == "already_reacted":
            return True
        logger.warning("Could not change the working signal in %s: %s", channel, error)
    except Exception as exc:  # noqa: BLE001 - a network failure on a nicety
        logger.warning("Could not change the working signal in %s: %s", channel, type(exc).__name__)
    return False


def switch_command(text: str, channel: str, follow_ups: FollowUps) -> str | None:
    """The reply to `/ask follow-ups [on|off]`, or None when the text is a question, not this command."""
    wanted = parse_switch(text)
    if wanted is None:
        if text.lower().startswith(("follow-up", "followup", "follow up")) and len(text.split()) <= 3:
            return f"I didn't understand that. {SWITCH_USAGE}"
        return None
    if wanted == "" or not follow_ups.enabled:
        return follow_ups.state_text(channel)
    try:
        follow_ups.switch(channel, bool(wanted))
    except Exception:
        logger.exception("Could not record the follow-up switch of channel %s", channel)
        return "I couldn't save that setting; please try again."
    logger.info("Thread follow-ups turned %s in channel %s", "on" if wanted else "off", channel)
    return follow_ups.state_text(channel)
