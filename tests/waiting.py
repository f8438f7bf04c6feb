"""Bounded waits on an app started as a subprocess: until it answers its health check, until it stops."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path

import aiohttp


async def wait_until_healthy(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen, log: Path,
                             seconds: float = 120) -> None:
    """Poll GET `url` until it answers 200; fail with the app's log if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        assert time.monotonic() < deadline, f"the app did not start within {seconds:.0f} s:\n{log.read_text()}"
        await asyncio.sleep(0.2)


def stop(proc: subprocess.Popen, seconds: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within `seconds`."""
    proc.terminate()
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
