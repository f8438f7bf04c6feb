"""Two hosts on one PostgreSQL database: two `advisor serve slack --http` processes with their own data folders
answer an event once between them, record a click that reaches the other one, read each other's threads and
answers, report from a third folder, and follow a `corpus add` made on one of them."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.slack.render import ACTION_HELPFUL
from bot.store.postgres import PostgresStore
from tests.conftest import ROOT
from tests.mock_slack_api import BOT_TOKEN, SECRET, SlackSender
from tests.support import ADVISOR, ARTICLE, ARTICLE_ID, NEW_QUESTION, QUIET, fake_model_env, fixture, free_port
from tests.waiting import stop, wait_until_healthy

DEADLINE = 60  # seconds for anything to happen: a bound, so a broken follower fails instead of hanging


class Host:
    """One `advisor serve slack --http` process: its data folder, port, log and signed sender."""

    def __init__(self, name: str, tmp_path: Path, env: dict):
        self.name, self.data_dir, self.port = name, tmp_path / name, free_port()
        self.log = tmp_path / f"{name}.log"
        self.env = dict(env, ADVISOR_DATA_DIR=str(self.data_dir))
        self.proc: subprocess.Popen | None = None
        self.sender: SlackSender | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*ADVISOR, "serve", "slack", "--http", "--port", str(self.port),
                 "-v"], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def advisor(self, *argv) -> subprocess.CompletedProcess:
        """`advisor ARGV` on this host (its data folder, the fake embedder), to completion."""
        return subprocess.run([*ADVISOR, *map(str, argv)], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=DEADLINE)


async def wait_for_log(host: Host, needle: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while needle not in host.log.read_text():
        assert host.proc.poll() is None, host.log.read_text()
        assert time.monotonic() < deadline, f"{host.name} never logged {needle!r}:\n{host.log.read_text()}"
        await asyncio.sleep(0.2)


def answer_id_of(post) -> str:
    return post.body["blocks"][-1]["elements"][0]["value"]


async def test_two_hosts_share_one_database(api, tmp_path, corpus_dir, postgres_url):
    env = fake_model_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=api.url,
                         ADVISOR_CORPUS=str(corpus_dir),  # one corpus folder both hosts read (a shared mount)
                         ADVISOR_DATABASE_URL=postgres_url, ADVISOR_INDEX_CHECK_SECONDS="1")
    a, b = Host("host-a", tmp_path, env), Host("host-b", tmp_path, env)
    store = PostgresStore(postgres_url)  # what the test reads back, as a third host would
    try:
        a.start()
        b.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for host in (a, b):
                await wait_until_healthy(session, f"{host.url}/healthz", host.proc, host.log)
                host.sender = SlackSender(session, f"{host.url}/slack/events", SECRET)

            # an event reaches A; Slack's retry of it (newly signed) and a copy of the very request reach B
            event = fixture("event_app_mention.json")
            signed_at = int(time.time())
            assert (await a.sender.event(event, timestamp=signed_at))[0] == 200
            [first] = await api.wait_async("chat.postMessage", timeout=30)
            assert (await b.sender.event(event, retry=1, timestamp=signed_at + 1))[0] == 200
            assert (await b.sender.event(event, timestamp=signed_at))[0] == 200
            # another event delivered to both hosts at the same moment
            second_event = fixture("event_app_mention.json")
            second_event["event_id"], second_event["event"]["ts"] = "Ev0BOTHHOSTS", "1700000300.000300"
            second_event["event"]["event_ts"] = "1700000300.000300"
            results = await asyncio.gather(a.sender.event(second_event), b.sender.event(second_event, retry=1))
            assert [r[0] for r in results] == [200, 200]
            await api.wait_async("chat.postMessage", 2, timeout=30)
            await asyncio.sleep(QUIET * 3)
            posts = api.calls_to("chat.postMessage")
            assert len(posts) == 2, "each event answered exactly once between the two hosts"
            assert {p.body["thread_ts"] for p in posts} == {"1700000100.000100", "1700000300.000300"}

            # A's answer rated on B: recorded in the shared store
            answer_id = answer_id_of(first)
            click = fixture("block_actions_feedback.json", RESPONSE_URL=api.response_url("fb"), ANSWER_ID=answer_id,
                            ACTION_ID=ACTION_HELPFUL)
            assert (await b.sender.interaction(click))[0] == 200
            [thanks] = await api.wait_async("/response/fb", timeout=30)
            assert "Thanks" in thanks.body["text"]
            assert [f["helpful"] for f in store.feedback(answer_id)] == [True]

            # a private /ask answered by A, shared from B
            form = fixture("command_ask.json", RESPONSE_URL=api.response_url("ask"))
            assert (await a.sender.command(form))[0] == 200
            [private] = await api.wait_async("/response/ask", timeout=30)
            shared_id = private.body["blocks"][-1]["elements"][0]["value"]
            share = fixture("block_actions_share.json", RESPONSE_URL=api.response_url("share"), ANSWER_ID=shared_id)
            assert (await b.sender.interaction(share))[0] == 200
            [done] = await api.wait_async("/response/share", timeout=30)
            assert done.body["text"] == "Shared in the channel."
            public = api.calls_to("chat.postMessage")[-1]
            assert public.body["blocks"][0]["elements"][0]["text"] == "Shared by <@U0LEAD>"

            # a follow-up in A's thread reaching B is read with A's question (from the store: the mock
            # Slack returns no thread history)
            assert (await b.sender.event(fixture("event_app_mention_thread.json")))[0] == 200
            follow_up = (await api.wait_async("chat.postMessage", 4, timeout=30))[-1]
            record = store.answer_record(answer_id_of(follow_up))
            assert record["question"] == "and at Series B?"
            assert record["context"] == ["does a Series A startup hire ML PMs?"]

            # the report, from a third folder that has neither store nor index
            env_c = dict(env, ADVISOR_DATA_DIR=str(tmp_path / "laptop"))
            report = subprocess.run([sys.executable, "-m", "bot.cli", "report", "--since", "all"], cwd=ROOT,
                                    env=env_c, capture_output=True, text=True, timeout=DEADLINE)
            assert report.returncode == 0, report.stderr
            assert "Questions 4 from 1 person" in report.stdout and "Feedback 1 helpful, 0 not helpful" in report.stdout
            assert "U0LEAD" not in report.stdout and not (tmp_path / "laptop").exists()

            # a document added on A reaches B, which rebuilds its own index and cites it
            added = a.advisor("corpus", "add", ARTICLE)
            assert added.returncode == 0, added.stderr
            assert "Told the hosts sharing the database: corpus version 1" in added.stdout
            await wait_for_log(b, "Now answering from corpus version 1")
            ask_new = copy.deepcopy(second_event)
            ask_new["event_id"], ask_new["event"]["ts"] = "Ev0AFTERADD", "1700000400.000400"
            ask_new["event"]["text"] = f"<@UBOTADVISOR> {NEW_QUESTION}"
            assert (await b.sender.event(ask_new))[0] == 200
            new_post = (await api.wait_async("chat.postMessage", 5, timeout=30))[-1]
            cited = {c["doc_id"] for c in store.answer_record(answer_id_of(new_post))["citations"]}
            assert ARTICLE_ID in cited
    finally:
        for host in (a, b):
            if host.proc is not None:
                stop(host.proc)
        store.close()
    for host in (a, b):
        assert host.proc.returncode == 0, host.log.read_text()
        text = host.log.read_text()
        assert urlsplit_password(postgres_url) not in text and BOT_TOKEN not in text and "Traceback" not in text


def urlsplit_password(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).password


@pytest.fixture
def api():
    from tests.mock_slack_api import MockSlackAPI

    with MockSlackAPI() as mock:
        yield mock
