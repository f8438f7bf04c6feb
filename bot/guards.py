"""Guards every platform shares: rate limit, duplicate filter and a bounded worker pool."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable, TypeVar

from retrieval.engine import MAX_QUESTION_CHARS

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """How much the service accepts; the defaults suit one 2-core machine."""

    max_chars: int = MAX_QUESTION_CHARS  # longest question accepted
    per_minute: float = 5.0  # questions per user per minute (token bucket refill)
    burst: int = 5  # questions a user may ask at once before the rate applies
    duplicate_seconds: float = 30.0  # the same question from the same place within this is answered once
    workers: int = 2  # questions answered at the same time (CPU-bound: about one per core)
    queue: int = 256  # questions waiting for a worker (a 200-question burst queues); beyond: "busy"
    threads: int = 2000  # conversations remembered for follow-ups (LRU)
    context_depth: int = 3  # earlier questions remembered per conversation
    answers: int = 2000  # answers kept in memory for sharing and feedback (the store keeps all)


class BoundedDict(OrderedDict):
    """An OrderedDict that forgets its least recently used keys beyond `maxsize`."""

    def __init__(self, maxsize: int):
        super().__init__()
        self.maxsize = max(1, maxsize)

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.maxsize:
            self.popitem(last=False)

    def touch(self, key, default=None):
        """The value of `key`, marked as recently used."""
        if key not in self:
            return default
        self.move_to_end(key)
        return self[key]


class RateLimiter:
    """A token bucket per key: `burst` at once, then `per_minute` questions a minute."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic, keys: int = 10000):
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: BoundedDict = BoundedDict(keys)  # key -> (tokens, updated)

    def _refill(self, key: Hashable) -> tuple[float, float]:
        now = self.clock()
        tokens, updated = self._buckets.touch(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - updated) * self.rate), now

    def take(self, key: Hashable) -> float:
        """Take one token. Returns 0 when allowed, else the seconds to wait before asking again."""
        tokens, now = self._refill(key)
        if tokens >= 1.0:
            self._buckets.put(key, (tokens - 1.0, now))
            return 0.0
        self._buckets.put(key, (tokens, now))
        return (1.0 - tokens) / self.rate if self.rate > 0 else math.inf

    def give_back(self, key: Hashable) -> None:
        """Return a token taken for a question that was never answered (busy, error)."""
        tokens, now = self._refill(key)
        self._buckets.put(key, (min(float(self.burst), tokens + 1.0), now))


class DuplicateFilter:
    """Remembers recent keys for `window` seconds, so that a repeated question is answered once."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic, keys: int = 10000):
        self.window = window
        self.clock = clock
        self._seen: BoundedDict = BoundedDict(keys)

    def first(self, key: Hashable) -> bool:
        """True the first time `key` is seen within the window (and records it); False for a repeat."""
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen < self.window:
            return False
        self._seen.put(key, now)
        return True

    def forget(self, key: Hashable) -> None:
        """Let the same question through again (after a failure the user is told to retry)."""
        self._seen.pop(key, None)


class Busy(Exception):
    """The pool is full: every worker is busy and the queue is at its limit."""


class WorkerPool:
    """Runs blocking calls in threads, `workers` at a time, with at most `queue` waiting.

    A burst queues instead of starving the event loop; beyond the queue, `run` raises Busy at once.
    """

    def __init__(self, workers: int, queue: int):
        self.workers = max(1, workers)
        self.capacity = self.workers + max(0, queue)
        self.pending = 0  # running + waiting; only touched from the event loop
        self.peak = 0  # the most ever pending, for load reports
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _sem(self) -> asyncio.Semaphore:
        # one semaphore per event loop: tests and the console harness may use several loops in turn
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore, self._loop = asyncio.Semaphore(self.workers), loop
        return self._semaphore

    async def run(self, fn: Callable[..., T], *args) -> T:
        if self.pending >= self.capacity:
            raise Busy(f"{self.pending} questions in progress (capacity {self.capacity})")
        self.pending += 1
        self.peak = max(self.peak, self.pending)
        try:
            async with self._sem():
                return await asyncio.to_thread(fn, *args)
        finally:
            self.pending -= 1
