"""The Slack assistant side panel (bolt's AsyncAssistant): greeting and suggested prompts, status, title, answers."""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.context.assistant.thread_context import AssistantThreadContext
from slack_bolt.context.assistant.thread_context_store.async_store import AsyncAssistantThreadContextStore
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_sdk.errors import SlackApiError

from bot.assistant_prompts import SectionQuestions
from bot.guards import BoundedDict
from bot.slack.client import slack_error
from bot.slack.render import clip

logger = logging.getLogger(__name__)

GREETING = ("Hi! I answer questions about product-management careers (AI, ML and data PM roles, hiring, levels) "
            "from our documents, and quote the passages I rely on. Ask away, or pick a question below.")
STATUS = "is searching the documents…"
PROMPTS_TITLE = "Questions the documents answer:"
FALLBACK_PROMPTS = ("What does an ML PM do day to day?", "How do AI PM and ML PM roles differ?",
                    "Do startups hire ML PMs?", "How do I move from data analyst to ML PM?")
MAX_PROMPTS = 4  # what assistant.threads.setSuggestedPrompts takes
MAX_PROMPT_TITLE = 75
MAX_THREAD_TITLE = 80


class MemoryThreadContextStore(AsyncAssistantThreadContextStore):
    """The channel a user is viewing beside each assistant thread, kept in memory (bounded).

    bolt's default store keeps it in the metadata of the bot's first reply, which means reading the thread's
    history (conversations.replies) and editing that reply; the advisor needs the context for nothing yet,
    so it keeps it here and reads no message history.
    """

    def __init__(self, size: int = 5000):
        self._contexts: BoundedDict = BoundedDict(size)

    async def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        self._contexts.put((channel_id, thread_ts), dict(context or {}))

    async def find(self, *, channel_id: str, thread_ts: str) -> AssistantThreadContext | None:
        context = self._contexts.touch((channel_id, thread_ts))
        return AssistantThreadContext(context) if context else None

    def started_here(self, channel_id: str, thread_ts: str) -> bool:
        """Whether this process saw the thread start (so it has seen every question in it)."""
        return (channel_id, thread_ts) in self._contexts


def to_prompts(questions) -> list[dict]:
    """Suggested prompts ({title, message}) for assistant.threads.setSuggestedPrompts: at most four."""
    chosen = list(questions)[:MAX_PROMPTS] or list(FALLBACK_PROMPTS)
    return [{"title": clip(q, MAX_PROMPT_TITLE), "message": q} for q in chosen]


def create_assistant(adapter, questions: SectionQuestions) -> AsyncAssistant:
    """The assistant middleware, its listeners answering through `adapter` (a SlackAdapter) like everywhere."""
    store = MemoryThreadContextStore()
    assistant = AsyncAssistant(thread_context_store=store, logger=logging.getLogger("slack_bolt"))

    @assistant.thread_started
    async def thread_started(say, set_suggested_prompts, save_thread_context, event):
        """The panel opened: a short greeting and prompts from the corpus's section questions."""
        try:
            await save_thread_context(event["assistant_thread"].get("context") or {})  # the channel beside it
            await say(GREETING)
            prompts = to_prompts(await asyncio.to_thread(questions.first, MAX_PROMPTS))
            await set_suggested_prompts(prompts=prompts, title=PROMPTS_TITLE)
        except Exception:
            logger.exception("Could not greet a new assistant thread")

    @assistant.user_message
    async def user_message(payload, client, context, set_status, set_title):
        """A question in the panel: status and title at once, then the answer in the thread."""
        await adapter.on_assistant_message(payload, client, context, set_status, set_title)

    @assistant.thread_context_changed
    async def thread_context_changed(save_thread_context, payload):
        """The user switched channels beside the panel: keep which one (no message history is read)."""
        try:
            await save_thread_context(payload["assistant_thread"].get("context") or {})
        except Exception:
            logger.exception("Could not keep an assistant thread's context")

    return assistant


async def quietly(call, *args, what: str, **kwargs) -> None:
    """A status or title call: a panel that refuses one (not an assistant thread, a missing scope) still gets
    the answer."""
    try:
        await call(*args, **kwargs)
    except SlackApiError as exc:
        logger.info("Could not set the assistant thread's %s: %s", what, slack_error(exc))
    except Exception as exc:  # noqa: BLE001 - a network failure on a nicety
        logger.info("Could not set the assistant thread's %s: %s", what, type(exc).__name__)


def thread_title(text: str) -> str:
    return clip(" ".join((text or "").split()), MAX_THREAD_TITLE)
