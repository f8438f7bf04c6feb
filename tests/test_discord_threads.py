"""Discord follow-ups in a thread without a new mention, and /ask suggestions, through discord.py's real parsers and
command tree against the mock Discord API."""

from __future__ import annotations

import asyncio
import contextlib
import copy

import discord
import pytest

from bot.assistant_prompts import questions_of
from bot.discord.app import create_bot
from bot.service import ChatService
from tests.mock_discord_api import APPLICATION_ID
from tests.support import CHANNEL, GUILD, RAVI, THREAD, answer_id_of, deliver, discord_api, open_test_store, payload

QUIET = 0.3  # how long to wait to be sure nothing (more) is sent
AUTOCOMPLETE = 8  # the interaction callback type that carries choices
RAVI_USER = {"id": RAVI, "username": "ravi", "global_name": "Ravi", "discriminator": "0", "avatar": None,
             "public_flags": 0}


@pytest.fixture
async def api(monkeypatch):
    async with discord_api(monkeypatch) as server:
        yield server


@pytest.fixture
def store(tmp_path):
    with contextlib.closing(open_test_store(tmp_path)) as store:
        yield store


async def start(service) -> discord.Client:
    client = create_bot(service, guild_id=int(GUILD))
    await client.login("mock.discord.token")
    return client


@pytest.fixture
async def bot(fake_advisor, store, api, monkeypatch):
    monkeypatch.setenv("ADVISOR_DISCORD_THREAD_FOLLOW_UPS", "1")
    client = await start(ChatService(fake_advisor, store))
    yield client
    await client.close()


def in_thread(text: str, message_id: str, **changes) -> dict:
    """A person's message in THREAD that mentions nobody."""
    data = payload("message_create_thread_followup")
    data.update({"id": message_id, "content": text, "mentions": [], **changes})
    return data


async def answered_in_thread(bot, api) -> None:
    api.channels[THREAD] = payload("channel_thread")  # not cached: the bot asks what the channel is
    deliver(bot, "MESSAGE_CREATE", payload("message_create_thread_first"))
    await api.wait_for("POST", rf"^/channels/{THREAD}/messages$")


def replies(api) -> list:
    return api.find("POST", rf"^/channels/{THREAD}/messages$")


# -- follow-ups ---------------------------------------------------------------------------------------

async def test_a_message_in_a_thread_advisor_answered_in_is_a_follow_up(bot, api, store):
    assert bot.intents.message_content, "the text of messages without a mention needs the intent"
    await answered_in_thread(bot, api)
    deliver(bot, "MESSAGE_CREATE", in_thread("and at Series B?", "1160000000000000010"))
    reply = (await api.wait_for("POST", rf"^/channels/{THREAD}/messages$", 2))[-1].body
    assert str(reply["message_reference"]["message_id"]) == "1160000000000000010"
    assert reply["allowed_mentions"]["parse"] == []
    record = store.answer_record(answer_id_of(reply))
    assert (record["channel"], record["thread"], record["question"]) == (CHANNEL, THREAD, "and at Series B?")
    assert record["context"] == ["does a Series A startup hire ML PMs?"]
    assert len(api.find("POST", rf"^/channels/{THREAD}/typing$")) == 2, "typing while answering, as for mentions"


NOT_FOR_THE_BOT = {
    "a message that mentions someone else": {"content": f"<@{RAVI}> what do you think?", "mentions": [RAVI_USER]},
    "a reply to another person": {
        "type": 19, "message_reference": {"message_id": "1160000000000000005", "channel_id": THREAD, "guild_id": GUILD},
        "referenced_message": {**in_thread("I think Series B hires more", "1160000000000000005"), "author": RAVI_USER}},
    "a message to everyone": {"content": "@everyone standup moved", "mention_everyone": True},
}


@pytest.mark.parametrize("case", NOT_FOR_THE_BOT, ids=list(NOT_FOR_THE_BOT))
async def test_thread_messages_for_other_people_are_left_alone(bot, api, case):
    await answered_in_thread(bot, api)
    changes = copy.deepcopy(NOT_FOR_THE_BOT[case])
    deliver(bot, "MESSAGE_CREATE", in_thread(changes.pop("content", "sounds right to me"), "1160000000000000011",
                                             **changes))
    deliver(bot, "MESSAGE_CREATE", in_thread("and at Series B?", "1160000000000000012"))  # then a real follow-up
    sent = await api.wait_for("POST", rf"^/channels/{THREAD}/messages$", 2)
    await asyncio.sleep(QUIET)
    assert replies(api) == sent, "only the real follow-up is answered"
    assert str(sent[1].body["message_reference"]["message_id"]) == "1160000000000000012"


async def test_a_message_in_a_thread_advisor_never_answered_in_costs_nothing(bot, api):
    deliver(bot, "MESSAGE_CREATE", in_thread("and at Series B?", "1160000000000000013"))
    await asyncio.sleep(QUIET)
    assert not api.find("POST", r"^/channels/") and not api.find("GET", r"^/channels/"), "not even a channel lookup"


async def test_follow_ups_are_off_unless_the_operator_turns_them_on(fake_advisor, store, api):
    client = await start(ChatService(fake_advisor, store))
    try:
        assert not client.intents.message_content, "no privileged intent by default"
        await answered_in_thread(client, api)
        deliver(client, "MESSAGE_CREATE", in_thread("and at Series B?", "1160000000000000014"))
        await asyncio.sleep(QUIET)
        assert len(replies(api)) == 1
    finally:
        await client.close()


async def test_a_thread_answered_before_a_restart_still_takes_follow_ups(bot, api, fake_advisor, store):
    await answered_in_thread(bot, api)
    await bot.close()
    restarted = await start(ChatService(fake_advisor, store))  # nothing in memory: the store knows the thread
    try:
        deliver(restarted, "MESSAGE_CREATE", in_thread("and at Series B?", "1160000000000000015"))
        await api.wait_for("POST", rf"^/channels/{THREAD}/messages$", 2)
    finally:
        await restarted.close()


# -- /ask suggestions ---------------------------------------------------------------------------------

def autocomplete(typed: str, interaction_id: str = "1300000000000000050") -> dict:
    data = payload("interaction_slash_ask")
    data.update(id=interaction_id, type=4)
    data["data"]["options"] = [{"name": "question", "type": 3, "value": typed, "focused": True}]
    return data


@pytest.fixture
def section_questions(fake_advisor) -> list[str]:
    return questions_of(c.section for c in fake_advisor.engine.retriever.index.chunks)


async def test_ask_suggests_the_corpus_section_questions_as_you_type(bot, api, section_questions):
    synced = api.find("PUT", rf"^/applications/{APPLICATION_ID}/guilds/{GUILD}/commands$")[0].body
    question_option = next(o for c in synced if c["name"] == "ask" for o in c["options"] if o["name"] == "question")
    assert question_option["autocomplete"] is True

    deliver(bot, "INTERACTION_CREATE", autocomplete("startups hire"))
    [callback] = await api.wait_for("POST", r"^/interactions/1300000000000000050/.+/callback$")
    assert callback.body["type"] == AUTOCOMPLETE
    choices = callback.body["data"]["choices"]
    assert choices[0]["value"] == "Do startups actually hire ML PMs, or is it just AI PM?"
    assert all(set(c) == {"name", "value"} and c["value"] in section_questions for c in choices)

    deliver(bot, "INTERACTION_CREATE", autocomplete("", "1300000000000000051"))
    [callback] = await api.wait_for("POST", r"^/interactions/1300000000000000051/.+/callback$")
    choices = callback.body["data"]["choices"]
    assert [c["value"] for c in choices] == section_questions[:25]
    assert all(len(c["name"]) <= 100 and len(c["value"]) <= 100 for c in choices)
    assert not api.find("POST", r"^/webhooks/"), "suggesting answers nothing"


async def test_nothing_matching_suggests_nothing(bot, api):
    deliver(bot, "INTERACTION_CREATE", autocomplete("zzzz qqqq"))
    [callback] = await api.wait_for("POST", r"^/interactions/1300000000000000050/.+/callback$")
    assert callback.body == {"type": AUTOCOMPLETE, "data": {"choices": []}}


def test_a_bad_follow_up_switch_says_what_to_set(monkeypatch, fake_advisor):
    from bot.settings import SettingsError

    monkeypatch.setenv("ADVISOR_DISCORD_THREAD_FOLLOW_UPS", "sometimes")
    with pytest.raises(SettingsError, match="ADVISOR_DISCORD_THREAD_FOLLOW_UPS must be 1"):
        create_bot(ChatService(fake_advisor))



def test_the_cli_reports_a_bad_follow_up_switch_before_loading_anything(monkeypatch, capsys):
    from bot.cli.entry import main

    monkeypatch.setenv("DISCORD_TOKEN", "MTIz.NDU2.Nzg5")
    monkeypatch.setenv("ADVISOR_DISCORD_THREAD_FOLLOW_UPS", "sometimes")
    assert main(["serve", "discord"]) == 2
    err = capsys.readouterr().err
    assert "ADVISOR_DISCORD_THREAD_FOLLOW_UPS must be 1" in err and "Traceback" not in err
