"""The shared guards: token-bucket rate limit, duplicate filter, bounded worker pool."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bot.guards import BoundedDict, Busy, DuplicateFilter, RateLimiter, WorkerPool


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_rate_limiter_allows_a_burst_then_refills():
    clock = Clock()
    limiter = RateLimiter(per_minute=6, burst=3, clock=clock)
    assert [limiter.take("u") for _ in range(3)] == [0, 0, 0]
    wait = limiter.take("u")
    assert wait == pytest.approx(10.0)  # one token every 10 s
    assert limiter.take("other") == 0  # per key
    clock.now += 10
    assert limiter.take("u") == 0
    assert limiter.take("u") > 0


def test_rate_limiter_gives_back_a_token():
    limiter = RateLimiter(per_minute=1, burst=1, clock=Clock())
    assert limiter.take("u") == 0
    limiter.give_back("u")
    assert limiter.take("u") == 0


def test_duplicate_filter_window_and_forget():
    clock = Clock()
    dups = DuplicateFilter(window=30, clock=clock)
    assert dups.first("k")
    assert not dups.first("k")
    clock.now += 31
    assert dups.first("k")
    dups.forget("k")
    assert dups.first("k")


def test_bounded_dict_forgets_least_recently_used():
    d = BoundedDict(2)
    d.put("a", 1)
    d.put("b", 2)
    d.touch("a")
    d.put("c", 3)
    assert list(d) == ["a", "c"]


async def test_worker_pool_bounds_concurrency_and_queue():
    pool = WorkerPool(workers=2, queue=1)
    release = threading.Event()
    running = []
    lock = threading.Lock()
    peak = 0

    def work(i):
        nonlocal peak
        with lock:
            running.append(i)
            peak = max(peak, len(running))
        release.wait(5)
        with lock:
            running.remove(i)
        return i

    tasks = [asyncio.create_task(pool.run(work, i)) for i in range(3)]
    await asyncio.sleep(0.05)
    assert pool.pending == 3
    with pytest.raises(Busy):
        await pool.run(work, 99)  # 2 running + 1 queued: full
    release.set()
    assert sorted(await asyncio.gather(*tasks)) == [0, 1, 2]
    assert peak == 2
    assert pool.pending == 0 and pool.peak == 3


async def test_worker_pool_propagates_exceptions_and_frees_its_slot():
    pool = WorkerPool(workers=1, queue=0)

    def boom():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await pool.run(boom)
    assert pool.pending == 0
    assert await pool.run(lambda: 7) == 7


def test_worker_pool_works_across_event_loops():
    pool = WorkerPool(workers=1, queue=0)
    for _ in range(2):
        loop = asyncio.new_event_loop()
        try:
            assert loop.run_until_complete(pool.run(lambda: 1)) == 1
        finally:
            loop.close()
