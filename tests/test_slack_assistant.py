"""The assistant panel, the working signal, thread follow-ups and the Home tab, through the real bolt app."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from pathlib import Path

import pytest

from bot.assistant_prompts import questions_of
from bot.service import ChatService
from bot.slack.home import MAX_HOME_BLOCKS, to_home_view
from bot.slack.render import MAX_BUTTON_TEXT, MAX_SECTION_TEXT
from bot.store import Store
from tests.mock_slack_api import MockSlackAPI, serve
from tests.support import query

FIXTURES = Path(__file__).parent / "fixtures" / "slack"
QUIET = 0.3  # how long to wait to be sure nothing (more) is posted
PANEL, PANEL_THREAD = "D0PANEL", "1700001000.001000"
MENTION_TS = "1700000100.000100"  # the asking message of event_app_mention.json, and so its thread


def fixture(name: str, **replace) -> dict:
    text = (FIXTURES / name).read_text()
    for key, value in replace.items():
        text = text.replace(key, value)
    return json.loads(text)


def all_text(call) -> str:
    return json.dumps(call.body.get("blocks", [])) + call.body.get("text", "")


def questions_asked(store: Store) -> list[str]:
    return [r["question"] for r in query(store, "SELECT question FROM answers ORDER BY created")]


def reply_in_thread(text: str, event_id: str, ts: str = "1700000200.000200", **event) -> dict:
    """A person's reply in the thread of event_app_mention.json, without a mention of advisor."""
    payload = fixture("event_message_thread_reply.json")
    payload["event_id"] = event_id
    payload["event"].update(text=text, ts=ts, event_ts=ts, **event)
    return payload


@pytest.fixture
def api():
    with MockSlackAPI() as mock:
        yield mock


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "advisor.sqlite3")
    yield store
    store.close()


@pytest.fixture
async def slack(api, fake_advisor, store):
    async with serve(api, ChatService(fake_advisor, store)) as harness:
        yield harness


@pytest.fixture
def section_questions(fake_advisor) -> list[str]:
    return questions_of(c.section for c in fake_advisor.engine.retriever.index.chunks)


# -- the assistant panel ------------------------------------------------------------------------------

async def test_opening_the_panel_greets_and_suggests_the_corpus_section_questions(slack, section_questions):
    status, _, _ = await slack.sender.event(fixture("event_assistant_thread_started.json"))
    assert status == 200
    [prompts] = await slack.api.wait_async("assistant.threads.setSuggestedPrompts")
    assert (prompts.body["channel_id"], prompts.body["thread_ts"]) == (PANEL, PANEL_THREAD)
    suggested = [p["message"] for p in prompts.body["prompts"]]
    assert len(suggested) == 4 and set(suggested) <= set(section_questions)
    assert "Do startups actually hire ML PMs, or is it just AI PM?" in section_questions
    assert all(p["title"] and len(p["title"]) <= 75 for p in prompts.body["prompts"])
    [greeting] = slack.api.calls_to("chat.postMessage")
    assert greeting.body["thread_ts"] == PANEL_THREAD and "documents" in greeting.body["text"]
    assert slack.api.position(greeting) < slack.api.position(prompts)
    assert not slack.api.calls_to("conversations.replies") and not slack.api.calls_to("chat.update")


async def test_a_question_in_the_panel_shows_a_status_then_the_answer_in_its_thread(slack):
    await slack.sender.event(fixture("event_assistant_message.json"))
    [post] = await slack.api.wait_async("chat.postMessage")
    [status] = slack.api.calls_to("assistant.threads.setStatus")
    [title] = slack.api.calls_to("assistant.threads.setTitle")
    assert slack.api.position(status) < slack.api.position(post)
    assert slack.api.position(title) < slack.api.position(post)
    assert (status.body["channel_id"], status.body["thread_ts"]) == (PANEL, PANEL_THREAD)
    assert status.body["status"] == "is searching the documents…"
    assert title.body["title"] == "Do startups actually hire ML PMs?"
    assert (post.body["channel"], post.body["thread_ts"]) == (PANEL, PANEL_THREAD)
    blocks = post.body["blocks"]
    assert "[1]" in blocks[0]["text"]["text"] and blocks[-1]["type"] == "actions"
    assert [e["action_id"] for e in blocks[-1]["elements"]] == ["advisor_helpful", "advisor_not_helpful"]

    follow_up = fixture("event_assistant_message.json")
    follow_up["event_id"] = "Ev0PANEL4"
    follow_up["event"].update(text="and at Series B?", ts="1700001150.001150", event_ts="1700001150.001150")
    await slack.sender.event(follow_up)
    posts = await slack.api.wait_async("chat.postMessage", 2)
    assert posts[1].body["thread_ts"] == PANEL_THREAD
    assert len(slack.api.calls_to("assistant.threads.setStatus")) == 2
    assert len(slack.api.calls_to("assistant.threads.setTitle")) == 1, "the first question names the thread"
    [row] = query(slack.service.store, "SELECT context FROM answers WHERE question = 'and at Series B?'")
    assert json.loads(row["context"]) == ["Do startups actually hire ML PMs?"]


async def test_a_panel_thread_started_here_is_answered_without_reading_its_history(slack):
    await slack.sender.event(fixture("event_assistant_thread_started.json"))
    await slack.api.wait_async("assistant.threads.setSuggestedPrompts")
    await slack.sender.event(fixture("event_assistant_message.json"))
    posts = await slack.api.wait_async("chat.postMessage", 2)  # the greeting, then the answer
    assert "[1]" in all_text(posts[1]) and posts[1].body["thread_ts"] == PANEL_THREAD
    assert not slack.api.calls_to("conversations.replies"), "conversations.replies is tightly rate-limited"


async def test_a_panel_that_refuses_the_status_still_gets_the_answer(slack, caplog):
    slack.api.responses["assistant.threads.setStatus"] = {"ok": False, "error": "missing_scope"}
    with caplog.at_level(logging.INFO, logger="bot.slack.assistant"):
        await slack.sender.event(fixture("event_assistant_message.json"))
        [post] = await slack.api.wait_async("chat.postMessage")
    assert "[1]" in all_text(post) and "missing_scope" in caplog.text and "Traceback" not in caplog.text


async def test_the_viewed_channel_is_kept_without_reading_any_history(slack):
    await slack.sender.event(fixture("event_assistant_thread_context_changed.json"))
    store = slack.app.advisor_adapter.assistant.thread_context_store
    deadline = time.monotonic() + 5
    while (found := await store.find(channel_id=PANEL, thread_ts=PANEL_THREAD)) is None:
        assert time.monotonic() < deadline, "the context was never kept"
        await asyncio.sleep(0.02)
    assert found["channel_id"] == "C0RANDOM"
    await asyncio.sleep(QUIET)
    assert [c.method for c in slack.api.calls if c.method != "auth.test"] == [], "no Web API call at all"


# -- the working signal on mentions -----------------------------------------------------------------

async def test_a_mention_gets_eyes_at_once_and_loses_them_when_answered(slack):
    await slack.sender.event(fixture("event_app_mention.json"))
    [post] = await slack.api.wait_async("chat.postMessage")
    [removed] = await slack.api.wait_async("reactions.remove")
    [added] = slack.api.calls_to("reactions.add")
    assert (added.body["channel"], added.body["timestamp"], added.body["name"]) == ("C0GENERAL", MENTION_TS, "eyes")
    assert removed.body == added.body
    assert slack.api.position(added) < slack.api.position(post) < slack.api.position(removed)


async def test_a_failed_answer_loses_its_eyes_and_says_so_in_the_thread(api, store):
    class Broken:
        def answer(self, question):
            raise RuntimeError("faiss fell over")

        def documents(self):
            return []

    async with serve(api, ChatService(Broken(), store)) as slack:
        await slack.sender.event(fixture("event_app_mention.json"))
        [post] = await api.wait_async("chat.postMessage")
        [removed] = await api.wait_async("reactions.remove")
    assert post.body["thread_ts"] == MENTION_TS and post.body["text"].startswith("Something went wrong")
    assert api.position(post) < api.position(removed)


async def test_without_reactions_write_the_answer_still_comes(slack, caplog):
    slack.api.responses["reactions.add"] = {"ok": False, "error": "missing_scope"}
    with caplog.at_level(logging.WARNING):
        await slack.sender.event(fixture("event_app_mention.json"))
        [post] = await slack.api.wait_async("chat.postMessage")
    assert "[1]" in all_text(post)
    await asyncio.sleep(QUIET)
    assert not slack.api.calls_to("reactions.remove")  # nothing to remove
    assert "missing_scope" in caplog.text and "Traceback" not in caplog.text


# -- follow-ups in a channel thread without a new mention ------------------------------------------

async def answered_mention(slack) -> None:
    await slack.sender.event(fixture("event_app_mention.json"))
    await slack.api.wait_async("chat.postMessage")


async def test_a_reply_in_a_thread_advisor_answered_in_is_a_follow_up(slack):
    await answered_mention(slack)
    await slack.sender.event(reply_in_thread("and at Series B?", "Ev0REPLY1"))
    posts = await slack.api.wait_async("chat.postMessage", 2)
    assert posts[1].body["thread_ts"] == MENTION_TS and "[1]" in all_text(posts[1])
    assert any(a.body["timestamp"] == "1700000200.000200" for a in slack.api.calls_to("reactions.add"))
    rows = query(slack.service.store, "SELECT question, context FROM answers ORDER BY created")
    assert rows[1]["question"] == "and at Series B?"
    assert json.loads(rows[1]["context"]) == ["does a Series A startup hire ML PMs?"]


NOT_FOR_THE_BOT = {
    "a reply to another person": {"text": "<@U0OTHER> I think that was at Series B"},
    "a message that mentions someone else": {"text": "thanks, looping in <@U0OTHER|ravi> on this"},
    "a message edit": {"subtype": "message_changed", "hidden": True,
                       "message": {"type": "message", "user": "U0LEAD", "text": "and at Series C?",
                                   "ts": "1700000150.000150", "thread_ts": MENTION_TS}},
    "another bot": {"bot_id": "B0OTHERBOT", "text": "Reminder: standup in 5 minutes"},
}


@pytest.mark.parametrize("case", NOT_FOR_THE_BOT, ids=list(NOT_FOR_THE_BOT))
async def test_thread_messages_not_for_the_bot_are_left_alone(slack, case):
    await answered_mention(slack)
    event = {"text": "", **NOT_FOR_THE_BOT[case]}
    await slack.sender.event(reply_in_thread(event.pop("text"), "Ev0NOTFORBOT", ts="1700000190.000190", **event))
    await slack.sender.event(reply_in_thread("and at Series B?", "Ev0REPLY1"))  # then a real follow-up
    posts = await slack.api.wait_async("chat.postMessage", 2)
    await asyncio.sleep(QUIET)
    assert slack.api.calls_to("chat.postMessage") == posts, "only the real follow-up is answered"
    assert questions_asked(slack.service.store) == ["does a Series A startup hire ML PMs?", "and at Series B?"]


async def test_a_reply_in_a_thread_advisor_never_answered_in_is_left_alone(slack):
    other_thread = reply_in_thread("and at Series B?", "Ev0REPLY9", thread_ts="1700000099.000099")
    await slack.sender.event(other_thread)
    await asyncio.sleep(QUIET)
    assert not slack.api.calls_to("chat.postMessage") and not slack.api.calls_to("reactions.add")


async def test_a_reply_that_mentions_advisor_is_answered_once(slack):
    """Slack sends both app_mention and message.channels for it: the mention answers, the message does not."""
    await answered_mention(slack)
    mention = fixture("event_app_mention_thread.json")
    message = reply_in_thread(mention["event"]["text"], "Ev0REPLY2")
    await asyncio.gather(slack.sender.event(message), slack.sender.event(mention))
    await slack.api.wait_async("chat.postMessage", 2)
    await asyncio.sleep(QUIET)
    assert len(slack.api.calls_to("chat.postMessage")) == 2
    assert questions_asked(slack.service.store)[1] == "and at Series B?"


async def test_the_workspace_switch_turns_follow_ups_off(api, fake_advisor, store, monkeypatch):
    monkeypatch.setenv("ADVISOR_SLACK_THREAD_FOLLOW_UPS", "0")
    async with serve(api, ChatService(fake_advisor, store)) as slack:
        await answered_mention(slack)
        await slack.sender.event(reply_in_thread("and at Series B?", "Ev0REPLY1"))
        await asyncio.sleep(QUIET)
        assert len(api.calls_to("chat.postMessage")) == 1


def test_a_bad_workspace_switch_says_what_to_set(monkeypatch, fake_advisor):
    from bot.settings import SettingsError
    from bot.slack.app import create_app
    from bot.slack.settings import SlackTokens

    monkeypatch.setenv("ADVISOR_SLACK_THREAD_FOLLOW_UPS", "maybe")
    with pytest.raises(SettingsError, match="ADVISOR_SLACK_THREAD_FOLLOW_UPS must be 1 .* or 0"):
        create_app(ChatService(fake_advisor), SlackTokens("xoxb-1-fake", signing_secret="0" * 32))


async def ask(slack, name: str, text: str) -> dict:
    form = fixture("command_ask.json", RESPONSE_URL=slack.api.response_url(name))
    form["text"] = text
    assert (await slack.sender.command(form))[0] == 200
    [response] = await slack.api.wait_async(f"/response/{name}")
    return response.body


async def test_a_channel_can_turn_follow_ups_off_and_on_with_ask(slack, api, fake_advisor, store):
    await answered_mention(slack)
    off = await ask(slack, "off", "follow-ups off")
    assert off["response_type"] == "ephemeral" and "off here" in off["text"]
    await slack.sender.event(reply_in_thread("and at Series B?", "Ev0REPLY1"))
    await asyncio.sleep(QUIET)
    assert len(api.calls_to("chat.postMessage")) == 1, "off: the reply is left alone"
    assert store.channel_setting("slack", "C0GENERAL", "thread_follow_ups") == "off"
    assert "off here" in (await ask(slack, "state", "follow-ups"))["text"]
    assert "didn't understand" in (await ask(slack, "bad", "follow-ups sometimes"))["text"]
    assert store.count() == 1, "none of these was taken for a question"

    async with serve(api, ChatService(fake_advisor, store)) as restarted:  # the switch outlasts a restart
        await restarted.sender.event(reply_in_thread("and at Series B?", "Ev0REPLY2", ts="1700000210.000210"))
        await asyncio.sleep(QUIET)
        assert len(api.calls_to("chat.postMessage")) == 1
        assert "on here" in (await ask(restarted, "on", "follow-ups on"))["text"]
        await restarted.sender.event(reply_in_thread("and at Series B?", "Ev0REPLY3", ts="1700000220.000220"))
        posts = await api.wait_async("chat.postMessage", 2)
        assert posts[1].body["thread_ts"] == MENTION_TS


# -- the Home tab ------------------------------------------------------------------------------------

def assert_within_block_kit_limits(view: dict) -> None:
    blocks = view["blocks"]
    assert view["type"] == "home" and 0 < len(blocks) <= MAX_HOME_BLOCKS
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25
            ids = [e["action_id"] for e in block["elements"]]
            assert len(set(ids)) == len(ids)
            for button in block["elements"]:
                assert len(button["text"]["text"]) <= MAX_BUTTON_TEXT and len(button["value"]) <= 2000


async def test_opening_the_home_tab_publishes_the_home_view(slack, fake_advisor, section_questions):
    status, _, _ = await slack.sender.event(fixture("event_app_home_opened.json"))
    assert status == 200
    [published] = await slack.api.wait_async("views.publish")
    assert published.body["user_id"] == "U0ASKER"
    view = published.body["view"]
    assert_within_block_kit_limits(view)
    text = json.dumps(view, ensure_ascii=False)
    for _, title in fake_advisor.documents():
        assert title in text
    for way in ("@advisor", "/ask", "Ask advisor", "assistant panel", "Messages tab"):
        assert way in text
    [questions] = [b for b in view["blocks"] if b["type"] == "actions"]
    assert [b["value"] for b in questions["elements"]] == section_questions[:len(questions["elements"])]
    assert view["private_metadata"] == "D0DIRECT"


async def test_the_messages_tab_opening_publishes_nothing(slack):
    event = fixture("event_app_home_opened.json")
    event["event"]["tab"] = "messages"
    await slack.sender.event(event)
    await asyncio.sleep(QUIET)
    assert not slack.api.calls_to("views.publish")


def test_the_home_view_stays_within_limits_however_big_the_corpus():
    titles = [f"Document {n} " + "with a very long title & <!channel> " * 20 for n in range(400)]
    questions = ["Why " + "ever so " * 40 + "long?" for _ in range(30)]
    view = to_home_view(titles, questions, "D0DIRECT")
    assert_within_block_kit_limits(view)
    text = json.dumps(view)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "(400)" in text


async def test_a_suggested_question_on_the_home_tab_is_answered_in_the_dm(slack, section_questions):
    question = section_questions[0]
    click = fixture("block_actions_home_ask.json")
    click["actions"][0]["value"] = question
    status, _, _ = await slack.sender.interaction(click)
    assert status == 200
    [post] = await slack.api.wait_async("chat.postMessage")
    assert post.body["channel"] == "D0DIRECT" and "thread_ts" not in post.body
    assert question in post.body["blocks"][0]["elements"][0]["text"]
    assert "[1]" in all_text(post) and post.body["blocks"][-1]["type"] == "actions"
    assert questions_asked(slack.service.store) == [question]


async def test_a_home_question_slack_refuses_to_post_is_recorded_as_not_delivered(slack, caplog):
    slack.api.responses["chat.postMessage"] = {"ok": False, "error": "channel_not_found"}
    click = copy.deepcopy(fixture("block_actions_home_ask.json"))
    click["actions"][0]["value"] = "Do startups actually hire ML PMs?"
    with caplog.at_level(logging.ERROR):
        await slack.sender.interaction(click)
        deadline = time.monotonic() + 5
        while not caplog.records:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "channel_not_found" in error.getMessage() and not error.exc_info


def test_the_cli_reports_a_bad_follow_up_switch_before_loading_anything(monkeypatch, capsys):
    from bot.cli.entry import main
    from tests.mock_slack_api import BOT_TOKEN, SECRET

    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("ADVISOR_SLACK_THREAD_FOLLOW_UPS", "maybe")
    assert main(["serve", "slack", "--http", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "ADVISOR_SLACK_THREAD_FOLLOW_UPS must be 1" in err and "Traceback" not in err and BOT_TOKEN not in err
