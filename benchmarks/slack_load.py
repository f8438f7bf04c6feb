"""Bounded Slack load test on loopback: signed app_mention events from concurrent senders against the in-process app.

    python benchmarks/slack_load.py                   # 200 mentions, 20 senders, fake embedder
    python benchmarks/slack_load.py --real            # the real model (index in $ADVISOR_DATA_DIR or ./.advisor)
    python benchmarks/slack_load.py --retries 0.2     # also re-send 20% of the events as Slack retries

Prints acknowledgement latency (p50/p95/max), how many questions got exactly one reply, more than one, or none,
and how many of the replies were answers rather than "busy".
Stops by itself: senders finish, then it waits at most --deadline seconds for the answers.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bot.guards import Limits  # noqa: E402
from bot.service import ChatService  # noqa: E402
from bot.slack_adapter import SlackTokens, create_app, start_http_server  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.mock_slack_api import MockSlackAPI, SlackSender  # noqa: E402

SECRET = "0123456789abcdef0123456789abcdef"  # fake
QUESTIONS = [
    "does a Series A startup hire ML PMs?", "what is the difference between an AI PM and an ML PM?",
    "how do I move from data analyst to data PM?", "what skills does an ML PM need?",
    "do big tech companies hire AI PMs?", "what does a data PM own?", "how technical must an AI PM be?",
    "who owns model evaluation, the PM or the scientists?", "what is a typical AI PM interview like?",
    "is an AI PM title worth more than an ML PM title?",
]


def make_advisor(real: bool, workdir: Path):
    from bot.core import Advisor
    from bot.settings import Settings
    from retrieval.engine import Engine

    if real:
        advisor = Advisor.from_settings(Settings.from_env())
    else:
        from tests.fakes import HashingEmbedder

        advisor = Advisor(Engine(ROOT / "corpus", workdir / "index", HashingEmbedder()))
    advisor.prepare()
    return advisor


def mention(i: int) -> dict:
    ts = f"{1700000000 + i}.{i:06d}"
    return {
        "type": "event_callback", "team_id": "T0MOCKTEAM", "api_app_id": "A0ADVISOR", "event_id": f"Ev{i:06d}",
        "event_time": 1700000000 + i,
        "event": {"type": "app_mention", "user": f"U{i:06d}", "channel": f"C{i % 7:03d}", "ts": ts,
                  "event_ts": ts, "text": f"<@UBOTADVISOR> {QUESTIONS[i % len(QUESTIONS)]}"},
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def main(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="slack-load-"))
    advisor = make_advisor(args.real, workdir)
    limits = Limits(workers=args.workers, queue=args.queue)
    store = Store(workdir / "advisor.sqlite3")
    service = ChatService(advisor, store, limits)
    events = [mention(i) for i in range(args.events)]
    rng = random.Random(7)
    retried = {e["event_id"] for e in events if rng.random() < args.retries}
    queue: asyncio.Queue = asyncio.Queue()
    for e in events:
        queue.put_nowait((e, None))
        if e["event_id"] in retried:
            queue.put_nowait((copy.deepcopy(e), 1))
    acks: list[float] = []
    statuses: Counter = Counter()

    with MockSlackAPI() as api:
        app = create_app(service, SlackTokens("xoxb-1-2-fake", signing_secret=SECRET, api_url=api.url))
        runner, port = await start_http_server(app, service, "127.0.0.1", 0)
        started = time.perf_counter()
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
                sender = SlackSender(session, f"http://127.0.0.1:{port}/slack/events", SECRET)

                async def send_all():
                    while not queue.empty():
                        event, retry = queue.get_nowait()
                        try:
                            status, elapsed, _ = await sender.event(event, retry=retry)
                        except Exception as exc:  # a refused connection counts, it does not stop the run
                            status, elapsed = type(exc).__name__, float("inf")
                        statuses[status] += 1
                        acks.append(elapsed)

                await asyncio.gather(*(send_all() for _ in range(args.senders)))
                sent = time.perf_counter() - started
                deadline = time.monotonic() + args.deadline
                while len({c.body.get("thread_ts") for c in api.calls_to("chat.postMessage")}) < len(events):
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)  # anything late (a second answer) would show up now
                answered_at = time.perf_counter() - started
        finally:
            await runner.cleanup()
        posts = api.calls_to("chat.postMessage")

    per_thread = Counter(c.body.get("thread_ts") for c in posts)
    kinds = Counter("answer" if c.body.get("blocks") else "message" for c in posts)
    expected = {e["event"]["ts"] for e in events}
    once = sum(1 for ts in expected if per_thread[ts] == 1)
    twice = sum(1 for ts in expected if per_thread[ts] > 1)
    lost = sum(1 for ts in expected if per_thread[ts] == 0)
    busy = sum(1 for c in posts if "answering a lot of questions" in c.body.get("text", ""))
    figures = {
        "model": "real (all-MiniLM-L6-v2)" if args.real else "fake (hashing embedder)",
        "events": len(events), "retries sent": len(retried), "senders": args.senders,
        "workers/queue": f"{limits.workers}/{limits.queue}",
        "ack statuses": dict(statuses),
        "ack p50 ms": round(percentile(acks, 50) * 1000, 1), "ack p95 ms": round(percentile(acks, 95) * 1000, 1),
        "ack max ms": round(max(acks) * 1000, 1), "acks over 3 s": sum(1 for a in acks if a >= 3),
        "replied exactly once": once, "replied more than once": twice, "lost (no reply)": lost,
        "answers (Block Kit)": kinds["answer"], "busy replies": busy,
        "stored answers": store.count(), "peak questions in pool": service.pool.peak,
        "all sent in s": round(sent, 2), "all answered in s": round(answered_at, 2),
    }
    store.close()
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    ok = lost == 0 and twice == 0 and figures["acks over 3 s"] == 0 and set(statuses) == {200}
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--retries", type=float, default=0.0, help="fraction of events re-sent as Slack retries")
    parser.add_argument("--workers", type=int, default=Limits.workers)
    parser.add_argument("--queue", type=int, default=Limits.queue)
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds to wait for the answers")
    parser.add_argument("--real", action="store_true", help="use the real embedding model")
    parser.add_argument("--json", help="also write the figures to this file")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    sys.exit(asyncio.run(main(arguments)))
