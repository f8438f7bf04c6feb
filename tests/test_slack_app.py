"""The Slack app wired through real slack-bolt: signed requests in, calls to a mock Slack Web API out."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import shutil
import sqlite3
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from bot.guards import Limits
from bot.logs import ANSWERS
from bot.service import ChatService
from bot.settings import Settings, SettingsError
from bot.slack.app import create_app
from bot.slack.inbound import clean_text
from bot.slack.render import ACTION_HELPFUL, ACTION_NOT_HELPFUL, ACTION_SHARE
from bot.slack.settings import SlackTokens, tokens_from_env
from bot.store import Store
from retrieval.vocabulary import Question
from tests.mock_slack_api import BOT_TOKEN, BOT_USER_ID, SECRET, MockSlackAPI, SlackSender, serve
from tests.waiting import stop, wait_until_healthy
from tests.support import ADVISOR, QUIET, dump, fake_model_env, fixture, free_port, query

FIXTURES = Path(__file__).parent / "fixtures" / "slack"


def all_text(call) -> str:
    return json.dumps(call.body.get("blocks", [])) + call.body.get("text", "")


@pytest.fixture
def api():
    with MockSlackAPI() as mock:
        yield mock


@pytest.fixture
async def slack(api, fake_advisor, tmp_path):
    store = Store(tmp_path / "advisor.sqlite3")
    async with serve(api, ChatService(fake_advisor, store)) as harness:
        yield harness
    store.close()


# -- translation ------------------------------------------------------------------------------------

def test_clean_text_drops_mentions_and_decodes_entities():
    assert clean_text("<@UBOTADVISOR> does a &lt;b&gt; &amp; c&lt;d&gt;?") == "does a <b> & c<d>?"
    assert clean_text("<@U1|lead> see <https://x.example/a|the guide> in <#C1|general> <!here>") == \
        "see the guide in general"
    assert clean_text("  <@UBOTADVISOR>  ") == ""


def test_tokens_are_checked_at_start(monkeypatch):
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN is not set"):
        tokens_from_env(http=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xapp-wrong-kind")
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN does not look right.*xoxb-"):
        tokens_from_env(http=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    with pytest.raises(SettingsError, match="SLACK_APP_TOKEN is not set.*--http"):
        tokens_from_env(http=False)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-not-an-app-token")
    with pytest.raises(SettingsError, match="SLACK_APP_TOKEN.*xapp-"):
        tokens_from_env(http=False)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A111-222-fake")
    assert tokens_from_env(http=False).app_token == "xapp-1-A111-222-fake"
    with pytest.raises(SettingsError, match="SLACK_SIGNING_SECRET is not set"):
        tokens_from_env(http=True)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", BOT_TOKEN)
    with pytest.raises(SettingsError, match="SLACK_SIGNING_SECRET does not look right"):
        tokens_from_env(http=True)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    tokens = tokens_from_env(http=True)
    assert tokens.api_url == "http://127.0.0.1:9/api/" and SECRET not in repr(tokens) and BOT_TOKEN not in repr(tokens)
    monkeypatch.setenv("SLACK_API_URL", "localhost:9")
    with pytest.raises(SettingsError, match="SLACK_API_URL"):
        tokens_from_env(http=True)


def test_cli_reports_missing_token_before_loading_anything(capsys):
    from bot.cli.entry import main

    assert main(["serve", "slack", "--http", "--port", "0"]) == 2
    assert "SLACK_BOT_TOKEN is not set" in capsys.readouterr().err


async def assert_only_the_next_question_is_answered(slack) -> None:
    """After what must be ignored, a real question: once its answer is posted (and a moment more), it is
    the only post, so an ignored message answered late cannot slip by unseen."""
    question = fixture("event_app_mention.json")
    question["event_id"] = "Ev0SENTINEL"
    await slack.sender.event(question)
    [post] = await slack.api.wait_async("chat.postMessage")
    await asyncio.sleep(QUIET)
    assert slack.api.calls_to("chat.postMessage") == [post]


# -- events ---------------------------------------------------------------------------------------

async def test_app_mention_is_answered_once_in_the_thread_of_the_message(slack):
    status, _, _ = await slack.sender.event(fixture("event_app_mention.json"))
    assert status == 200
    [post] = await slack.api.wait_async("chat.postMessage")
    assert post.body["channel"] == "C0GENERAL" and post.body["thread_ts"] == "1700000100.000100"
    blocks = post.body["blocks"]
    assert blocks[0]["type"] == "section" and "[1]" in blocks[0]["text"]["text"]
    cited = [b["text"]["text"] for b in blocks if b["type"] == "section"][1:]
    assert cited and cited[0].startswith("*[1] ") and "\n>" in cited[0]
    assert blocks[-1]["type"] == "actions" and post.body["text"]
    await asyncio.sleep(QUIET)
    assert len(slack.api.calls_to("chat.postMessage")) == 1
    assert slack.service.store.count() == 1


async def test_follow_up_in_the_thread_uses_the_earlier_question(slack):
    await slack.sender.event(fixture("event_app_mention.json"))
    await slack.api.wait_async("chat.postMessage")
    await slack.sender.event(fixture("event_app_mention_thread.json"))
    posts = await slack.api.wait_async("chat.postMessage", 2)
    assert posts[1].body["thread_ts"] == "1700000100.000100"
    store = slack.service.store
    rows = query(store, "SELECT question, context FROM answers ORDER BY created")
    assert [r["question"] for r in rows] == ["does a Series A startup hire ML PMs?", "and at Series B?"]
    assert json.loads(rows[1]["context"]) == ["does a Series A startup hire ML PMs?"]
    assert not slack.api.calls_to("conversations.replies")  # remembered, no need to read the thread


async def test_follow_up_in_a_thread_not_remembered_reads_the_thread(slack):
    slack.api.responses["conversations.replies"] = {"ok": True, "has_more": False, "messages": [
        {"type": "message", "user": "U0LEAD", "text": "Do Series A startups hire ML PMs?", "ts": "1700000100.000100"},
        {"type": "message", "bot_id": "BBOTADVISOR", "text": "an earlier answer", "ts": "1700000150.000150"},
        {"type": "message", "user": "U0LEAD", "text": "<@UBOTADVISOR> and at Series B?", "ts": "1700000200.000200"},
    ]}
    await slack.sender.event(fixture("event_app_mention_thread.json"))
    [post] = await slack.api.wait_async("chat.postMessage")
    assert post.body["thread_ts"] == "1700000100.000100"
    [replies] = slack.api.calls_to("conversations.replies")
    assert replies.body["ts"] == "1700000100.000100" and replies.body["channel"] == "C0GENERAL"
    [(context,)] = query(slack.service.store, "SELECT context FROM answers")
    assert json.loads(context) == ["Do Series A startups hire ML PMs?"]


async def test_direct_message_is_answered_in_the_dm(slack):
    await slack.sender.event(fixture("event_message_im.json"))
    [post] = await slack.api.wait_async("chat.postMessage")
    assert post.body["channel"] == "D0DIRECT" and "thread_ts" not in post.body
    assert "[1]" in all_text(post)


@pytest.mark.parametrize("name", ["event_bot_message.json", "event_app_mention_from_bot.json",
                                  "event_message_changed.json"])
async def test_bots_and_edits_are_ignored(slack, name):
    status, _, _ = await slack.sender.event(fixture(name))
    assert status == 200
    await assert_only_the_next_question_is_answered(slack)


async def test_own_messages_are_ignored(slack):
    event = fixture("event_message_im.json")
    event["event"]["user"] = BOT_USER_ID
    await slack.sender.event(event)
    await assert_only_the_next_question_is_answered(slack)


async def test_retried_event_is_answered_once(api, fake_advisor):
    # no duplicate-question window here: the event_id alone must stop the retries
    async with serve(api, ChatService(fake_advisor, limits=Limits(duplicate_seconds=0))) as slack:
        event = fixture("event_app_mention.json")
        results = [await slack.sender.event(event)]
        results += await asyncio.gather(slack.sender.event(event, retry=1), slack.sender.event(event, retry=2))
        results.append(await slack.sender.event(event))  # the same event_id without retry headers
        assert [r[0] for r in results] == [200, 200, 200, 200]
        await api.wait_async("chat.postMessage")
        await asyncio.sleep(QUIET)
        assert len(api.calls_to("chat.postMessage")) == 1
        other = fixture("event_app_mention.json")
        other["event_id"] = "Ev0MENTION9"  # a new event with the same text is a new question
        await slack.sender.event(other)
        assert len(await api.wait_async("chat.postMessage", 2)) == 2


async def test_a_retry_reaching_another_replica_is_not_answered_again(api, fake_advisor, tmp_path):
    """Two replicas on one store (Socket Mode spreads events, a load balancer spreads HTTP requests)."""
    store = Store(tmp_path / "advisor.sqlite3")
    limits = Limits(duplicate_seconds=0)  # the event id alone must stop it
    async with serve(api, ChatService(fake_advisor, store, limits)) as first, \
            serve(api, ChatService(fake_advisor, store, limits)) as second:
        event = fixture("event_app_mention.json")
        assert (await first.sender.event(event))[0] == 200
        assert (await second.sender.event(event, retry=1))[0] == 200
        await api.wait_async("chat.postMessage")
        await asyncio.sleep(QUIET)
        assert len(api.calls_to("chat.postMessage")) == 1
        other = fixture("event_app_mention.json")
        other["event_id"] = "Ev0MENTION9"
        await second.sender.event(other)  # a new event is answered by whichever replica gets it
        assert len(await api.wait_async("chat.postMessage", 2)) == 2
    store.close()


async def test_every_request_is_acknowledged_before_the_work_behind_it(api, fake_advisor, tmp_path):
    """Slack's 3-second rule without a clock: each request gets its 200 while the answer, the public post
    or the form it leads to is still held back (a handler that waited would time the sender out)."""
    answering, posting = threading.Event(), threading.Event()

    class Held:
        def answer(self, question):
            assert answering.wait(30), "the test never let the advisor answer"
            return fake_advisor.answer(question)

        def documents(self):
            return fake_advisor.documents()

    store = Store(tmp_path / "advisor.sqlite3")
    async with serve(api, ChatService(Held(), store, Limits(duplicate_seconds=0))) as slack:
        assert (await slack.sender.event(fixture("event_app_mention.json")))[0] == 200
        form = fixture("command_ask.json", RESPONSE_URL=api.response_url("held"))
        assert (await slack.sender.command(form))[0] == 200
        shortcut = fixture("message_action_ask_advisor.json", RESPONSE_URL=api.response_url("sc"))
        assert (await slack.sender.interaction(shortcut))[0] == 200
        assert not api.calls_to("chat.postMessage") and not api.calls_to("/response/held")
        answering.set()
        await api.wait_async("chat.postMessage", 2)
        [ephemeral] = await api.wait_async("/response/held")
        answer_id = ephemeral.body["blocks"][-1]["elements"][0]["value"]

        def held(reply):
            def respond(body):
                assert posting.wait(30), "the test never let the mock answer"
                return reply
            return respond

        api.responses["chat.postMessage"] = held({"ok": True, "channel": "C0GENERAL", "ts": "1700000999.000001"})
        api.responses["views.open"] = held({"ok": True, "view": {"id": "V0MOCK"}})
        share = fixture("block_actions_share.json", RESPONSE_URL=api.response_url("share"), ANSWER_ID=answer_id)
        assert (await slack.sender.interaction(share))[0] == 200
        not_helpful = fixture("block_actions_feedback.json", RESPONSE_URL=api.response_url("fb"),
                              ANSWER_ID=answer_id, ACTION_ID=ACTION_NOT_HELPFUL)
        assert (await slack.sender.interaction(not_helpful))[0] == 200
        posting.set()
        await api.wait_async("/response/share")
        await api.wait_async("views.open")
    store.close()


async def test_bad_or_stale_signature_is_refused(slack):
    event = fixture("event_app_mention.json")
    assert (await slack.sender.event(event, secret="f" * 32))[0] == 401
    assert (await slack.sender.event(event, timestamp=int(time.time()) - 600))[0] == 401
    async with aiohttp.ClientSession() as session:
        async with session.post(slack.sender.url, json=event) as resp:  # unsigned
            assert resp.status == 401
    await assert_only_the_next_question_is_answered(slack)


async def test_advisor_failure_tells_the_user_in_the_thread(api, caplog):
    class Broken:
        def answer(self, question):
            raise RuntimeError("faiss fell over")

        def documents(self):
            return []

    with caplog.at_level(logging.ERROR):
        async with serve(api, ChatService(Broken())) as slack:
            await slack.sender.event(fixture("event_app_mention.json"))
            [post] = await api.wait_async("chat.postMessage")
    assert post.body["thread_ts"] == "1700000100.000100"
    assert post.body["text"] == "Something went wrong answering that; please try again."
    assert "faiss fell over" in caplog.text


async def test_refused_blocks_still_deliver_the_plain_text(slack):
    calls = []

    def post(body):
        calls.append(body)
        return {"ok": False, "error": "invalid_blocks"} if body.get("blocks") else {"ok": True, "ts": "1.2"}

    slack.api.responses["chat.postMessage"] = post
    await slack.sender.event(fixture("event_app_mention.json"))
    posts = await slack.api.wait_async("chat.postMessage", 2)
    assert "blocks" not in posts[1].body and "[1]" in posts[1].body["text"]
    assert posts[1].body["thread_ts"] == "1700000100.000100"


async def test_busy_reply_in_the_thread(api, fake_advisor):
    service = ChatService(fake_advisor, limits=Limits(workers=1, queue=0))
    service.pool.pending = service.pool.capacity  # as if every worker were taken
    async with serve(api, service) as slack:
        await slack.sender.event(fixture("event_app_mention.json"))
        [post] = await api.wait_async("chat.postMessage")
    assert "answering a lot of questions" in post.body["text"] and post.body["thread_ts"] == "1700000100.000100"


async def test_health_check(slack):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{slack.url}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"


# -- Slack's temporary errors, garbage and replays ----------------------------------------------------

def delivered_flags(store: Store) -> list:
    return [r[0] for r in query(store, "SELECT delivered FROM answers")]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_temporary_slack_error_still_delivers_the_answer_once(slack, caplog, status):
    """One 429 (Retry-After: 1) or 5xx on chat.postMessage: the client retries, the answer arrives once."""
    slack.api.refuse("chat.postMessage", status, retry_after=1)
    await slack.sender.event(fixture("event_app_mention.json"))
    refused, delivered = await slack.api.wait_async("chat.postMessage", 2)
    await asyncio.sleep(QUIET)
    assert slack.api.calls_to("chat.postMessage") == [refused, delivered], "the answer, then nothing else"
    assert delivered.body == refused.body and "[1]" in all_text(delivered)
    if status == 429:
        assert delivered.at - refused.at >= 1.0, "Retry-After is honoured"
    assert delivered_flags(slack.service.store) == [1]
    assert "Something went wrong" not in json.dumps([c.body for c in slack.api.calls])
    assert "Traceback" not in caplog.text and "AttributeError" not in caplog.text


@pytest.mark.parametrize(("status", "times", "posts", "why"), [
    (500, 3, 3, "HTTP 500"),  # the first try and two retries, then give up
    (429, 1, 1, "ratelimited"),  # Retry-After: 60 is past the cap: an answer a minute late is not worth it
])
async def test_a_reply_slack_keeps_refusing_is_recorded_as_not_delivered(slack, caplog, status, times, posts, why):
    slack.api.refuse("chat.postMessage", status, times=times, retry_after=60)
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger=ANSWERS):
        started = time.monotonic()
        await slack.sender.event(fixture("event_app_mention.json"))
        deadline = time.monotonic() + 10
        while not delivered_flags(slack.service.store) or delivered_flags(slack.service.store) == [None]:
            assert time.monotonic() < deadline, "the failed delivery was never recorded"
            await asyncio.sleep(0.02)
    assert time.monotonic() - started < 8
    await asyncio.sleep(QUIET)
    assert len(slack.api.calls_to("chat.postMessage")) == posts, "no second, doomed 'Something went wrong' post"
    assert delivered_flags(slack.service.store) == [0]
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "question"]
    assert record.status == "answered" and record.delivered is False
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Could not deliver" in error.getMessage() and why in error.getMessage() and not error.exc_info
    assert "AttributeError" not in caplog.text and "Traceback" not in caplog.text


GARBAGE = [
    ("application/json", b"[1,2,3]", {}),
    ("application/json", b"null", {}),
    ("application/json", b"{not json", {}),
    ("application/json", b'{"text": "\xff\xfe caf\xe9"}', {}),
    ("application/x-www-form-urlencoded", b"payload=%7B%7D", {"X-Slack-Request-Timestamp": "soon",
                                                               "X-Slack-Signature": "v0=abc"}),
    ("application/json", b"[1,2,3]", {"X-Slack-Request-Timestamp": "1700000000\u0663", "X-Slack-Signature": "v0=ab"}),
    ("application/json", b"{}", {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"}),
]


@pytest.mark.parametrize(("content_type", "body", "headers"), GARBAGE)
async def test_unsigned_garbage_gets_401_and_one_log_line(slack, caplog, content_type, body, headers):
    with caplog.at_level(logging.INFO):
        async with aiohttp.ClientSession() as session:
            async with session.post(slack.sender.url, data=body,
                                    headers={"Content-Type": content_type, **headers}) as resp:
                assert resp.status == 401
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "Refused a request to /slack/events" in lines[0].getMessage(), caplog.text
    assert "Traceback" not in caplog.text and not lines[0].exc_info
    await assert_only_the_next_question_is_answered(slack)


async def test_a_refused_request_is_logged_without_its_body_even_with_v(slack):
    """-v logs everything from INFO: a request that fails verification says why, never what it carried."""
    import io

    from bot import logs

    names = ["", logs.ANSWERS, *logs.OWN_LOGGERS]
    saved = logging.getLogger().handlers[:], [logging.getLogger(n).level for n in names]
    stream = io.StringIO()
    logs.setup(verbose=True, stream=stream, fmt="text")
    try:
        event = fixture("event_app_mention.json")
        assert (await slack.sender.event(event, secret="f" * 32))[0] == 401
        assert (await slack.sender.event(event, timestamp=int(time.time()) - 600))[0] == 401
    finally:
        logging.getLogger().handlers[:] = saved[0]
        for name, level in zip(names, saved[1]):
            logging.getLogger(name).setLevel(level)
    written = stream.getvalue()
    assert "signature does not match SLACK_SIGNING_SECRET" in written and "more than 5 minutes" in written
    for private in ("U0LEAD", "Series A startup", "C0GENERAL", "Ev0MENTION"):
        assert private not in written, written


async def test_an_identical_signed_ask_replayed_later_is_answered_once(slack):
    """The same signed bytes sent again 36 s later (well within the 5 minutes a signature is valid)."""
    form = fixture("command_ask.json", RESPONSE_URL=slack.api.response_url("replayed"))
    signed_at = int(time.time())
    assert (await slack.sender.command(form, timestamp=signed_at))[0] == 200
    await slack.api.wait_async("/response/replayed")
    later = time.monotonic() + 36
    slack.service.duplicates.clock = lambda: later  # past the duplicate-question window
    status, _, _ = await slack.sender.command(form, timestamp=signed_at)
    assert status == 200
    await asyncio.sleep(QUIET)
    assert len(slack.api.calls_to("/response/replayed")) == 1
    assert slack.service.store.count() == 1
    # a new /ask with the same words (Slack signs each anew) is still a question: the duplicate window decides
    form["trigger_id"] = "1700000601.trigger"
    assert (await slack.sender.command(form))[0] == 200
    assert len(await slack.api.wait_async("/response/replayed", 2)) == 2


async def test_healthz_fails_when_the_store_file_is_deleted_under_the_bot(slack):
    store = slack.service.store
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{slack.url}/healthz") as resp:
            assert resp.status == 200
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store.path}{suffix}").unlink(missing_ok=True)
        async with session.get(f"{slack.url}/healthz") as resp:
            body = await resp.json()
            assert resp.status == 503 and body["failed"] == ["store"]


async def test_healthz_fails_while_writes_to_the_store_fail(slack):
    store = slack.service.store
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # as full as a full disk: a write that needs a page fails
    answer = slack.service.advisor.answer(Question("does a Series A startup hire ML PMs?"))
    with pytest.raises(sqlite3.OperationalError, match="full"):
        store.save_answer("a-big-one", Question(answer.question), replace(answer, text="x" * 20_000), 0.1)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{slack.url}/healthz") as resp:
            body = await resp.json()
            assert resp.status == 503 and body["failed"] == ["store"]
        store._db.execute(f"PRAGMA max_page_count = {10 * pages}")  # space again: the next write succeeds
        await ask(slack)
        async with session.get(f"{slack.url}/healthz") as resp:
            assert resp.status == 200


# -- /ask, share, feedback, shortcut ------------------------------------------------------------------

async def ask(slack, name="ask1", text=None) -> dict:
    form = fixture("command_ask.json", RESPONSE_URL=slack.api.response_url(name))
    if text is not None:
        form["text"] = text
    status, _, body = await slack.sender.command(form)
    assert status == 200 and body == ""
    [response] = await slack.api.wait_async(f"/response/{name}")
    return response.body


async def test_slash_ask_is_acknowledged_at_once_then_answered_privately(slack):
    body = await ask(slack)
    assert body["response_type"] == "ephemeral" and "[1]" in body["text"]
    share = body["blocks"][-1]["elements"][-1]
    assert share["action_id"] == ACTION_SHARE
    assert "*Question:* does a Series A startup hire ML PMs?" in json.dumps(body["blocks"])
    assert not slack.api.calls_to("chat.postMessage")  # nothing public


async def test_slash_ask_help_and_empty(slack):
    assert "Documents I know" in (await ask(slack, "h", "help"))["text"]
    assert "empty" in (await ask(slack, "e", "  "))["text"]


async def test_share_posts_publicly_with_attribution_once(slack):
    answer_id = (await ask(slack))["blocks"][-1]["elements"][0]["value"]
    click = fixture("block_actions_share.json", RESPONSE_URL=slack.api.response_url("share"), ANSWER_ID=answer_id)
    status, _, _ = await slack.sender.interaction(click)
    assert status == 200
    [post] = await slack.api.wait_async("chat.postMessage")
    assert post.body["channel"] == "C0GENERAL" and "thread_ts" not in post.body
    assert post.body["blocks"][0]["elements"][0]["text"] == "Shared by <@U0LEAD>"
    assert ACTION_SHARE not in json.dumps(post.body["blocks"]) and "[1]" in all_text(post)
    [done] = await slack.api.wait_async("/response/share")
    assert done.body["replace_original"] is True
    again = copy.deepcopy(click)  # a second click: Slack gives each its own trigger and time
    again["trigger_id"], again["actions"][0]["action_ts"] = "1700000701.trigger", "1700000701.000701"
    await slack.sender.interaction(again)  # does not post it twice
    [_, already] = await slack.api.wait_async("/response/share", 2)
    assert "already shared" in already.body["text"]
    assert len(slack.api.calls_to("chat.postMessage")) == 1


async def test_share_goes_to_the_thread_it_came_from(slack):
    answer_id = (await ask(slack))["blocks"][-1]["elements"][0]["value"]
    click = fixture("block_actions_share.json", RESPONSE_URL=slack.api.response_url("share"), ANSWER_ID=answer_id)
    click["container"]["thread_ts"] = "1700000100.000100"
    await slack.sender.interaction(click)
    [post] = await slack.api.wait_async("chat.postMessage")
    assert post.body["thread_ts"] == "1700000100.000100"


async def test_share_in_a_channel_without_the_bot_explains_what_to_do(slack):
    answer_id = (await ask(slack))["blocks"][-1]["elements"][0]["value"]
    slack.api.responses["chat.postMessage"] = {"ok": False, "error": "not_in_channel"}
    click = fixture("block_actions_share.json", RESPONSE_URL=slack.api.response_url("share"), ANSWER_ID=answer_id)
    await slack.sender.interaction(click)
    [hint] = await slack.api.wait_async("/response/share")
    assert "/invite @advisor" in hint.body["text"]


async def test_feedback_buttons_are_acknowledged_and_recorded_with_a_reason(slack):
    await slack.sender.event(fixture("event_app_mention.json"))
    [post] = await slack.api.wait_async("chat.postMessage")
    answer_id = post.body["blocks"][-1]["elements"][0]["value"]
    store = slack.service.store

    helpful = fixture("block_actions_feedback.json", RESPONSE_URL=slack.api.response_url("fb1"),
                      ANSWER_ID=answer_id, ACTION_ID=ACTION_HELPFUL)
    status, _, _ = await slack.sender.interaction(helpful)
    assert status == 200
    [thanks] = await slack.api.wait_async("/response/fb1")
    assert "Thanks" in thanks.body["text"] and thanks.body["replace_original"] is False
    assert [f["helpful"] for f in store.feedback(answer_id)] == [True]

    unhelpful = fixture("block_actions_feedback.json", RESPONSE_URL=slack.api.response_url("fb2"),
                        ANSWER_ID=answer_id, ACTION_ID=ACTION_NOT_HELPFUL)
    await slack.sender.interaction(unhelpful)
    [opened] = await slack.api.wait_async("views.open")
    assert opened.body["trigger_id"] == "1700000800.trigger"
    assert opened.body["view"]["private_metadata"] == answer_id
    assert [f["helpful"] for f in store.feedback(answer_id)] == [False]  # recorded before the reason

    status, _, body = await slack.sender.interaction(fixture("view_submission_reason.json", ANSWER_ID=answer_id))
    assert status == 200 and body == ""
    deadline = time.monotonic() + 5
    while not store.feedback(answer_id)[0]["reason"] and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    [fb] = store.feedback(answer_id)
    assert fb["reason"] == "It did not say anything about Series B." and fb["helpful"] is False
    assert fb["user_hash"] != "U0READER"


async def test_a_suggestion_under_a_declined_answer_asks_it_in_the_same_thread(slack):
    mention = fixture("event_app_mention.json")
    mention["event"]["text"] = "<@UBOTADVISOR> what's the interview process at Microsoft?"
    await slack.sender.event(mention)
    [declined] = await slack.api.wait_async("chat.postMessage")
    [asks] = [b for b in declined.body["blocks"] if b.get("block_id") == "advisor_suggestions"]
    suggestion = asks["elements"][0]["value"]
    assert suggestion and asks["elements"][0]["text"]["text"] == f"Ask: {suggestion}"

    click = fixture("block_actions_suggestion.json", RESPONSE_URL=slack.api.response_url("ask"), SUGGESTION=suggestion)
    status, _, _ = await slack.sender.interaction(click)
    assert status == 200
    [_, answer] = await slack.api.wait_async("chat.postMessage", 2)
    assert (answer.body["channel"], answer.body["thread_ts"]) == ("C0GENERAL", "1700000100.000100")
    assert "[1]" in all_text(answer)
    questions = [q for (q,) in query(slack.service.store, "SELECT question FROM answers ORDER BY created")]
    assert questions == ["what's the interview process at Microsoft?", suggestion]


async def test_a_suggestion_under_a_private_answer_is_answered_privately(slack):
    click = fixture("block_actions_suggestion.json", RESPONSE_URL=slack.api.response_url("ask"),
                    SUGGESTION="Which role has more technical interview rounds?")
    click["container"]["is_ephemeral"] = True
    await slack.sender.interaction(click)
    [private] = await slack.api.wait_async("/response/ask")
    assert private.body["response_type"] == "ephemeral" and private.body["replace_original"] is False
    assert "[1]" in all_text(private) and ACTION_SHARE in json.dumps(private.body["blocks"])
    await asyncio.sleep(QUIET)
    assert slack.api.calls_to("chat.postMessage") == []


async def test_message_shortcut_answers_that_message_in_its_thread(slack):
    payload = fixture("message_action_ask_advisor.json", RESPONSE_URL=slack.api.response_url("sc"))
    status, _, _ = await slack.sender.interaction(payload)
    assert status == 200
    [post] = await slack.api.wait_async("chat.postMessage")
    assert post.body["channel"] == "C0GENERAL" and post.body["thread_ts"] == "1700000850.000850"
    [(question,)] = query(slack.service.store, "SELECT question FROM answers")
    assert question == "Do Series A startups hire ML PMs & data PMs?"


@pytest.mark.model
async def test_a_question_with_a_lone_surrogate_is_answered(api, real_advisor, tmp_path):
    """JSON may carry "\\ud800", which no tokenizer takes: the real model's path, not "Something went wrong"."""
    store = Store(tmp_path / "advisor.sqlite3")
    async with serve(api, ChatService(real_advisor, store)) as slack:
        event = fixture("event_app_mention.json")
        event["event"]["text"] += " \ud800"
        await slack.sender.event(event)
        [post] = await api.wait_async("chat.postMessage", timeout=30)
    assert "[1]" in post.body["blocks"][0]["text"]["text"] and "Something went wrong" not in post.body["text"]
    assert store.count() == 1
    store.close()


async def test_no_raw_user_id_is_stored_whatever_users_do(slack):
    """Mentions, a thread follow-up, a DM, /ask and its follow-up, the shortcut, share, feedback and its reason."""
    api = slack.api
    await slack.sender.event(fixture("event_app_mention.json"))
    await api.wait_async("chat.postMessage")
    await slack.sender.event(fixture("event_app_mention_thread.json"))
    await slack.sender.event(fixture("event_message_im.json"))
    await slack.sender.interaction(fixture("message_action_ask_advisor.json", RESPONSE_URL=api.response_url("sc")))
    posts = await api.wait_async("chat.postMessage", 4)
    first = await ask(slack, "a1")
    await ask(slack, "a2", "and at Series B?")
    answer_id = first["blocks"][-1]["elements"][0]["value"]
    await slack.sender.interaction(fixture("block_actions_share.json", RESPONSE_URL=api.response_url("share"),
                                           ANSWER_ID=answer_id))
    await api.wait_async("/response/share")
    mention_id = posts[0].body["blocks"][-1]["elements"][0]["value"]
    for n, action in enumerate((ACTION_HELPFUL, ACTION_NOT_HELPFUL)):
        await slack.sender.interaction(fixture("block_actions_feedback.json", RESPONSE_URL=api.response_url(f"f{n}"),
                                               ANSWER_ID=mention_id, ACTION_ID=action))
    await api.wait_async("views.open")
    await slack.sender.interaction(fixture("view_submission_reason.json", ANSWER_ID=mention_id))
    store = slack.service.store
    deadline = time.monotonic() + 5
    while not store.feedback(mention_id)[0]["reason"] and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert store.count() == 6 and store.feedback(mention_id)[0]["reason"]

    stored = dump(store)  # every table, every column
    for user in ("U0LEAD", "U0ASKER", "U0READER"):
        assert user not in stored
    [(context,)] = query(store, "SELECT context FROM answers WHERE question = 'and at Series B?' "
                                "AND thread LIKE 'ask:%'")
    assert json.loads(context) == ["does a Series A startup hire ML PMs?"], "the /ask follow-up still has its context"


# -- the real command, the real model ---------------------------------------------------------------


@pytest.mark.parametrize("model", ["fake", pytest.param("real", marks=pytest.mark.model)])
async def test_advisor_serve_slack_http_end_to_end(api, tmp_path, request, model):
    """`advisor serve slack --http --port N` as a subprocess against the mock API (real model: one test)."""
    from tests.conftest import ROOT, SHIPPED_CORPUS

    data_dir = tmp_path / "data"
    port = free_port()
    env = fake_model_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=api.url,
                         ADVISOR_DATA_DIR=str(data_dir), ADVISOR_CORPUS=str(SHIPPED_CORPUS))
    if model == "real":
        del env["ADVISOR_MODEL"]  # the default model
        index_dir = Settings(corpus_dir=SHIPPED_CORPUS, data_dir=data_dir).index_dir
        real_advisor = request.getfixturevalue("real_advisor")
        shutil.copytree(real_advisor.engine.store.folder, index_dir, symlinks=True)  # reuse the session's index
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(ADVISOR + ["serve", "slack", "--http", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            url = f"http://127.0.0.1:{port}"
            await wait_until_healthy(session, f"{url}/healthz", proc, log)  # the index loads before serving
            sender = SlackSender(session, f"{url}/slack/events", SECRET)

            event = fixture("event_app_mention.json")
            assert (await sender.event(event))[0] == 200
            assert (await sender.event(event, retry=1))[0] == 200
            [post] = await api.wait_async("chat.postMessage", timeout=30)
            assert post.body["thread_ts"] == "1700000100.000100"
            assert "[1]" in post.body["blocks"][0]["text"]["text"]
            sections = [b["text"]["text"] for b in post.body["blocks"][1:] if b["type"] == "section"]
            assert any(text.startswith("*[1] ") for text in sections)

            form = fixture("command_ask.json", RESPONSE_URL=api.response_url("e2e"))
            status, _, _ = await sender.command(form)
            assert status == 200
            [response] = await api.wait_async("/response/e2e", timeout=30)
            assert response.body["response_type"] == "ephemeral" and response.body["blocks"]

            assert (await sender.event(copy.deepcopy(event), secret="0" * 32))[0] == 401
            await asyncio.sleep(QUIET)
            assert len(api.calls_to("chat.postMessage")) == 1
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()  # SIGTERM stops it cleanly
    assert "SLACK_BOT_TOKEN" not in log.read_text() and BOT_TOKEN not in log.read_text()
    store = Store(data_dir / "advisor.sqlite3")
    assert store.count() == 2  # both answers survived the process
    store.close()


def test_manifest_declares_exactly_what_the_app_handles():
    yaml = pytest.importorskip("yaml")
    from tests.conftest import ROOT

    manifest = yaml.safe_load((ROOT / "deploy" / "slack" / "manifest.yaml").read_text())
    settings, features = manifest["settings"], manifest["features"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_mention", "message.im",
        "assistant_thread_started", "assistant_thread_context_changed",  # the assistant panel
        "message.channels", "message.groups",  # follow-ups in a thread without a new mention
        "app_home_opened",  # the Home tab
    }
    assert settings["socket_mode_enabled"] is True and settings["interactivity"]["is_enabled"] is True
    assert [c["command"] for c in features["slash_commands"]] == ["/ask"]
    assert [(s["type"], s["callback_id"]) for s in features["shortcuts"]] == [("message", "ask_advisor")]
    assert features["app_home"]["home_tab_enabled"] is True and features["app_home"]["messages_tab_enabled"] is True
    assert set(features["assistant_view"]) == {"assistant_description"}  # prompts are set per thread, from the corpus
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read", "chat:write", "commands", "im:history",
        "channels:history", "groups:history", "mpim:history",  # conversations.replies; message.channels/.groups
        "assistant:write",  # assistant.threads.setStatus / setSuggestedPrompts / setTitle
        "reactions:write",  # the working signal
    }
    assert "user" not in manifest["oauth_config"]["scopes"]


async def test_socket_mode_answers_and_acknowledges_each_envelope_once(api, fake_advisor):
    """Socket Mode (the default) against a mock WebSocket: apps.connections.open, envelopes, acks."""
    from aiohttp import web

    from bot.slack.serve import serve_socket_mode

    acks: list[dict] = []
    event = fixture("event_app_mention.json")

    async def socket(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1})
        for attempt in (0, 1):  # the event, then Slack's retry of it
            await ws.send_json({"envelope_id": f"env-{attempt}", "type": "events_api", "payload": event,
                                "accepts_response_payload": False, "retry_attempt": attempt, "retry_reason": ""})
        async for message in ws:
            acks.append(json.loads(message.data))
        return ws

    web_app = web.Application()
    web_app.add_routes([web.get("/link", socket)])
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    api.responses["apps.connections.open"] = {"ok": True, "url": f"ws://127.0.0.1:{runner.addresses[0][1]}/link"}
    service = ChatService(fake_advisor, limits=Limits(duplicate_seconds=0))
    app = create_app(service, SlackTokens(BOT_TOKEN, app_token="xapp-1-A1-2-fake", api_url=api.url))
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_socket_mode(app, "xapp-1-A1-2-fake", stop))
    try:
        [post] = await api.wait_async("chat.postMessage")
        assert post.body["thread_ts"] == "1700000100.000100" and "[1]" in all_text(post)
        deadline = time.monotonic() + 5
        while len(acks) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert sorted(a["envelope_id"] for a in acks) == ["env-0", "env-1"]
        [opened] = api.calls_to("apps.connections.open")
        assert opened.headers.get("Authorization") == "Bearer xapp-1-A1-2-fake"
        await asyncio.sleep(QUIET)
        assert len(api.calls_to("chat.postMessage")) == 1
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)
        await runner.cleanup()


async def test_a_token_slack_refuses_is_reported_at_start(api):
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.serve import check_auth

    client = AsyncWebClient(token=BOT_TOKEN, base_url=api.url)
    await check_auth(client)  # accepted: no error
    api.responses["auth.test"] = {"ok": False, "error": "invalid_auth"}
    with pytest.raises(SettingsError, match="Slack refused SLACK_BOT_TOKEN \\(invalid_auth\\)") as caught:
        await check_auth(client)
    assert BOT_TOKEN not in str(caught.value)


async def test_an_app_token_slack_refuses_is_reported_at_start(api, fake_advisor):
    from bot.slack.serve import serve_socket_mode

    api.responses["apps.connections.open"] = {"ok": False, "error": "invalid_auth"}
    app = create_app(ChatService(fake_advisor), SlackTokens(BOT_TOKEN, app_token="xapp-1-bad", api_url=api.url))
    with pytest.raises(SettingsError, match="Slack refused SLACK_APP_TOKEN \\(invalid_auth\\)"):
        await asyncio.wait_for(serve_socket_mode(app, "xapp-1-bad", asyncio.Event()), 10)


async def test_a_slow_shared_store_does_not_hold_up_other_requests(fake_advisor, tmp_path):
    """Event claims go to the store, which may be a database on another host: while one claim waits on it, the event
    loop keeps serving (acknowledgements of other requests must still come within Slack's 3 s)."""
    from bot.store import Store
    from slack_bolt.request.async_request import AsyncBoltRequest

    release, entered = threading.Event(), threading.Event()

    class SlowStore(Store):
        def claim_event(self, event_id, keep_seconds=3600.0):
            entered.set()
            release.wait(5)
            return super().claim_event(event_id, keep_seconds)

    store = SlowStore(tmp_path / "advisor.sqlite3", salt="test")
    try:
        app = create_app(ChatService(fake_advisor, store), SlackTokens(BOT_TOKEN, signing_secret=SECRET))
        adapter = app.advisor_adapter
        request = AsyncBoltRequest(body="{}", headers={})
        passed = []

        async def next_():
            passed.append(True)

        claiming = asyncio.ensure_future(adapter.skip_retries(request, {"event_id": "Ev1"}, next_))
        ticks = 0
        while not entered.is_set() and ticks < 500:
            await asyncio.sleep(0.01)
            ticks += 1
        assert entered.is_set(), "the claim was never made"
        started = time.perf_counter()
        await asyncio.sleep(0.05)  # the loop still runs other work while the claim waits
        assert time.perf_counter() - started < 1.0 and not claiming.done()
        release.set()
        await asyncio.wait_for(claiming, 5)
        assert passed == [True], "a first delivery is answered once the claim is won"
    finally:
        release.set()
        store.close()
