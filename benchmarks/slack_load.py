"""Bounded Slack load test on loopback: signed app_mention events from concurrent senders against the in-process app.

    python benchmarks/slack_load.py                   # 200 mentions, 20 senders, fake embedder
    python benchmarks/slack_load.py --real            # the real model (index in $ADVISOR_DATA_DIR or ./.advisor)
    python benchmarks/slack_load.py --retries 0.2     # also re-send 20% of the events as Slack retries
    python benchmarks/slack_load.py --real --refuse 30  # 30 chat.postMessage calls answer 429 + Retry-After: 1

Prints acknowledgement latency (p50/p95/max), how many questions got exactly one reply, more than one, or none,
and how many of the replies were answers rather than "busy".
With --refuse N, the mock Web API refuses the first attempt of N replies, spread evenly over the run (the k-th
reply posted, for k every events/N), with 429 "ratelimited" and Retry-After --retry-after seconds; the run then
also prints how many posts were refused, how many of them were retried, and whether the retry got there. A reply
counts once it is a chat.postMessage the mock accepted (HTTP 200); refused attempts are not replies.
Stops by itself: senders finish, then it waits at most --deadline seconds for the answers (and, with refusals,
a little longer than Retry-After for any late second reply).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import logging
import random
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bot.guards import Limits  # noqa: E402
from bot.messages import ERROR as ERROR_MESSAGE  # noqa: E402
from bot.service import ChatService  # noqa: E402
from bot.slack.app import create_app  # noqa: E402
from bot.slack.serve import start_http_server  # noqa: E402
from bot.slack.settings import SlackTokens  # noqa: E402
from bot.store import Store  # noqa: E402
# The one import from tests/: the mock Slack Web API is test code (canned replies, recorded calls) the product does
# not ship, and this benchmark runs from a checkout as the suite does; a copy here would drift from the suite's.
from tests.mock_slack_api import MockSlackAPI, SlackSender  # noqa: E402

SECRET = "0123456789abcdef0123456789abcdef"  # fake
QUESTIONS = [
    "does a Series A startup hire ML PMs?", "what is the difference between an AI PM and an ML PM?",
    "how do I move from data analyst to data PM?", "what skills does an ML PM need?",
    "do big tech companies hire AI PMs?", "what does a data PM own?", "how technical must an AI PM be?",
    "who owns model evaluation, the PM or the scientists?", "what is a typical AI PM interview like?",
    "is an AI PM title worth more than an ML PM title?",
]


class RefusingSlackAPI(MockSlackAPI):
    """The mock Web API, which also records the HTTP status of every chat.postMessage and refuses chosen ones.

    The reply posted k-th (counting each thread's first attempt only) is refused when k is in `refuse_at`, through
    the mock's own `refuse()`: 429 {"ok": false, "error": "ratelimited"} with Retry-After. A retry is never
    refused, so each refused reply should be retried once and then delivered.
    """

    def __init__(self, refuse_at: set[int] = frozenset(), retry_after: int = 1):
        super().__init__()
        self.refuse_at, self.retry_after = set(refuse_at), retry_after
        self.posts: list[tuple[str | None, int, float]] = []  # (thread_ts, HTTP status, monotonic time)
        self._first_attempts = 0
        self._seen: set = set()
        self._order = threading.Lock()  # arming a refusal and answering the call are one step

    def _respond(self, path, body, headers):
        if path.removeprefix("/api/") != "chat.postMessage":
            return super()._respond(path, body, headers)
        with self._order:
            thread = body.get("thread_ts")
            if thread not in self._seen:
                self._seen.add(thread)
                self._first_attempts += 1
                if self._first_attempts in self.refuse_at:
                    self.refuse("chat.postMessage", 429, 1, retry_after=self.retry_after)
            status, payload, extra = super()._respond(path, body, headers)
            self.posts.append((thread, status, time.monotonic()))
        return status, payload, extra


def refusal_plan(events: int, refuse: int) -> set[int]:
    """Which replies (1-based, in the order they are posted) to refuse: `refuse` of them, evenly over `events`."""
    refuse = max(0, min(refuse, events))
    return {1 + int((i + 0.5) * events / refuse) for i in range(refuse)} if refuse else set()


def make_advisor(real: bool, workdir: Path):
    from bot.core import Advisor
    from bot.settings import Settings

    if real:
        advisor = Advisor.from_settings(Settings.from_env())
    else:  # the fake model by name, as `ADVISOR_MODEL=fake:hashing` selects it
        advisor = Advisor.from_settings(Settings(corpus_dir=ROOT / "corpus", data_dir=workdir, model="fake:hashing"))
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
    wall_started = time.monotonic()
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

    plan = refusal_plan(len(events), args.refuse)
    with RefusingSlackAPI(plan, args.retry_after) as api:
        app = create_app(service, SlackTokens("xoxb-1-2-fake", signing_secret=SECRET, api_url=api.url))
        runner, port = await start_http_server(app, service, "127.0.0.1", 0)
        started = time.perf_counter()
        started_mono = time.monotonic()

        def delivered_threads() -> set:
            return {thread for thread, status, _ in list(api.posts) if status == 200}

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
                while len(delivered_threads()) < len(events):
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                # anything late (a second answer, a retry still waiting out Retry-After) would show up now
                await asyncio.sleep(0.5 + (args.retry_after + 1.5 if plan else 0))
                run_seconds = time.perf_counter() - started
        finally:
            await runner.cleanup()
        calls = api.calls_to("chat.postMessage")
        records = list(api.posts)

    assert len(calls) == len(records), (len(calls), len(records))  # every call recorded with its status, in order
    posts = [c for c, (_, status, _) in zip(calls, records) if status == 200]  # the replies that got there
    per_thread = Counter(c.body.get("thread_ts") for c in posts)
    kinds = Counter("answer" if c.body.get("blocks") else "message" for c in posts)
    expected = {e["event"]["ts"] for e in events}
    once = sum(1 for ts in expected if per_thread[ts] == 1)
    twice = sum(1 for ts in expected if per_thread[ts] > 1)
    lost = sum(1 for ts in expected if per_thread[ts] == 0)
    busy = sum(1 for c in posts if "answering a lot of questions" in c.body.get("text", ""))
    errors = sum(1 for c in posts if ERROR_MESSAGE in c.body.get("text", ""))
    reply_times = [at for _, status, at in records if status == 200]
    first_reply, last_reply = min(reply_times, default=started_mono), max(reply_times, default=started_mono)

    # refusals: each refused call, the next call for the same thread (its retry) and whether a later one got through
    refused = [(i, thread, at) for i, (thread, status, at) in enumerate(records) if status == 429]
    posts_retried = delivered_after = 0
    retry_waits: list[float] = []
    for i, thread, at in refused:
        later = [(status, t) for th, status, t in records[i + 1:] if th == thread]
        if later:
            posts_retried += 1
            retry_waits.append(later[0][1] - at)
        if any(status == 200 for status, _ in later):
            delivered_after += 1
    other_statuses = Counter(status for _, status, _ in records if status not in (200, 429))
    with contextlib.closing(sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)) as db:
        undelivered = db.execute("SELECT COUNT(*) FROM answers WHERE delivered = 0").fetchone()[0]
        not_marked = db.execute("SELECT COUNT(*) FROM answers WHERE delivered IS NULL").fetchone()[0]
    figures = {
        "model": "real (all-MiniLM-L6-v2)" if args.real else "fake (hashing embedder)",
        "events": len(events), "retries sent": len(retried), "senders": args.senders,
        "workers/queue": f"{limits.workers}/{limits.queue}",
        "ack statuses": dict(statuses),
        "ack p50 ms": round(percentile(acks, 50) * 1000, 1), "ack p95 ms": round(percentile(acks, 95) * 1000, 1),
        "ack max ms": round(max(acks) * 1000, 1), "acks over 3 s": sum(1 for a in acks if a >= 3),
        "replied exactly once": once, "replied more than once": twice, "lost (no reply)": lost,
        "answers (Block Kit)": kinds["answer"], "busy replies": busy, '"Something went wrong" replies': errors,
        "postMessage calls": len(records), "posts refused (429)": len(refused),
        "refused posts retried": posts_retried, "refused posts delivered on retry": delivered_after,
        "other postMessage statuses": dict(other_statuses),
        "wait refusal -> retry s (min/max)": (f"{min(retry_waits):.2f} / {max(retry_waits):.2f}"
                                                if retry_waits else "-"),
        "refusals at s into run (first/last)": (f"{refused[0][2] - started_mono:.2f} / "
                                                  f"{refused[-1][2] - started_mono:.2f}" if refused else "-"),
        "stored answers": store.count(), "stored answers not delivered": undelivered,
        "stored answers without delivery record": not_marked, "peak questions in pool": service.pool.peak,
        "all sent in s": round(sent, 2), "first reply in s": round(first_reply - started_mono, 2),
        "all answered in s": round(last_reply - started_mono, 2), "run s (incl. grace)": round(run_seconds, 2),
        "wall s (incl. model load)": round(time.monotonic() - wall_started, 2),
    }
    store.close()
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    ok = (lost == 0 and twice == 0 and errors == 0 and figures["acks over 3 s"] == 0 and set(statuses) == {200}
          and len(refused) == len(plan) and posts_retried == delivered_after == len(refused) and not other_statuses
          and undelivered == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--retries", type=float, default=0.0, help="fraction of events re-sent as Slack retries")
    parser.add_argument("--workers", type=int, default=Limits.workers)
    parser.add_argument("--queue", type=int, default=Limits.queue)
    parser.add_argument("--refuse", type=int, default=0,
                        help="refuse this many chat.postMessage calls (429 ratelimited), spread over the run")
    parser.add_argument("--retry-after", type=int, default=1, help="the Retry-After of a refusal, in seconds")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds to wait for the answers")
    parser.add_argument("--real", action="store_true", help="use the real embedding model")
    parser.add_argument("--json", help="also write the figures to this file")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    sys.exit(asyncio.run(main(arguments)))
