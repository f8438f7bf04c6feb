"""The Slack app (slack-bolt AsyncApp): Slack events in, chat service, Block Kit answers out."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import re
import signal
import sys
from dataclasses import dataclass, replace

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler, AsyncRateLimitErrorRetryHandler, AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot import health
from bot.core import Question
from bot.guards import BoundedDict, DuplicateFilter
from bot.service import ANSWERED, DUPLICATE, ERROR_MESSAGE, ChatService, DeliveryError, Reply, is_help
from bot.settings import SettingsError, require_env
from bot.slack_render import (
    ACTION_HELPFUL, ACTION_NOT_HELPFUL, ACTION_SHARE, FEEDBACK_VIEW, REASON_BLOCK, REASON_INPUT, escape,
    feedback_view, parse_share_value, to_blocks,
)
from bot.slack_signature import SignedRequests

logger = logging.getLogger(__name__)

PLATFORM = "slack"
EVENTS_PATH = "/slack/events"
NOT_IN_CHANNEL = ("not_in_channel", "channel_not_found", "is_archived")
BAD_BLOCKS = ("invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long", "msg_too_long")
HUMAN_SUBTYPES = (None, "", "thread_broadcast", "file_share")
INVITE_HINT = "I can't post in this channel; invite me with `/invite @advisor` and try again."
# A reply must still be worth reading when it arrives: a couple of retries, a rate limit waited out only if short.
MAX_RETRIES = 2
MAX_RETRY_AFTER_SECONDS = 10

_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<([^>|]+)(?:\|([^>]*))?>")
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9-]+")


@dataclass(frozen=True)
class SlackTokens:
    """What the app needs to talk to Slack; never logged."""

    bot_token: str
    app_token: str = ""  # Socket Mode only
    signing_secret: str = ""  # HTTP mode only
    api_url: str = ""  # Web API base URL; "" for Slack's own

    def __repr__(self) -> str:
        return f"SlackTokens(api_url={self.api_url!r})"


def _token(name: str, prefix: str, hint: str) -> str:
    value = require_env(name, prefix, hint)
    if not _TOKEN_SHAPE.fullmatch(value):
        raise SettingsError(f"{name} does not look right: a token has only letters, digits and dashes. {hint}")
    return value


def tokens_from_env(http: bool) -> SlackTokens:
    """Read and check the Slack settings; a SettingsError names what to set."""
    bot = _token("SLACK_BOT_TOKEN", "xoxb-",
                 "Set it to the Bot User OAuth Token (OAuth & Permissions page of your Slack app).")
    app_token = secret = ""
    if http:
        secret = require_env("SLACK_SIGNING_SECRET", "",
                             "Set it to the Signing Secret (Basic Information > App Credentials) for --http.")
        if secret.startswith("xox") or len(secret) < 16 or not secret.isalnum():
            raise SettingsError("SLACK_SIGNING_SECRET does not look right: it is the 32-character Signing Secret "
                                "from Basic Information > App Credentials, not a token.")
    else:
        app_token = _token("SLACK_APP_TOKEN", "xapp-",
                           "Set it to an app-level token with connections:write (Basic Information > App-Level "
                           "Tokens) for Socket Mode, or run with --http.")
    api_url = os.environ.get("SLACK_API_URL", "").strip()
    if api_url and not re.match(r"https?://", api_url):
        raise SettingsError("SLACK_API_URL does not look right: it should be a URL like https://slack.com/api/.")
    return SlackTokens(bot, app_token, secret, api_url.rstrip("/") + "/" if api_url else "")


def slack_error(exc: SlackApiError) -> str:
    """The Web API's error code ("ratelimited"), or the HTTP status when the body was not Slack's JSON (a 5xx page)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"HTTP {getattr(exc.response, 'status_code', '?')}"


class CappedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's retry after a 429, which waits the Retry-After it names, but only when that is at most `max_wait`
    seconds: an answer posted a minute late is no longer useful, and retrying sooner would be refused again."""

    def __init__(self, max_retry_count: int = MAX_RETRIES, max_wait: float = MAX_RETRY_AFTER_SECONDS):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        if not await super()._can_retry_async(state=state, request=request, response=response, error=error):
            return False
        wait = next((v[0] for k, v in response.headers.items() if k.lower() == "retry-after"), "1")
        if not (wait.isascii() and wait.isdigit()) or int(wait) > self.max_wait:
            logger.warning("Slack asks to wait %s s before posting again; not retrying", wait)
            return False
        return True


def retry_handlers() -> list:
    """Retries of a Web API call (chat.postMessage above all) after a rate limit, a 500/503 or a dropped connection."""
    return [CappedRateLimitRetryHandler(), AsyncServerErrorRetryHandler(max_retry_count=MAX_RETRIES),
            AsyncConnectionErrorRetryHandler(max_retry_count=MAX_RETRIES)]


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


class SlackAdapter:
    """Registers the advisor's listeners on a bolt AsyncApp: mentions, DMs, /ask, the shortcut, buttons."""

    def __init__(self, service: ChatService, app: AsyncApp):
        self.service = service
        self.app = app
        self.events = DuplicateFilter(window=3600.0, keys=20000)  # Slack retries for ~5 minutes
        self.shared: BoundedDict = BoundedDict(5000)
        app.middleware(self.skip_retries)
        app.event("app_mention")(self.on_mention)
        app.event("message")(self.on_message)
        app.command("/ask")(self.on_ask)
        app.shortcut("ask_advisor")(self.on_shortcut)
        app.action(ACTION_SHARE)(self.on_share)
        app.action(ACTION_HELPFUL)(self.on_helpful)
        app.action(ACTION_NOT_HELPFUL)(self.on_not_helpful)
        app.view(FEEDBACK_VIEW)(self.on_reason)

    async def skip_retries(self, req, body, next):
        """Acknowledge and drop an event already received, here or by a replica on the same store."""
        event_id = body.get("event_id") if isinstance(body, dict) else None
        if event_id and not (self.events.first(event_id) and self._claim(event_id)):
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
        channel, thread = event["channel"], event.get("thread_ts") or event["ts"]
        question = Question(clean_text(event.get("text", "")), event.get("user", ""), PLATFORM, channel, thread)
        await self._answer_in(client, question, thread, event["ts"])

    async def on_message(self, event, client, context):
        """A direct message: answer in the DM (in its thread, if the user wrote in one)."""
        if event.get("channel_type") != "im" or not is_question(event, context.bot_user_id):
            return
        thread = event.get("thread_ts") or ""
        question = Question(clean_text(event.get("text", "")), event.get("user", ""), PLATFORM,
                            event["channel"], thread)
        await self._answer_in(client, question, thread or None, event["ts"])

    async def _answer_in(self, client, question: Question, thread_ts, ts: str) -> None:
        try:
            if is_help(question.text):
                await self._post(client, question.channel, thread_ts, text=escape(self.service.help_text()))
                return
            if thread_ts and thread_ts != ts:
                question = await self._with_thread_context(client, question, thread_ts, ts)
            # posting is part of answering: the service's record of the question says whether it got there
            await self.service.ask(question, deliver=self._poster(client, question.channel, thread_ts))
        except Exception:
            logger.exception("Answering in %s failed", question.channel)
            await self._post_quietly(client, question.channel, thread_ts, ERROR_MESSAGE)

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
                await self._respond_quietly(respond, INVITE_HINT if why in NOT_IN_CHANNEL else ERROR_MESSAGE)
            raise DeliveryError(f"chat.postMessage in {channel} failed ({why})")

        return deliver

    async def _post_reply(self, client, reply: Reply, channel: str, thread_ts) -> None:
        if reply.status == DUPLICATE:
            return
        if reply.status != ANSWERED:
            await self._post(client, channel, thread_ts, text=escape(reply.message))
            return
        blocks, text = to_blocks(reply.answer, reply.answer_id)
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
            # each user's /ask questions in a channel are one private conversation, for follow-ups
            thread = self.service.private_thread(user)
            question = Question(text, user, PLATFORM, command.get("channel_id", ""), thread)

            async def deliver(reply: Reply) -> None:
                if reply.status != ANSWERED:
                    await respond(text=escape(reply.message), response_type="ephemeral")
                    return
                blocks, fallback = to_blocks(reply.answer, reply.answer_id, ephemeral=True)
                await respond(text=fallback, blocks=blocks, response_type="ephemeral")

            await self.service.ask(question, deliver=deliver)
        except Exception:
            logger.exception("/ask failed")
            await self._respond_quietly(respond, ERROR_MESSAGE)

    async def on_shortcut(self, ack, body, client, respond):
        """The "Ask advisor" message shortcut: answer that message's text in its thread."""
        await ack()
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id", "")
        thread = message.get("thread_ts") or message.get("ts")
        question = Question(clean_text(message.get("text", "")), (body.get("user") or {}).get("id", ""),
                            PLATFORM, channel, thread)
        try:
            await self.service.ask(question, deliver=self._poster(client, channel, thread, respond))
        except Exception:
            logger.exception("Ask advisor shortcut failed")
            await self._post_quietly(client, channel, thread, ERROR_MESSAGE)

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
                await respond(text="That answer is no longer available; please ask again.", replace_original=False)
                return
            key = (answer_id, channel, thread)
            if key in self.shared:
                await respond(text="That answer is already shared here.", replace_original=False)
                return
            self.shared.put(key, True)
            blocks, text = to_blocks(answer, answer_id, shared_by=user)
            try:
                await self._post(client, channel, thread or None, text=text, blocks=blocks)
            except Exception:
                self.shared.pop(key, None)
                raise
            await respond(text="Shared in the channel.", replace_original=True)
        except SlackApiError as exc:
            hint = INVITE_HINT if slack_error(exc) in NOT_IN_CHANNEL else ERROR_MESSAGE
            logger.warning("Sharing %s in %s failed: %s", answer_id, channel, slack_error(exc))
            await self._respond_quietly(respond, hint)
        except Exception:
            logger.exception("Sharing %s failed", answer_id)
            await self._respond_quietly(respond, ERROR_MESSAGE)

    async def on_helpful(self, ack, body, action, respond):
        await ack()
        ok = await self.service.feedback(action.get("value", ""), True, (body.get("user") or {}).get("id", ""),
                                         PLATFORM)
        await self._respond_quietly(respond, "Thanks for the feedback!" if ok else
                                    "I couldn't record that feedback; please try again.")

    async def on_not_helpful(self, ack, body, action, client, respond):
        """Record "not helpful" at once, then offer a short form for the reason."""
        await ack()
        answer_id = action.get("value", "")
        ok = await self.service.feedback(answer_id, False, (body.get("user") or {}).get("id", ""), PLATFORM)
        if not ok:
            await self._respond_quietly(respond, "I couldn't record that feedback; please try again.")
            return
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=feedback_view(answer_id))
        except Exception as exc:  # the verdict is recorded; the reason is optional
            logger.warning("Could not open the feedback form: %s", exc)
            await self._respond_quietly(respond, "Thanks for the feedback!")

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


def web_client(tokens: SlackTokens) -> AsyncWebClient:
    """The Web API client for the bot token (SLACK_API_URL, when set, points it at a mock), with retries.

    bolt hands every listener a copy of this client, retry handlers included.
    """
    return AsyncWebClient(token=tokens.bot_token, base_url=tokens.api_url or AsyncWebClient.BASE_URL,
                          retry_handlers=retry_handlers())


def create_app(service: ChatService, tokens: SlackTokens, client: AsyncWebClient | None = None) -> AsyncApp:
    """The bolt AsyncApp with the advisor's listeners; answers run after the acknowledgement."""
    app = AsyncApp(name="advisor", client=client or web_client(tokens), signing_secret=tokens.signing_secret,
                   process_before_response=False, logger=logging.getLogger("slack_bolt"))
    SlackAdapter(service, app)
    app.advisor_signing_secret = tokens.signing_secret  # for create_web_app, which checks signatures before bolt
    return app


def create_web_app(app: AsyncApp, service: ChatService, path: str = EVENTS_PATH) -> web.Application:
    """The HTTP Events API endpoint and GET /healthz.

    Only requests Slack signed reach bolt: the signature is checked on the raw bytes first, so unsigned garbage
    (not JSON, a JSON list, not UTF-8) gets a 401 and one log line, never a parse error. A signed request seen
    before is a replay: acknowledged, not answered again.
    """
    store = service.store
    signed = SignedRequests(app.advisor_signing_secret, store.claim_event if store is not None else None)

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        why = signed.refusal(body, request.headers)
        if why:
            logger.warning("Refused a request to %s: %s", path, why)  # never the body: user ids, questions
            return web.json_response({"error": "invalid request"}, status=401)
        if signed.replayed(request.headers):
            logger.warning("Ignored a replayed request to %s (its signature was already used)", path)
            return web.Response(status=200, text="")
        bolt_request = AsyncBoltRequest(body=body.decode("utf-8"), query=request.query_string,
                                        headers=request.headers)
        return await to_aiohttp_response(await app.async_dispatch(bolt_request))

    web_app = web.Application()
    web_app.add_routes([web.post(path, events)])
    health.add_route(web_app, service)  # 200 when the index is loaded and the store writable, else 503
    return web_app


async def check_auth(client: AsyncWebClient) -> None:
    """Fail at start, naming what to set, when Slack refuses the bot token."""
    try:
        result = await client.auth_test()
        logger.info("Connected to Slack as %s in %s", result.get("user"), result.get("team"))
    except SlackApiError as exc:
        error = slack_error(exc)
        if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"):
            raise SettingsError(f"Slack refused SLACK_BOT_TOKEN ({error}); set it to the app's current Bot "
                                "User OAuth Token (OAuth & Permissions).") from None
        logger.warning("auth.test failed (%s); carrying on", error)
    except Exception as exc:  # network trouble at start: bolt retries on the first request
        logger.warning("Could not reach Slack to check the token: %s", exc)


async def start_http_server(app: AsyncApp, service: ChatService, host: str = "127.0.0.1",
                            port: int = 3000) -> tuple[web.AppRunner, int]:
    """Serve the app over HTTP on the running loop; returns the runner (to clean up) and the bound port."""
    return await health.listen(create_web_app(app, service), host, port,
                               "choose another --port, or --host 127.0.0.1 / 0.0.0.0.")


@contextlib.asynccontextmanager
async def _health_server(service: ChatService, address: tuple[str, int] | None):
    """GET /healthz on ADVISOR_HEALTH_PORT beside the app (container health checks), when it is set."""
    if address is None:
        yield
        return
    runner, port = await health.start(service, *address)
    logger.info("Health check on http://%s:%d%s", address[0], port, health.HEALTH_PATH)
    try:
        yield
    finally:
        await runner.cleanup()


async def _until_stopped(stop: asyncio.Event | None = None) -> None:
    """Wait for SIGINT/SIGTERM (or `stop`), so that a stop closes connections and the store cleanly."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_http(app: AsyncApp, service: ChatService, port: int, host: str = "127.0.0.1",
                     stop: asyncio.Event | None = None, health_address: tuple[str, int] | None = None) -> None:
    """The HTTP Events API server (with /healthz), until stopped."""
    runner, port = await start_http_server(app, service, host, port)
    sys.stderr.write(f"Slack app listening on http://{host}:{port}{EVENTS_PATH} (health: /healthz)\n")
    try:
        if health_address is not None and health_address[1] == port:
            health_address = None  # the app's own port already answers /healthz
        async with _health_server(service, health_address):
            await _until_stopped(stop)
    finally:
        await runner.cleanup()


async def serve_socket_mode(app: AsyncApp, app_token: str, stop: asyncio.Event | None = None,
                            service: ChatService | None = None,
                            health_address: tuple[str, int] | None = None) -> None:
    """Socket Mode (no public URL needed), until stopped; /healthz on `health_address` when given."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(app, app_token)
    try:  # ask for the WebSocket URL once here: a refused app token is a settings error, not endless retries
        handler.client.wss_uri = await handler.client.issue_new_wss_url()
    except SlackApiError as exc:
        await handler.close_async()
        raise SettingsError(f"Slack refused SLACK_APP_TOKEN ({slack_error(exc)}); set it to an app-level "
                            "token with connections:write (Basic Information > App-Level Tokens).") from None
    try:
        async with _health_server(service, health_address if service is not None else None):
            await handler.connect_async()
            sys.stderr.write("Slack app connected in Socket Mode.\n")
            await _until_stopped(stop)
    finally:
        await handler.close_async()


def run(settings, args) -> int:
    """`advisor serve slack [--http --host H --port N]`: check the tokens, load the index, then serve."""
    http = bool(getattr(args, "http", False))
    tokens = tokens_from_env(http)  # before the slow model load
    health_address = health.address_from_env()
    client = web_client(tokens)
    asyncio.run(check_auth(client))
    sys.stderr.write("Loading the advisor's index (the first run builds it)...\n")
    service = ChatService.from_settings(settings)
    app = create_app(service, tokens, client)
    try:
        if http:
            asyncio.run(serve_http(app, service, getattr(args, "port", 3000), getattr(args, "host", "127.0.0.1"),
                                   health_address=health_address))
        else:
            asyncio.run(serve_socket_mode(app, tokens.app_token, service=service, health_address=health_address))
    except KeyboardInterrupt:
        pass
    finally:
        service.store.close()
    return 0
