"""Serving the Slack app: the HTTP Events API (signatures checked first) or Socket Mode, with /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import health
from bot.service import ChatService
from bot.settings import SettingsError
from bot.slack.app import create_app
from bot.slack.client import slack_error, web_client
from bot.slack.settings import tokens_from_env
from bot.slack.signature import SignedRequests
from bot.slack.threads import follow_ups_from_env

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


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
        if await asyncio.to_thread(signed.replayed, request.headers):  # may claim in a shared database
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
    follow_ups_from_env(None)  # a bad ADVISOR_SLACK_THREAD_FOLLOW_UPS fails now, not after the model loads
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
