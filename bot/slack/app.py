"""The Slack listeners on a slack-bolt AsyncApp: mentions, DMs, thread follow-ups, /ask, the shortcut, buttons and the
feedback form; the assistant panel and the Home tab register theirs from their own modules."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.assistant_prompts import SectionQuestions
from bot.dispatch import dispatch
from bot.guards import BoundedDict, DuplicateFilter
from bot.messages import is_help
from bot.service import ChatService, DeliveryError, Reply, ReplyStatus
from bot.slack.assistant import STATUS, create_assistant, quietly, thread_title
from bot.slack.client import slack_error, web_client
from bot.slack.home import Home
from bot.slack.inbound import (
    PLATFORM, clean_text, command_to_question, is_question, shortcut_to_question, to_question,
)
from bot.slack.render import (
    ACTION_HELPFUL, ACTION_NOT_HELPFUL, ACTION_SHARE, FEEDBACK_VIEW, REASON_BLOCK, REASON_INPUT, SUGGESTION_PATTERN,
    escape, feedback_view, parse_share_value, to_blocks,
)
from bot.slack.settings import SlackTokens
from bot.slack.threads import follow_ups_from_env, is_follow_up, switch_command, working
from retrieval.vocabulary import Question

logger = logging.getLogger(__name__)

NOT_IN_CHANNEL = ("not_in_channel", "channel_not_found", "is_archived")
BAD_BLOCKS = ("invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long", "msg_too_long")
INVITE_HINT = "I can't post in this channel; invite me with `/invite @advisor` and try again."


class SlackAdapter:
    """Registers the advisor's listeners on a bolt AsyncApp: mentions, DMs, thread follow-ups, /ask, the shortcut,
    buttons, the assistant panel and the Home tab."""

    def __init__(self, service: ChatService, app: AsyncApp):
        self.service = service
        self.app = app
        self.events = DuplicateFilter(window=3600.0, keys=20000)  # Slack retries for ~5 minutes
        self.shared: BoundedDict = BoundedDict(5000)
        self.questions = SectionQuestions(service.advisor)  # suggested prompts, from the corpus's section questions
        self.follow_ups = follow_ups_from_env(service.store)
        app.middleware(self.skip_retries)
        self.assistant = create_assistant(self, self.questions)
        app.assistant(self.assistant)  # after skip_retries, so that retries are dropped first
        Home(self, self.questions).register(app)
        app.event("app_mention")(self.on_mention)
        app.event("message")(self.on_message)
        app.command("/ask")(self.on_ask)
        app.shortcut("ask_advisor")(self.on_shortcut)
        app.action(ACTION_SHARE)(self.on_share)
        app.action(ACTION_HELPFUL)(self.on_helpful)
        app.action(ACTION_NOT_HELPFUL)(self.on_not_helpful)
        app.action(SUGGESTION_PATTERN)(self.on_suggestion)
        app.view(FEEDBACK_VIEW)(self.on_reason)

    async def skip_retries(self, req, body, next):
        """Acknowledge and drop an event already received, here or by a replica on the same store."""
        event_id = body.get("event_id") if isinstance(body, dict) else None
        # the store may be a database on another host: its calls run off the event loop, which other requests share
        if event_id and not (self.events.first(event_id) and await asyncio.to_thread(self._claim, event_id)):
            retry = (req.headers.get("x-slack-retry-num") or ["-"])[0]
            logger.info("Event %s already received (retry %s); not answered again", event_id, retry)
            return BoltResponse(status=200, body="")
        return await next()

    def _claim(self, event_id: str) -> bool:
        """Whether this replica answers the event: the store (shared on the host) has the last word."""
        if self.service.store is None:
            return True
        try:
            return self.service.store.claim_event(f"slack:{event_id}")
        except Exception:  # a store that cannot be written must not stop the answer
            logger.exception("Could not record event %s; answering it", event_id)
            return True

    # -- events -------------------------------------------------------------------------------

    async def on_mention(self, event, client, context):
        """@advisor in a channel: answer in the thread of the asking message."""
        if not is_question(event, context.bot_user_id):
            return
        await self._answer_in_channel_thread(event, client)

    async def _answer_in_channel_thread(self, event: dict, client) -> None:
        """Answer in the thread of a channel message, with 👀 on it while the answer is made."""
        thread = event.get("thread_ts") or event["ts"]
        async with working(client, event["channel"], event["ts"]):
            await self._answer_in(client, to_question(event, thread), thread, event["ts"])

    async def on_message(self, event, client, context):
        """A direct message: answer in the DM (in its thread, if the user wrote in one). In a channel thread advisor
        answered in, a person's reply is a follow-up (unless it is for someone else)."""
        if not is_question(event, context.bot_user_id):
            return
        if event.get("channel_type") != "im":
            if await asyncio.to_thread(is_follow_up, event, context.bot_user_id, self.follow_ups):  # reads the store
                await self._answer_in_channel_thread(event, client)
            return
        thread = event.get("thread_ts") or ""
        await self._answer_in(client, to_question(event, thread), thread or None, event["ts"])

    async def _answer_in(self, client, question: Question, thread_ts, ts: str, read_thread: bool = True) -> None:
        try:
            if is_help(question.text):
                await self._post(client, question.channel, thread_ts, text=escape(self.service.help_text()))
                return
            if thread_ts and thread_ts != ts and read_thread:
                question = await self._with_thread_context(client, question, thread_ts, ts)
            # posting is part of answering: the service's record of the question says whether it got there
            reply = await self.service.ask(question, deliver=self._poster(client, question.channel, thread_ts))
            if reply.status != ReplyStatus.DUPLICATE:
                self.follow_ups.note(question.channel, thread_ts or "")
        except Exception:
            logger.exception("Answering in %s failed", question.channel)
            await self._post_quietly(client, question.channel, thread_ts, messages.ERROR)

    async def on_assistant_message(self, payload: dict, client, context, set_status, set_title) -> None:
        """A question in the assistant panel: the thread's title and "is searching the documents…" at once, then
        the answer in that thread, with the same blocks and buttons as everywhere."""
        if not is_question(payload, context.bot_user_id):
            return
        thread = payload["thread_ts"]
        question = to_question(payload, thread)
        if question.text and not is_help(question.text) and \
                not self.service.context_for(PLATFORM, question.channel, thread):
            await quietly(set_title, thread_title(question.text), what="title")  # the first question names it
        await quietly(set_status, STATUS, what="status")  # cleared by Slack when the answer is posted
        # a thread started here has no question this process missed: no need to read its history
        read_thread = not self.assistant.thread_context_store.started_here(question.channel, thread)
        await self._answer_in(client, question, thread, payload["ts"], read_thread=read_thread)

    async def _with_thread_context(self, client, question: Question, thread_ts: str, ts: str) -> Question:
        """A follow-up in a thread the service does not remember (e.g. after a restart): read the thread."""
        remembered = self.service.context_for(PLATFORM, question.channel, question.thread)
        if remembered:
            return replace(question, context=remembered)
        try:
            result = await client.conversations_replies(channel=question.channel, ts=thread_ts, limit=50)
        except Exception as exc:  # missing scope, rate limit: answer without context
            logger.warning("Could not read thread %s for context: %s", thread_ts, exc)
            return question
        earlier = [clean_text(m.get("text", "")) for m in result.get("messages", [])
                   if is_question(m) and float(m.get("ts", 0)) < float(ts)]
        earlier = [t for t in earlier if t]
        depth = self.service.limits.context_depth
        return replace(question, context=tuple(earlier[-depth:])) if earlier else question

    def _poster(self, client, channel: str, thread_ts, respond=None):
        """The service's `deliver` for a reply posted in `channel` (in `thread_ts`, if any).

        With `respond`, a reply Slack refused is also told to the asker privately (through the response_url,
        which is not chat.postMessage and may still work).
        """

        async def deliver(reply: Reply) -> None:
            try:
                await self._post_reply(client, reply, channel, thread_ts)
                return
            except SlackApiError as exc:  # after the client's retries
                why = slack_error(exc)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                why = f"Slack cannot be reached: {type(exc).__name__}"
            if respond is not None:
                await self._respond_quietly(respond, INVITE_HINT if why in NOT_IN_CHANNEL else messages.ERROR)
            raise DeliveryError(f"chat.postMessage in {channel} failed ({why})")

        return deliver

    async def _post_reply(self, client, reply: Reply, channel: str, thread_ts) -> None:
        async def notice(text: str) -> None:
            await self._post(client, channel, thread_ts, text=escape(text))

        async def send(reply: Reply) -> None:
            blocks, text = to_blocks(reply.answer, reply.answer_id)
            await self._post(client, channel, thread_ts, text=text, blocks=blocks)

        await dispatch(reply, notice, send)

    async def post(self, client, channel: str, thread_ts, text: str, blocks=None) -> None:
        """chat.postMessage for the other Slack modules (the Home tab's answers): see `_post`."""
        await self._post(client, channel, thread_ts, text=text, blocks=blocks)

    async def _post(self, client, channel: str, thread_ts, text: str, blocks=None) -> None:
        """chat.postMessage; if Slack refuses the blocks, the plain text still goes out."""
        kwargs = dict(channel=channel, text=text, unfurl_links=False, unfurl_media=False)
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        try:
            await client.chat_postMessage(blocks=blocks, **kwargs)
        except SlackApiError as exc:
            if blocks is None or slack_error(exc) not in BAD_BLOCKS:
                raise
            logger.error("Slack refused the answer's blocks (%s); sending the plain text", slack_error(exc))
            await client.chat_postMessage(**kwargs)

    async def _post_quietly(self, client, channel: str, thread_ts, text: str) -> None:
        try:
            await self._post(client, channel, thread_ts, text=text)
        except Exception:
            logger.exception("Could not tell the user in %s that answering failed", channel)

    # -- /ask and the message shortcut ----------------------------------------------------------

    async def on_ask(self, ack, command, respond):
        """/ask <question>: acknowledged at once; the answer, only for the asker, has "Share in channel"."""
        await ack()
        text, user = clean_text(command.get("text", "")), command.get("user_id", "")
        try:
            if is_help(text):
                await respond(text=escape(self.service.help_text()), response_type="ephemeral")
                return
            switched = await asyncio.to_thread(switch_command, text, command.get("channel_id", ""), self.follow_ups)
            if switched is not None:  # /ask follow-ups on|off: the channel's switch, not a question
                await respond(text=switched, response_type="ephemeral")
                return
            # each user's /ask questions in a channel are one private conversation, for follow-ups
            thread = self.service.private_thread(user)
            await self._answer_privately(command_to_question(command, thread), respond)
        except Exception:
            logger.exception("/ask failed")
            await self._respond_quietly(respond, messages.ERROR)

    async def _answer_privately(self, question: Question, respond) -> None:
        """The answer only the asker sees, through the response_url, with "Share in channel"."""

        async def notice(text: str) -> None:
            await respond(text=escape(text), response_type="ephemeral")

        async def send(reply: Reply) -> None:
            blocks, fallback = to_blocks(reply.answer, reply.answer_id, ephemeral=True)
            await respond(text=fallback, blocks=blocks, response_type="ephemeral", replace_original=False)

        await self.service.ask(question, deliver=lambda reply: dispatch(reply, notice, send))

    async def on_shortcut(self, ack, body, client, respond):
        """The "Ask advisor" message shortcut: answer that message's text in its thread."""
        await ack()
        question = shortcut_to_question(body)
        channel, thread = question.channel, question.thread
        try:
            await self.service.ask(question, deliver=self._poster(client, channel, thread, respond))
        except Exception:
            logger.exception("Ask advisor shortcut failed")
            await self._post_quietly(client, channel, thread, messages.ERROR)

    # -- buttons and the feedback modal -----------------------------------------------------------

    async def on_share(self, ack, body, action, client, respond):
        """"Share in channel": post the answer publicly (in its thread, if any), "shared by" the clicker."""
        await ack()
        user = (body.get("user") or {}).get("id", "")
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        answer_id, thread = parse_share_value(action.get("value", ""))
        thread = thread or container.get("thread_ts") or ""
        try:
            answer = self.service.get_answer(answer_id)
            if answer is None:
                await respond(text=messages.ANSWER_GONE, replace_original=False)
                return
            key = (answer_id, channel, thread)
            if key in self.shared:
                await respond(text=messages.ALREADY_SHARED, replace_original=False)
                return
            self.shared.put(key, True)
            blocks, text = to_blocks(answer, answer_id, shared_by=user)
            try:
                await self._post(client, channel, thread or None, text=text, blocks=blocks)
            except Exception:
                self.shared.pop(key, None)
                raise
            await respond(text=messages.SHARED, replace_original=True)
        except SlackApiError as exc:
            hint = INVITE_HINT if slack_error(exc) in NOT_IN_CHANNEL else messages.ERROR
            logger.warning("Sharing %s in %s failed: %s", answer_id, channel, slack_error(exc))
            await self._respond_quietly(respond, hint)
        except Exception:
            logger.exception("Sharing %s failed", answer_id)
            await self._respond_quietly(respond, messages.ERROR)

    async def on_suggestion(self, ack, body, action, client, respond):
        """A suggested question under a "not covered" answer: asked as it stands, and answered where that answer
        was, in its thread (privately, as /ask answers, when only the clicker could see it)."""
        await ack()
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        user = (body.get("user") or {}).get("id", "")
        text = clean_text(action.get("value", ""))
        try:
            if container.get("is_ephemeral"):
                await self._answer_privately(Question(text, user, PLATFORM, channel,
                                                      self.service.private_thread(user)), respond)
                return
            thread = container.get("thread_ts") or container.get("message_ts") or None
            question = Question(text, user, PLATFORM, channel, thread or "")
            await self._answer_in(client, question, thread, container.get("message_ts", ""), read_thread=False)
        except Exception:
            logger.exception("Asking a suggested question failed in %s", channel)
            await self._respond_quietly(respond, messages.ERROR)

    async def on_helpful(self, ack, body, action, respond):
        await ack()
        ok = await self.service.feedback(action.get("value", ""), True, (body.get("user") or {}).get("id", ""),
                                         PLATFORM)
        await self._respond_quietly(respond, messages.FEEDBACK_THANKS if ok else messages.FEEDBACK_FAILED)

    async def on_not_helpful(self, ack, body, action, client, respond):
        """Record "not helpful" at once, then offer a short form for the reason."""
        await ack()
        answer_id = action.get("value", "")
        ok = await self.service.feedback(answer_id, False, (body.get("user") or {}).get("id", ""), PLATFORM)
        if not ok:
            await self._respond_quietly(respond, messages.FEEDBACK_FAILED)
            return
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=feedback_view(answer_id))
        except Exception as exc:  # the verdict is recorded; the reason is optional
            logger.warning("Could not open the feedback form: %s", exc)
            await self._respond_quietly(respond, messages.FEEDBACK_THANKS)

    async def on_reason(self, ack, body, view):
        await ack()
        values = (view.get("state") or {}).get("values") or {}
        reason = ((values.get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}).get("value") or ""
        if reason.strip():
            await self.service.feedback(view.get("private_metadata", ""), False,
                                        (body.get("user") or {}).get("id", ""), PLATFORM, reason)

    @staticmethod
    async def _respond_quietly(respond, text: str) -> None:
        try:
            await respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception:
            logger.exception("Could not respond to the user")


def create_app(service: ChatService, tokens: SlackTokens, client: AsyncWebClient | None = None) -> AsyncApp:
    """The bolt AsyncApp with the advisor's listeners; answers run after the acknowledgement."""
    app = AsyncApp(name="advisor", client=client or web_client(tokens), signing_secret=tokens.signing_secret,
                   process_before_response=False, logger=logging.getLogger("slack_bolt"))
    app.advisor_adapter = SlackAdapter(service, app)  # for tests and debugging
    app.advisor_signing_secret = tokens.signing_secret  # for create_web_app, which checks signatures before bolt
    return app
