"""A mock Discord REST API on 127.0.0.1 (aiohttp): canned JSON for what the bot calls, every request recorded."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Callable

from aiohttp import web

API = "/api/v10"
APPLICATION_ID = "1200000000000000000"
BOT_USER = {"id": "1200000000000000000", "username": "advisor", "global_name": "advisor", "discriminator": "0",
            "avatar": None, "bot": True, "public_flags": 0, "flags": 0}
OWNER = {"id": "1000000000000000009", "username": "owner", "discriminator": "0", "avatar": None, "public_flags": 0}
APPLICATION = {"id": APPLICATION_ID, "name": "advisor", "description": "PM career advice", "icon": None,
               "bot_public": True, "bot_require_code_grant": False, "owner": OWNER, "verify_key": "00", "flags": 0}
DEFAULT_CHANNEL_ID = "1110000000000000000"


@dataclass
class Request:
    """One request the bot made: method, path under /api/v10, query, parsed JSON body."""

    method: str
    path: str
    query: dict = field(default_factory=dict)
    body: dict | list | None = None
    response: dict | list | None = None  # what the mock answered

    @property
    def is_message(self) -> bool:
        """True when the request sends or edits a message (content, embeds or components)."""
        if "/callback" in self.path and isinstance(self.body, dict) and self.body.get("type") not in (4, 7):
            return False  # a defer, or a modal (its components are a form, not a message)
        data = self.message
        return bool(data) and any(k in data for k in ("content", "embeds", "components"))

    @property
    def message(self) -> dict:
        """The message part of the body (an interaction callback carries it under "data")."""
        if not isinstance(self.body, dict):
            return {}
        if "/callback" in self.path:
            return self.body.get("data") or {}
        return self.body


class MockDiscordAPI:
    """`async with MockDiscordAPI() as api:`, then patch discord.http.Route.BASE to `api.base`.

    `api.fail(method, path_regex, status, code)` makes matching requests fail; `api.channels[id]` is what
    GET /channels/{id} returns. Nothing is sent anywhere but 127.0.0.1.
    """

    def __init__(self):
        self.requests: list[Request] = []
        self.channels: dict[str, dict] = {}
        self.failures: list[tuple[str, re.Pattern, int, int, str]] = []
        self._ids = itertools.count(1400000000000000001)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def __aenter__(self) -> "MockDiscordAPI":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}{API}"
        return self

    async def __aexit__(self, *exc) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what the tests use -------------------------------------------------------------------

    def fail(self, method: str, path: str, status: int = 403, code: int = 50013,
             message: str = "Missing Permissions") -> None:
        self.failures.append((method, re.compile(path), status, code, message))

    def find(self, method: str | None = None, path: str = "") -> list[Request]:
        """Requests with this method whose path matches the regex `path`."""
        return [r for r in self.requests if (method is None or r.method == method) and re.search(path, r.path)]

    async def wait_for(self, method: str, path: str, count: int = 1, timeout: float = 10.0) -> list[Request]:
        """Wait until `count` matching requests were made; fail the test after `timeout` seconds."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(self.find(method, path)) >= count),
                                       timeout)
            except asyncio.TimeoutError:
                seen = "\n".join(f"  {r.method} {r.path}" for r in self.requests)
                raise AssertionError(f"no {count} x {method} {path} within {timeout}s; requests:\n{seen}") from None
        return self.find(method, path)

    # -- the server ---------------------------------------------------------------------------

    def snowflake(self) -> str:
        return str(next(self._ids))

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path.removeprefix(API)
        body = await _read_body(request)
        recorded = Request(request.method, path, dict(request.query), body)
        self.requests.append(recorded)
        async with self._changed:
            self._changed.notify_all()
        for method, pattern, status, code, message in self.failures:
            if method == request.method and pattern.search(path):
                return _json({"message": message, "code": code}, status)
        status, payload = self._respond(request.method, path, body if isinstance(body, (dict, list)) else {})
        recorded.response = payload
        if payload is None:
            return web.Response(status=status)
        return _json(payload, status)

    def _respond(self, method: str, path: str, body) -> tuple[int, dict | list | None]:
        routes: list[tuple[str, str, Callable]] = [
            ("GET", r"^/users/@me$", lambda m: BOT_USER),
            ("GET", r"^/oauth2/applications/@me$", lambda m: APPLICATION),
            ("PUT", r"^/applications/\d+(/guilds/\d+)?/commands$", lambda m: self._commands(body)),
            ("POST", r"^/interactions/(\d+)/[^/]+/callback$", lambda m: self._callback(m[1], body)),
            ("POST", r"^/webhooks/\d+/[^/]+$", lambda m: self._message(DEFAULT_CHANNEL_ID, body, webhook=True)),
            ("PATCH", r"^/webhooks/\d+/[^/]+/messages/[^/]+$",
             lambda m: self._message(DEFAULT_CHANNEL_ID, body, webhook=True)),
            ("GET", r"^/webhooks/\d+/[^/]+/messages/[^/]+$", lambda m: self._message(DEFAULT_CHANNEL_ID, {})),
            ("DELETE", r"^/webhooks/\d+/[^/]+/messages/[^/]+$", lambda m: None),
            ("POST", r"^/channels/(\d+)/messages$", lambda m: self._message(m[1], body)),
            ("POST", r"^/channels/\d+/typing$", lambda m: None),
            ("GET", r"^/channels/(\d+)$", lambda m: self.channels.get(m[1], 404)),
        ]
        for verb, pattern, make in routes:
            match = re.match(pattern, path)
            if verb == method and match:
                payload = make(match)
                if payload == 404:
                    return 404, {"message": "Unknown Channel", "code": 10003}
                return (204, None) if payload is None else (200, payload)
        return 404, {"message": "404: Not Found", "code": 0}

    def _commands(self, body) -> list[dict]:
        commands = body if isinstance(body, list) else []
        return [{"id": self.snowflake(), "application_id": APPLICATION_ID, "version": "1",
                 "default_member_permissions": None, "description": "", **c} for c in commands]

    def _callback(self, interaction_id: str, body: dict) -> dict:
        kind = body.get("type", 0)
        data = body.get("data") or {}
        message = self._message(DEFAULT_CHANNEL_ID, data, webhook=True) if kind in (4, 5, 7) else None
        result = {"interaction": {"id": interaction_id, "type": 2, "response_message_id": message and message["id"],
                                  "response_message_loading": kind == 5,
                                  "response_message_ephemeral": bool(data.get("flags", 0) & 64)},
                  "resource": {"type": kind}}
        if message:
            result["resource"]["message"] = message
        return result

    def _message(self, channel_id: str, body: dict, webhook: bool = False) -> dict:
        message = {
            "id": self.snowflake(), "channel_id": channel_id, "author": BOT_USER, "content": body.get("content") or "",
            "timestamp": "2025-01-01T00:00:00+00:00", "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [],
            "embeds": body.get("embeds") or [], "components": body.get("components") or [], "pinned": False,
            "type": 19 if body.get("message_reference") else 0, "flags": body.get("flags", 0),
        }
        if webhook:
            message.update(webhook_id=APPLICATION_ID, application_id=APPLICATION_ID)
        if body.get("message_reference"):
            message["message_reference"] = body["message_reference"]
        return message


def _json(payload, status: int) -> web.Response:
    # exactly "application/json", without a charset: discord.py compares the header as a whole
    return web.Response(body=json.dumps(payload).encode(), status=status, headers={"Content-Type": "application/json"})


async def _read_body(request: web.Request):
    """JSON, or the payload_json part of a multipart body (discord.py sends files that way)."""
    if not request.can_read_body:
        return None
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if part.name == "payload_json":
                return json.loads(await part.text())
        return None
    raw = await request.read()
    return json.loads(raw) if raw else None
