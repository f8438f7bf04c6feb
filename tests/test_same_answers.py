"""Slack and Discord give the same answers: one shared chat service, both real adapters, the same question.

Slack goes through slack-bolt (signed HTTP events to the app, its Web API mocked on 127.0.0.1); Discord
through discord.py's gateway parser and command tree (its REST API mocked on 127.0.0.1). The citations
each platform shows are compared with each other and with what the shared store recorded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import discord
import pytest

from bot.discord.app import create_bot
from bot.service import ChatService
from bot.slack.render import ACTION_HELPFUL, citation_text
from bot.store import Store
from retrieval.vocabulary import Citation
from tests.mock_discord_api import APPLICATION_ID, DEFAULT_CHANNEL_ID, MockDiscordAPI
from tests.mock_slack_api import MockSlackAPI, SlackSender, serve

FIXTURES = Path(__file__).parent / "fixtures"
DISCORD_CHANNEL = DEFAULT_CHANNEL_ID
QUESTIONS = [
    "does a Series A startup hire ML PMs?",
    "what is the difference between an AI PM and an ML PM?",
    "how do I move from data analyst to a data PM role?",
    "what is the best pizza in Naples?",
]


def fixture(path: str) -> dict:
    return json.loads((FIXTURES / path).read_text())


@dataclass
class Both:
    service: ChatService
    store: Store
    slack_api: MockSlackAPI
    slack: SlackSender
    discord_api: MockDiscordAPI
    discord: discord.Client


@pytest.fixture
async def both(fake_advisor, tmp_path, monkeypatch):
    store = Store(tmp_path / "advisor.sqlite3", salt="test")
    service = ChatService(fake_advisor, store)
    with MockSlackAPI() as slack_api:
        async with MockDiscordAPI() as discord_api:
            monkeypatch.setattr(discord.http.Route, "BASE", discord_api.base)
            client = create_bot(service)
            await client.login("mock.discord.token")
            try:
                async with serve(slack_api, service) as slack:
                    yield Both(service, store, slack_api, slack.sender, discord_api, client)
            finally:
                await client.close()
    store.close()


async def ask_slack(both: Both, question: str) -> tuple[str, list[dict]]:
    """@advisor <question> in a Slack channel; returns (answer id, blocks posted)."""
    event = fixture("slack/event_app_mention.json")
    event["event"]["text"] = f"<@UBOTADVISOR> {question}"
    status, _, _ = await both.slack.event(event)
    assert status == 200
    [post] = await both.slack_api.wait_async("chat.postMessage")
    blocks = post.body["blocks"]
    answer_id = next(e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]
                     if e["action_id"] == ACTION_HELPFUL)  # a declined answer's suggestions come first
    return answer_id, blocks


async def ask_discord(both: Both, question: str) -> tuple[str, dict]:
    """@advisor <question> in a Discord channel; returns (answer id, embed posted)."""
    message = fixture("discord/message_create_mention.json")
    message["content"] = f"<@{APPLICATION_ID}> {question}"
    both.discord._connection.parsers["MESSAGE_CREATE"](message)
    [post] = await both.discord_api.wait_for("POST", rf"^/channels/{DISCORD_CHANNEL}/messages$")
    components = [c for row in post.body["components"] for c in row["components"]]
    helpful = next(c["custom_id"] for c in components if c["custom_id"].startswith("advisor:fb:up:"))
    return helpful.rsplit(":", 1)[1], post.body["embeds"][0]


def markers(text: str) -> list[str]:
    return re.findall(r"\[(\d+)\]", text)


@pytest.mark.parametrize("question", QUESTIONS)
async def test_the_same_question_gets_the_same_citations_on_slack_and_discord(both, question):
    slack_id, blocks = await ask_slack(both, question)
    discord_id, embed = await ask_discord(both, question)

    # the shared core answered both the same way
    slack_record, discord_record = both.store.answer_record(slack_id), both.store.answer_record(discord_id)
    assert (slack_record["platform"], discord_record["platform"]) == ("slack", "discord")
    assert slack_record["citations"] == discord_record["citations"]
    for key in ("question", "answer", "abstained", "sentences"):
        assert slack_record[key] == discord_record[key], key
    citations = [Citation(**c) for c in discord_record["citations"]]

    # and each platform shows those same passages, in the same order, with the same [n] markers
    slack_sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    slack_cited = [s for s in slack_sections if re.match(r"\*\[\d+\] ", s)]
    assert slack_cited == [citation_text(c) for c in citations]
    fields = embed.get("fields", [])
    assert [f["name"].split("]")[0] + "]" for f in fields] == [f"[{c.number}]" for c in citations]
    for field, c in zip(fields, citations, strict=True):
        assert field["name"].startswith(f"[{c.number}] {c.title}")
        assert discord.utils.escape_markdown(c.quote) in field["value"]
    assert markers(slack_sections[0]) == markers(embed["description"])
    if discord_record["abstained"]:
        assert not fields and not slack_cited


async def test_follow_ups_in_a_thread_agree_too(both):
    """The thread context is kept per platform and conversation, and gives the same follow-up answer."""
    event = fixture("slack/event_app_mention.json")
    for n, text in enumerate(["does a Series A startup hire ML PMs?", "and at Series B?"], 1):
        event["event_id"], event["event"]["ts"] = f"Ev0SAME{n}", f"1700000200.00000{n}"
        event["event"]["thread_ts"] = "1700000200.000001"
        event["event"]["text"] = f"<@UBOTADVISOR> {text}"
        await both.slack.event(event)
        await both.slack_api.wait_async("chat.postMessage", n)
    slack_post = both.slack_api.calls_to("chat.postMessage")[-1]
    slack_id = next(e["value"] for b in slack_post.body["blocks"] if b["type"] == "actions"
                    for e in b["elements"] if e["action_id"] == ACTION_HELPFUL)

    both.discord_api.channels["1110000000000000500"] = fixture("discord/channel_thread.json")
    for n, name in enumerate(["message_create_thread_first", "message_create_thread_followup"], 1):
        both.discord._connection.parsers["MESSAGE_CREATE"](fixture(f"discord/{name}.json"))
        [*_, post] = await both.discord_api.wait_for("POST", r"^/channels/1110000000000000500/messages$", n)
    discord_id = [c["custom_id"] for row in post.body["components"] for c in row["components"]][0].rsplit(":", 1)[1]

    slack_record, discord_record = both.store.answer_record(slack_id), both.store.answer_record(discord_id)
    assert slack_record["context"] == discord_record["context"] == ["does a Series A startup hire ML PMs?"]
    assert slack_record["citations"] == discord_record["citations"]
