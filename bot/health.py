"""GET /healthz for every platform: 200 when the index is loaded and the store (file or database) writable, else 503."""

from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web

from bot.settings import SettingsError
from bot.variables import value

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
PORT_ENV, HOST_ENV = "ADVISOR_HEALTH_PORT", "ADVISOR_HEALTH_HOST"


async def healthz(service) -> web.Response:
    """The service's health report as JSON; the checks run in a worker thread (SQLite may wait for its lock)."""
    report = await asyncio.to_thread(service.health)
    if report["failed"]:
        logger.warning("Health check failing: %s", ", ".join(report["failed"]))
    return web.json_response(report, status=200 if report["status"] == "ok" else 503)


def add_route(web_app: web.Application, service) -> None:
    """Serve GET /healthz for `service` on an existing aiohttp application."""

    async def handler(request: web.Request) -> web.Response:
        return await healthz(service)

    web_app.add_routes([web.get(HEALTH_PATH, handler)])


def address_from_env() -> tuple[str, int] | None:
    """(host, port) from ADVISOR_HEALTH_HOST / ADVISOR_HEALTH_PORT; None when no port is set."""
    port = value(PORT_ENV)
    return None if port is None else (value(HOST_ENV), port)


async def listen(web_app: web.Application, host: str, port: int, hint: str,
                 purpose: str = "") -> tuple[web.AppRunner, int]:
    """Serve an aiohttp application on the running loop; returns the runner (to clean up) and the bound port
    (0 picks one). A port that cannot be had is a SettingsError: "Cannot listen on host:port[ purpose] (why);
    hint"."""
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise SettingsError(f"Cannot listen on {host}:{port}{purpose} ({exc.strerror or exc}); {hint}") from None
    return runner, runner.addresses[0][1]


async def start(service, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve /healthz on the running loop; returns the runner (to clean up) and the bound port (0 picks one)."""
    web_app = web.Application()
    add_route(web_app, service)
    return await listen(web_app, host, port, f"set {PORT_ENV} to a free port.", f" for {HEALTH_PATH}")


class HealthThread:
    """/healthz on its own thread and event loop, for apps whose loop belongs to their SDK (discord.py's run)."""

    def __init__(self, service, host: str, port: int):
        self.service, self.host, self.port = service, host, port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="advisor-health", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            runner, self.port = self._loop.run_until_complete(start(self.service, self.host, self.port))
        except Exception as exc:
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

    def start(self) -> "HealthThread":
        """Start listening; raises SettingsError when the port cannot be bound."""
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


def start_in_thread_from_env(service) -> HealthThread | None:
    """A running HealthThread when ADVISOR_HEALTH_PORT is set, else None."""
    address = address_from_env()
    if address is None:
        return None
    health = HealthThread(service, *address).start()
    logger.info("Health check on http://%s:%d%s", health.host, health.port, HEALTH_PATH)
    return health
