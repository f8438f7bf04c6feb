"""A fake OpenAI-compatible chat-completions server on 127.0.0.1 that replies as told and records every request."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    """One request the server received: path, headers (lower-case names) and the parsed JSON body."""

    path: str
    headers: dict
    body: dict


class FakeLLMServer:
    """Start with `with FakeLLMServer() as llm:` and point ADVISOR_LLM_URL at `llm.base_url`.

    Set before a request: `reply` (the message content to return), or `status` (an HTTP error status),
    or `raw` (bytes sent as the body, e.g. malformed JSON), and `delay` (seconds to wait before replying;
    the wait ends at once when the server stops, so a slow test never outlives its server).
    """

    def __init__(self, reply: str = "", status: int = 200, raw: bytes | None = None, delay: float = 0.0):
        self.reply, self.status, self.raw, self.delay = reply, status, raw, delay
        self.requests: list[Request] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-llm", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "FakeLLMServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if fake.delay and fake._stopping.wait(fake.delay):
                    return  # stopping: drop the connection without a reply
                if fake.raw is not None:
                    payload = fake.raw
                elif fake.status != 200:
                    payload = json.dumps({"error": {"message": "fake failure", "type": "server_error"}}).encode()
                else:
                    payload = json.dumps({
                        "id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model", ""),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": fake.reply}}],
                    }).encode()
                try:
                    self.send_response(fake.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to do

            def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
                pass

        return Handler
