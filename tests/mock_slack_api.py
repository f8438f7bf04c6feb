"""A mock Slack Web API on 127.0.0.1: a threaded http.server that returns canned JSON and records every call."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

import aiohttp

SECRET = "0123456789abcdef0123456789abcdef"  # fake signing secret
BOT_TOKEN = "xoxb-1111-2222-faketoken"  # fake
BOT_USER_ID = "UBOTADVISOR"
BOT_ID = "BBOTADVISOR"
TEAM_ID = "T0MOCKTEAM"


@dataclass
class Call:
    """One request the app made: the API method (or response_url path), its parsed body, when."""

    path: str
    body: dict
    headers: dict = field(default_factory=dict)
    at: float = 0.0

    @property
    def method(self) -> str:
        return self.path.removeprefix("/api/")


def _parse(content_type: str, raw: bytes, query: str) -> dict:
    body: dict = dict(parse_qsl(query))
    if not raw:
        return body
    text = raw.decode("utf-8")
    if "json" in content_type:
        body.update(json.loads(text))
    else:
        body.update(parse_qsl(text))
        for key in ("blocks", "view"):  # the SDK sends these as JSON strings in forms
            if isinstance(body.get(key), str):
                body[key] = json.loads(body[key])
    return body


class MockSlackAPI:
    """Start with `with MockSlackAPI() as api:`; point the app at `api.url`, response_urls at `api.response_url()`.

    `api.responses[method]` overrides the canned answer of one API method (a dict, or a function of the body);
    `api.refuse(method, status, times)` makes its next calls fail as Slack's servers do.
    """

    def __init__(self):
        self.calls: list[Call] = []
        self.responses: dict[str, dict | Callable[[dict], dict]] = {}
        self.refusals: dict[str, list[tuple[int, dict | str, dict]]] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = _parse(self.headers.get("Content-Type", ""), raw, parts.query)
                status, payload, headers = api._respond(parts.path, body, dict(self.headers))
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="mock-slack-api",
                                        daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "MockSlackAPI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "MockSlackAPI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The Web API base URL (SLACK_API_URL)."""
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"http://127.0.0.1:{self.port}/response/{name}"

    # -- canned answers ------------------------------------------------------------------------

    def refuse(self, method: str, status: int, times: int = 1, retry_after: int = 1) -> None:
        """Fail the next `times` calls to `method` as Slack does: 429 "ratelimited" with Retry-After, or a 5xx
        whose body is a plain-text error page, not JSON."""
        if status == 429:
            refusal = (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
        else:
            refusal = (status, "Internal Server Error", {})
        with self._lock:
            self.refusals.setdefault(method, []).extend([refusal] * times)

    def _respond(self, path: str, body: dict, headers: dict) -> tuple[int, dict | str, dict]:
        with self._lock:
            self.calls.append(Call(path, body, headers, time.monotonic()))
            ts = f"1700000000.{next(self._ts):06d}"
            refusals = self.refusals.get(path.removeprefix("/api/"))
            if refusals:
                return refusals.pop(0)
        return (*self._answer(path, body, ts), {})

    def _answer(self, path: str, body: dict, ts: str) -> tuple[int, dict | str]:
        if path.startswith("/response/"):
            return 200, "ok"
        if not path.startswith("/api/"):
            return 404, {"ok": False, "error": "unknown_path"}
        method = path.removeprefix("/api/")
        override = self.responses.get(method)
        if override is not None:
            return 200, override(body) if callable(override) else override
        if method == "auth.test":
            return 200, {"ok": True, "url": "https://mock.slack.com/", "team": "Mock", "user": "advisor",
                         "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID}
        if method == "chat.postMessage":
            return 200, {"ok": True, "channel": body.get("channel"), "ts": ts,
                         "message": {"text": body.get("text", ""), "ts": ts, "bot_id": BOT_ID}}
        if method == "chat.postEphemeral":
            return 200, {"ok": True, "message_ts": ts}
        if method == "conversations.replies":
            return 200, {"ok": True, "messages": [], "has_more": False}
        if method == "views.publish":  # the Home tab: Slack refuses more than 100 blocks
            view = body.get("view") or {}
            if view.get("type") != "home" or len(view.get("blocks") or []) > 100:
                return 200, {"ok": False, "error": "invalid_arguments"}
        if method.startswith("views."):
            return 200, {"ok": True, "view": {"id": "V0MOCK", **(body.get("view") or {})}}
        if method.startswith("assistant.threads."):
            if not (body.get("channel_id") and body.get("thread_ts")):
                return 200, {"ok": False, "error": "invalid_arguments"}
            if method == "assistant.threads.setSuggestedPrompts" and not 0 < len(body.get("prompts") or []) <= 4:
                return 200, {"ok": False, "error": "invalid_arguments"}
            return 200, {"ok": True}
        if method in ("reactions.add", "reactions.remove"):
            if not (body.get("channel") and body.get("timestamp") and body.get("name")):
                return 200, {"ok": False, "error": "invalid_arguments"}
            return 200, {"ok": True}
        return 200, {"ok": True}

    # -- what happened ---------------------------------------------------------------------------

    def position(self, call: Call) -> int:
        """Where a call came in the order of all calls (to check that one came before another)."""
        with self._lock:
            return next(i for i, c in enumerate(self.calls) if c is call)

    def calls_to(self, path: str) -> list[Call]:
        """Calls to an API method ("chat.postMessage") or to a path ("/response/r1")."""
        with self._lock:
            return [c for c in self.calls if c.method == path or c.path == path]

    async def wait_async(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait until at least `count` calls to `path` arrived (or the timeout passed), without blocking the
        event loop the app runs on; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls_to(path)
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(0.01)


def sign(secret: str, body: str, timestamp: int | None = None) -> dict:
    """The headers Slack sends with a request: v0 HMAC-SHA256 of "v0:{timestamp}:{body}"."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


class SlackSender:
    """Slack's side of the HTTP Events API: signed events, slash commands and interactions to the app.

    Each method returns (HTTP status, seconds until the acknowledgement, response text).
    """

    def __init__(self, session, url: str, secret: str):
        self.session, self.url, self.secret = session, url, secret

    async def send(self, body: str, content_type: str, headers: dict | None = None, secret: str | None = None,
                   timestamp: int | None = None) -> tuple[int, float, str]:
        all_headers = {"Content-Type": content_type, **sign(secret or self.secret, body, timestamp), **(headers or {})}
        started = time.perf_counter()
        async with self.session.post(self.url, data=body.encode(), headers=all_headers) as resp:
            text = await resp.text()
            return resp.status, time.perf_counter() - started, text

    async def event(self, payload: dict, retry: int | None = None, **kwargs) -> tuple[int, float, str]:
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        return await self.send(json.dumps(payload), "application/json", headers, **kwargs)

    async def command(self, form: dict, **kwargs) -> tuple[int, float, str]:
        from urllib.parse import urlencode

        return await self.send(urlencode(form), "application/x-www-form-urlencoded", **kwargs)

    async def interaction(self, payload: dict, **kwargs) -> tuple[int, float, str]:
        from urllib.parse import urlencode

        return await self.send(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded",
                               **kwargs)


class Slack:
    """An in-process app on 127.0.0.1, the mock Web API it talks to, and a signed sender."""

    def __init__(self, api: MockSlackAPI, service, sender: SlackSender, url: str, app=None):
        self.api, self.service, self.sender, self.url, self.app = api, service, sender, url, app


@contextlib.asynccontextmanager
async def serve(api: MockSlackAPI, service):
    """The real bolt app for `service` over HTTP on 127.0.0.1, talking to `api`; stops cleanly."""
    from bot.slack.app import create_app
    from bot.slack.serve import start_http_server
    from bot.slack.settings import SlackTokens

    app = create_app(service, SlackTokens(BOT_TOKEN, signing_secret=SECRET, api_url=api.url))
    runner, port = await start_http_server(app, service, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            url = f"http://127.0.0.1:{port}"
            yield Slack(api, service, SlackSender(session, f"{url}/slack/events", SECRET), url, app)
    finally:
        await runner.cleanup()
        # let the app's listeners still running finish, so nothing of it outlives the test; only those: other
        # servers of the test (the mock Discord API, say) run until their own teardown
        handlers = listener_runs()
        if handlers:
            _, late = await asyncio.wait(handlers, timeout=HANDLER_DEADLINE)
            assert not late, f"Slack listeners still running {HANDLER_DEADLINE} s after the test: {late}"


HANDLER_DEADLINE = 10  # seconds; a bound for a listener that hangs, not a wait: finished listeners end it at once


def listener_runs() -> list[asyncio.Task]:
    """The tasks in which bolt runs a listener after its ack (`asyncio_runner.run_ack_function_asynchronously`)."""
    return [t for t in asyncio.all_tasks() if not t.done()
            and getattr(t.get_coro(), "__qualname__", "").endswith("run_ack_function_asynchronously")]

