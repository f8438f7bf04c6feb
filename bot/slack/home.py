"""The Slack Home tab: what advisor answers, its documents, how to ask, and suggested questions answered in a DM."""

from __future__ import annotations

import asyncio
import logging
import re

from slack_sdk.errors import SlackApiError

from bot.dispatch import dispatch
from bot.service import DeliveryError, Reply
from bot.slack.client import slack_error
from bot.slack.inbound import PLATFORM
from bot.slack.render import MAX_BUTTON_TEXT, MAX_SECTION_TEXT, MAX_VALUE, clip, escape, to_blocks
from retrieval.vocabulary import Question

logger = logging.getLogger(__name__)

ACTION_HOME_ASK = "advisor_home_ask"  # each button's action_id is this plus ":<n>" (unique within the view)
HOME_ASK_PATTERN = re.compile(rf"^{ACTION_HOME_ASK}:\d+$")
MAX_HOME_BLOCKS = 100
MAX_HEADER_TEXT = 150
MAX_QUESTIONS = 5
MAX_DOCUMENTS_SHOWN = 60

ABOUT = ("I answer questions about product-management careers (AI, ML and data PM roles, hiring, levels) from "
         "the documents below, and quote the passages I rely on: `[1]`, `[2]` point to the cited passages under "
         "each answer. If the documents don't cover a question I say so rather than guess.")
HOW_TO_ASK = (
    "*How to ask*\n"
    "• *Mention me* in a channel: `@advisor does a Series A startup hire ML PMs?` I answer in the thread "
    "(👀 while I work), and replies in that thread are follow-ups, no new mention needed.\n"
    "• *Message me* here in the Messages tab.\n"
    "• `/ask <question>` anywhere: only you see the answer, with *Share in channel*.\n"
    "• The *Ask advisor* shortcut in any message's ⋮ menu answers that message in its thread.\n"
    "• The *assistant panel* (advisor in the top bar's AI apps): ask beside any channel.\n"
    "Leads can turn thread follow-ups off in a channel with `/ask follow-ups off`."
)


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}}


def _document_sections(titles: list[str]) -> list[dict]:
    """The document list in as few sections as Slack's 3,000 characters a section allow."""
    shown = titles[:MAX_DOCUMENTS_SHOWN]
    lines = [f"• {clip(escape(' '.join(t.split())), 300)}" for t in shown] or ["• (no documents loaded)"]
    if len(titles) > len(shown):
        lines.append(f"… and {len(titles) - len(shown)} more")
    sections, current = [], f"*Documents I know ({len(titles)})*"
    for line in lines:
        if len(current) + 1 + len(line) > MAX_SECTION_TEXT:
            sections.append(_section(current))
            current = line
        else:
            current += "\n" + line
    sections.append(_section(current))
    return sections


def to_home_view(titles, questions, dm_channel: str = "") -> dict:
    """The Home tab as a `home` view (at most 100 blocks, every text within Block Kit's limits).

    Args:
        titles: the documents' titles.
        questions: suggested questions; each becomes a button that answers it in the user's DM with advisor.
        dm_channel: that DM's channel id (from app_home_opened), kept in the view for the buttons.
    """
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip("advisor: PM career answers, with sources",
                                                                        MAX_HEADER_TEXT)}},
        _section(ABOUT),
        {"type": "divider"},
        _section(HOW_TO_ASK),
    ]
    questions = [" ".join(q.split()) for q in questions if q and q.strip()][:MAX_QUESTIONS]
    if questions:
        blocks += [{"type": "divider"}, _section("*Try a question* (I answer it in our DM)"),
                   {"type": "actions", "block_id": "advisor_home_questions", "elements": [
                       {"type": "button", "action_id": f"{ACTION_HOME_ASK}:{n}",
                        "text": {"type": "plain_text", "text": clip(q, MAX_BUTTON_TEXT), "emoji": True},
                        "value": clip(q, MAX_VALUE)}
                       for n, q in enumerate(questions)]}]
    blocks.append({"type": "divider"})
    blocks += _document_sections(list(titles))
    return {"type": "home", "callback_id": "advisor_home", "private_metadata": dm_channel[:100],
            "blocks": blocks[:MAX_HOME_BLOCKS]}


def with_question(blocks: list[dict], question: str) -> list[dict]:
    """An answer's blocks headed by the question it answers (asked from a button, not typed in the DM)."""
    if len(blocks) >= 50:  # a message's limit; the answer itself matters more
        return blocks
    head = {"type": "context", "elements": [{"type": "mrkdwn", "text": f"*Question:* {clip(escape(question), 300)}"}]}
    return [head, *blocks]


class Home:
    """The Home tab's listeners: publish the view when it is opened, answer its buttons in the DM."""

    def __init__(self, adapter, questions):
        self.adapter = adapter  # a SlackAdapter: its service and its chat.postMessage with fallbacks
        self.questions = questions

    def register(self, app) -> None:
        app.event("app_home_opened")(self.on_opened)
        app.action(HOME_ASK_PATTERN)(self.on_ask)

    async def on_opened(self, event, client):
        """views.publish of the Home view; the Messages tab opening the same event is left alone."""
        if event.get("tab") != "home" or not event.get("user"):
            return
        try:
            titles = [title for _, title in await asyncio.to_thread(self.adapter.service.advisor.documents)]
        except Exception:
            logger.exception("Could not list the documents for the Home tab")
            titles = []
        questions = await asyncio.to_thread(self.questions.first, MAX_QUESTIONS)
        try:
            await client.views_publish(user_id=event["user"],
                                       view=to_home_view(titles, questions, event.get("channel", "")))
        except Exception as exc:  # noqa: BLE001 - the next opening tries again
            logger.warning("Could not publish the Home tab: %s", why(exc))

    async def on_ask(self, ack, body, action, client):
        """A suggested question's button: acknowledged at once, answered in the user's DM with advisor."""
        await ack()
        user = (body.get("user") or {}).get("id", "")
        channel = (body.get("view") or {}).get("private_metadata") or user  # a user id posts to the app's DM
        text = action.get("value", "")
        if not channel:
            return
        question = Question(text, user, PLATFORM, channel, "")
        try:
            await self.adapter.service.ask(question, deliver=self._deliver(client, channel, text))
        except Exception:
            logger.exception("Answering a Home tab question failed")

    def _deliver(self, client, channel: str, text: str):
        async def notice(message: str) -> None:
            await self.adapter.post(client, channel, None, text=escape(message))

        async def send(reply: Reply) -> None:
            blocks, fallback = to_blocks(reply.answer, reply.answer_id)
            await self.adapter.post(client, channel, None, text=fallback, blocks=with_question(blocks, text))

        async def deliver(reply: Reply) -> None:
            try:
                await dispatch(reply, notice, send)
            except Exception as exc:  # after the client's retries
                raise DeliveryError(f"chat.postMessage in a DM failed ({why(exc)})") from None

        return deliver


def why(exc: Exception) -> str:
    """One line saying why a Web API call failed (no user content)."""
    return slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
