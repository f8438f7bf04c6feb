"""The Discord app driven through discord.py's real gateway parsers, command tree and interaction objects.

Recorded payloads from tests/fixtures/discord/ go in as the gateway would deliver them; discord.py's HTTP
side talks to a mock Discord API on 127.0.0.1 (tests/mock_discord_api.py) that records what would be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from pathlib import Path

import discord
import pytest

from bot.discord.app import PERMISSIONS, create_bot, invite_url
from bot.discord.render import MAX_EMBED_TOTAL
from bot.discord.settings import settings_from_env
from bot.guards import Limits
from bot.messages import ERROR as FAILED
from bot.service import ChatService
from bot.settings import SettingsError
from tests.mock_discord_api import APPLICATION_ID, MockDiscordAPI
from tests.support import (ASHA, CHANNEL, GUILD, RAVI, THREAD, answer_id_of, custom_ids, deliver, discord_api, dump,
                           open_test_store, payload, query)

FIXTURES = Path(__file__).parent / "fixtures" / "discord"
EPHEMERAL = 64


def slash_ask(question: str, private: bool = False, **changes) -> dict:
    data = payload("interaction_slash_ask")
    data["data"]["options"] = [{"name": "question", "type": 3, "value": question},
                               {"name": "private", "type": 5, "value": private}]
    data.update(changes)
    return data


def assert_no_pings(api: MockDiscordAPI) -> None:
    """Every message the bot sent or edited has allowed_mentions set to none."""
    sent = [r for r in api.requests if r.is_message]
    assert sent
    for request in sent:
        mentions = request.message.get("allowed_mentions")
        assert mentions is not None and mentions["parse"] == [], (request.method, request.path)
        assert not mentions.get("users") and not mentions.get("roles") and not mentions.get("replied_user")


@pytest.fixture
async def api(monkeypatch):
    async with discord_api(monkeypatch) as server:
        yield server


@pytest.fixture
def store(tmp_path):
    with contextlib.closing(open_test_store(tmp_path)) as store:
        yield store


@pytest.fixture
def service(fake_advisor, store):
    return ChatService(fake_advisor, store)


async def _bot(service, guild_id=int(GUILD)):
    client = create_bot(service, guild_id=guild_id)
    await client.login("mock.discord.token")  # GET /users/@me, the application, then setup_hook syncs
    return client


@pytest.fixture
async def bot(service, api):
    client = await _bot(service)
    yield client
    await client.close()


async def ask(bot, api, question: str, private: bool = False) -> dict:
    """Run /ask through the command tree and return the follow-up message that carried the answer."""
    before = len(api.find("POST", r"^/webhooks/"))
    deliver(bot, "INTERACTION_CREATE", slash_ask(question, private))
    return (await api.wait_for("POST", r"^/webhooks/", before + 1))[-1].body


# -- start-up ------------------------------------------------------------------------------------


async def test_start_syncs_commands_to_the_guild(bot, api):
    synced = api.find("PUT", rf"^/applications/{APPLICATION_ID}/guilds/{GUILD}/commands$")
    assert len(synced) == 1 and not api.find("PUT", rf"^/applications/{APPLICATION_ID}/commands$")
    commands = {c["name"]: c for c in synced[0].body}
    assert set(commands) == {"ask", "advisor-help", "Ask advisor"}
    assert commands["Ask advisor"]["type"] == 3  # a message context-menu command
    options = {o["name"]: o for o in commands["ask"]["options"]}
    assert options["question"]["required"] and options["private"]["type"] == 5 and not options["private"]["required"]


async def test_without_guild_the_commands_are_synced_globally(service, api):
    client = await _bot(service, guild_id=None)
    try:
        assert len(api.find("PUT", rf"^/applications/{APPLICATION_ID}/commands$")) == 1
        assert not api.find("PUT", r"/guilds/")
    finally:
        await client.close()


async def test_a_failed_sync_is_logged_and_the_bot_still_starts(service, api, caplog):
    api.fail("PUT", r"/commands$", 403, 50001, "Missing Access")
    client = await _bot(service)
    try:
        assert "applications.commands" in caplog.text
    finally:
        await client.close()


def test_a_missing_token_says_what_to_set():
    with pytest.raises(SettingsError, match="DISCORD_TOKEN is not set.*developer portal"):
        settings_from_env()


def test_the_cli_reports_a_missing_token_before_loading_anything(capsys):
    from bot.cli.entry import main

    assert main(["serve", "discord"]) == 2
    assert "DISCORD_TOKEN is not set" in capsys.readouterr().err


def test_token_and_guild_are_checked(monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "not-a-token")
    with pytest.raises(SettingsError, match="does not look like a bot token"):
        settings_from_env()
    monkeypatch.setenv("DISCORD_TOKEN", "MTIz.NDU2.Nzg5")
    assert settings_from_env() == ("MTIz.NDU2.Nzg5", None)
    monkeypatch.setenv("DISCORD_GUILD_ID", "my server")
    with pytest.raises(SettingsError, match="DISCORD_GUILD_ID"):
        settings_from_env()
    monkeypatch.setenv("DISCORD_GUILD_ID", GUILD)
    assert settings_from_env()[1] == int(GUILD)


def test_the_readme_invite_link_grants_what_the_code_needs():
    readme = (Path(__file__).parent.parent / "deploy" / "discord" / "README.md").read_text()
    assert invite_url(1234).replace("1234", "<APPLICATION_ID>") in readme
    assert not (PERMISSIONS.mention_everyone or PERMISSIONS.administrator)


def test_the_discord_py_version_these_tests_rely_on_is_pinned():
    assert discord.__version__ == "2.7.1"


# -- /ask ----------------------------------------------------------------------------------------


async def test_slash_ask_defers_then_answers_in_public_with_citations_and_feedback(bot, api, store):
    question = "Does a Series A startup hire ML PMs?"
    message = await ask(bot, api, question)
    callback, followup = api.find("POST", r"/callback$")[0], api.find("POST", r"^/webhooks/")[0]
    assert api.requests.index(callback) < api.requests.index(followup)
    assert callback.body == {"type": 5}  # deferred with "thinking", public
    assert not message.get("flags", 0) & EPHEMERAL
    embed = message["embeds"][0]
    assert embed["title"] == question and "[1]" in embed["description"]
    assert embed["fields"] and all(f["name"].startswith(f"[{i}] ") for i, f in enumerate(embed["fields"], 1))
    assert len(discord.Embed.from_dict(embed)) <= MAX_EMBED_TOTAL
    answer_id = answer_id_of(message)
    assert custom_ids(message) == [f"advisor:fb:up:{answer_id}", f"advisor:fb:down:{answer_id}"]
    record = store.answer_record(answer_id)
    assert (record["platform"], record["channel"], record["question"]) == ("discord", CHANNEL, question)
    assert [c["title"] for c in record["citations"]] == [f["name"].split("] ", 1)[1].split(" › ")[0]
                                                         for f in embed["fields"]]
    assert_no_pings(api)


async def test_private_ask_is_ephemeral_and_can_be_shared(bot, api, store):
    message = await ask(bot, api, "What does an ML PM do?", private=True)
    assert api.find("POST", r"/callback$")[0].body == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert message["flags"] & EPHEMERAL
    answer_id = answer_id_of(message)
    assert f"advisor:share:{answer_id}" in custom_ids(message)

    deliver(bot, "INTERACTION_CREATE", payload("interaction_button_share", answer_id=answer_id))
    shared = (await api.wait_for("POST", r"^/interactions/1300000000000000006/.+/callback$"))[0].body
    assert shared["type"] == 4 and not shared["data"].get("flags", 0) & EPHEMERAL
    assert shared["data"]["content"].startswith(f"<@{ASHA}> shared")  # shown, never pinged
    assert shared["data"]["embeds"][0]["title"] == "What does an ML PM do?"
    assert not any(c.startswith("advisor:share:") for c in custom_ids(shared["data"]))
    assert_no_pings(api)


async def test_a_follow_up_in_a_thread_uses_the_earlier_question(bot, api, store):
    thread = payload("channel_thread")
    for n, text in enumerate(["Does a Series A startup hire ML PMs?", "and at Series B?"], 1):
        deliver(bot, "INTERACTION_CREATE", slash_ask(text, id=f"13000000000000001{n}", channel=thread,
                                                     channel_id=THREAD))
        message = (await api.wait_for("POST", r"^/webhooks/", n))[-1].body
    record = store.answer_record(answer_id_of(message))
    assert (record["channel"], record["thread"]) == (CHANNEL, THREAD)
    assert record["context"] == ["Does a Series A startup hire ML PMs?"]


async def test_help_lists_the_documents_only_for_the_asker(bot, api, fake_advisor):
    deliver(bot, "INTERACTION_CREATE", payload("interaction_slash_help"))
    body = (await api.wait_for("POST", r"/callback$"))[0].body
    assert body["type"] == 4 and body["data"]["flags"] & EPHEMERAL
    description = body["data"]["embeds"][0]["description"]
    for _, title in fake_advisor.documents():
        assert title in description
    assert "Share in channel" in description
    assert_no_pings(api)


@pytest.mark.parametrize("text", ["help", "?"])
async def test_ask_help_shows_the_help_only_for_the_asker_as_in_slack(bot, api, fake_advisor, store, text):
    deliver(bot, "INTERACTION_CREATE", slash_ask(text))
    body = (await api.wait_for("POST", r"/callback$"))[0].body
    assert body["type"] == 4 and body["data"]["flags"] & EPHEMERAL  # answered at once, not deferred
    description = body["data"]["embeds"][0]["description"]
    assert all(title in description for _, title in fake_advisor.documents())
    assert not api.find("POST", r"^/webhooks/") and store.count() == 0  # not asked as a question
    assert_no_pings(api)


# -- the message menu ----------------------------------------------------------------------------


async def test_ask_advisor_on_a_message_replies_to_that_message(bot, api, store):
    deliver(bot, "INTERACTION_CREATE", payload("interaction_message_menu"))
    reply = (await api.wait_for("POST", rf"^/channels/{CHANNEL}/messages$"))[0].body
    assert api.find("POST", r"/callback$")[0].body == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert str(reply["message_reference"]["message_id"]) == "1140000000000000001"
    assert reply["message_reference"]["fail_if_not_exists"] is False
    record = store.answer_record(answer_id_of(reply))
    assert record["question"] == "Is an AI PM the same job as an ML PM, or are they different roles?"
    assert record["thread"] == "1140000000000000001"  # a thread opened on that message continues it
    done = (await api.wait_for("POST", r"^/webhooks/"))[0].body
    assert done["flags"] & EPHEMERAL and done["content"].startswith("Answered: https://discord.com/channels/")
    assert_no_pings(api)


async def test_ask_advisor_answers_privately_when_it_cannot_post_in_the_channel(bot, api):
    api.fail("POST", rf"^/channels/{CHANNEL}/messages$", 403, 50013, "Missing Permissions")
    deliver(bot, "INTERACTION_CREATE", payload("interaction_message_menu"))
    message = (await api.wait_for("POST", r"^/webhooks/"))[0].body
    assert message["flags"] & EPHEMERAL and message["embeds"]
    assert any(c.startswith("advisor:share:") for c in custom_ids(message))


# -- buttons and the reason form -----------------------------------------------------------------


async def test_helpful_is_recorded_in_the_store(bot, api, store):
    answer_id = answer_id_of(await ask(bot, api, "How do I become an AI PM?"))
    deliver(bot, "INTERACTION_CREATE", payload("interaction_button_helpful", answer_id=answer_id))
    body = (await api.wait_for("POST", r"^/interactions/1300000000000000004/.+/callback$"))[0].body
    assert body["type"] == 4 and body["data"]["flags"] & EPHEMERAL
    [verdict] = store.feedback(answer_id)
    assert verdict["helpful"] is True and verdict["platform"] == "discord"


async def test_not_helpful_is_recorded_then_asks_why(bot, api, store):
    answer_id = answer_id_of(await ask(bot, api, "How do I become an AI PM?"))
    deliver(bot, "INTERACTION_CREATE", payload("interaction_button_not_helpful", answer_id=answer_id))
    modal = (await api.wait_for("POST", r"^/interactions/1300000000000000005/.+/callback$"))[0].body
    assert modal["type"] == 9 and modal["data"]["custom_id"] == f"advisor:why:{answer_id}"
    assert store.feedback(answer_id)[0]["helpful"] is False

    deliver(bot, "INTERACTION_CREATE", payload("interaction_modal_reason", answer_id=answer_id))
    thanks = (await api.wait_for("POST", r"^/interactions/1300000000000000007/.+/callback$"))[0].body
    assert thanks["type"] == 4 and thanks["data"]["flags"] & EPHEMERAL
    [verdict] = store.feedback(answer_id)
    assert (verdict["helpful"], verdict["reason"]) == (False, "It did not say which level the role is at.")
    assert_no_pings(api)


async def test_buttons_work_after_a_restart(service, api, store):
    """The custom_id carries the answer id: a new client (nothing in memory) still records the click."""
    first = await _bot(service)
    answer_id = answer_id_of(await ask(first, api, "How do I become an AI PM?"))
    await first.close()
    second = await _bot(ChatService(service.advisor, store))
    try:
        deliver(second, "INTERACTION_CREATE", payload("interaction_button_helpful", answer_id=answer_id))
        await api.wait_for("POST", r"^/interactions/1300000000000000004/.+/callback$")
        assert store.feedback(answer_id)[0]["helpful"] is True
    finally:
        await second.close()


async def _declined_with_a_suggestion(bot, api, private: bool = False) -> tuple[dict, str]:
    declined = await ask(bot, api, "what's the interview process at Microsoft?", private=private)
    [ask_id, *_] = [c for c in custom_ids(declined) if c.startswith("advisor:ask:")]
    return declined, ask_id


async def test_a_suggestion_under_a_declined_answer_asks_it(bot, api, store):
    declined, ask_id = await _declined_with_a_suggestion(bot, api)
    suggestion = ask_id.removeprefix("advisor:ask:")
    assert "don't cover" in declined["embeds"][0]["description"]
    deliver(bot, "INTERACTION_CREATE", payload("interaction_button_suggestion", custom_id=ask_id, question=suggestion))
    deferred = (await api.wait_for("POST", r"^/interactions/1300000000000000008/.+/callback$"))[0].body
    assert deferred == {"type": 5}  # thinking, in public like the answer it was under
    answer = (await api.wait_for("POST", r"^/webhooks/", 2))[-1].body
    assert answer["embeds"][0]["title"] == suggestion and "[1]" in answer["embeds"][0]["description"]
    record = store.answer_record(answer_id_of(answer))
    assert (record["question"], record["channel"]) == (suggestion, CHANNEL)
    assert_no_pings(api)


async def test_a_suggestion_under_a_private_answer_is_answered_privately(bot, api):
    declined, ask_id = await _declined_with_a_suggestion(bot, api, private=True)
    click = payload("interaction_button_suggestion", custom_id=ask_id, question=ask_id.removeprefix("advisor:ask:"))
    click["message"]["flags"] = EPHEMERAL
    deliver(bot, "INTERACTION_CREATE", click)
    deferred = (await api.wait_for("POST", r"^/interactions/1300000000000000008/.+/callback$"))[0].body
    assert deferred == {"type": 5, "data": {"flags": EPHEMERAL}}
    answer = (await api.wait_for("POST", r"^/webhooks/", 2))[-1].body
    assert answer["flags"] & EPHEMERAL


async def test_sharing_an_unknown_answer_says_so(bot, api):
    deliver(bot, "INTERACTION_CREATE", payload("interaction_button_share", answer_id="0123456789abcdef"))
    body = (await api.wait_for("POST", r"/callback$"))[0].body
    assert body["data"]["flags"] & EPHEMERAL and "no longer available" in body["data"]["content"]


# -- mentions and DMs ----------------------------------------------------------------------------


async def test_a_mention_is_answered_as_a_reply(bot, api, store):
    deliver(bot, "MESSAGE_CREATE", payload("message_create_mention"))
    reply = (await api.wait_for("POST", rf"^/channels/{CHANNEL}/messages$"))[0].body
    assert api.find("POST", rf"^/channels/{CHANNEL}/typing$")
    assert str(reply["message_reference"]["message_id"]) == "1160000000000000001"
    record = store.answer_record(answer_id_of(reply))
    assert record["question"] == "how do I move from data analyst to ML PM?"  # the mention is stripped
    assert record["thread"] == "1160000000000000001"
    assert_no_pings(api)


async def test_mentions_in_a_thread_follow_up_on_the_earlier_question(bot, api, store):
    api.channels[THREAD] = payload("channel_thread")  # not cached: the bot asks what the channel is
    deliver(bot, "MESSAGE_CREATE", payload("message_create_thread_first"))
    await api.wait_for("POST", rf"^/channels/{THREAD}/messages$")
    deliver(bot, "MESSAGE_CREATE", payload("message_create_thread_followup"))
    reply = (await api.wait_for("POST", rf"^/channels/{THREAD}/messages$", 2))[-1].body
    record = store.answer_record(answer_id_of(reply))
    assert (record["channel"], record["thread"]) == (CHANNEL, THREAD)
    assert record["context"] == ["does a Series A startup hire ML PMs?"]


async def test_a_thread_opened_on_an_answer_continues_its_question(bot, api, store):
    """Discord gives a thread started from a message that message's id: the bot knows which answer it was."""
    deliver(bot, "MESSAGE_CREATE", payload("message_create_mention"))
    [post] = await api.wait_for("POST", rf"^/channels/{CHANNEL}/messages$")
    thread_id = post.response["id"]
    api.channels[thread_id] = {**payload("channel_thread"), "id": thread_id}
    follow_up = payload("message_create_thread_followup")
    follow_up["channel_id"] = thread_id
    deliver(bot, "MESSAGE_CREATE", follow_up)
    reply = (await api.wait_for("POST", rf"^/channels/{thread_id}/messages$"))[0].body
    record = store.answer_record(answer_id_of(reply))
    assert record["thread"] == thread_id and record["context"] == ["how do I move from data analyst to ML PM?"]


async def test_ask_advisor_on_a_message_without_text_says_so(bot, api):
    data = payload("interaction_message_menu")
    next(iter(data["data"]["resolved"]["messages"].values()))["content"] = ""
    deliver(bot, "INTERACTION_CREATE", data)
    body = (await api.wait_for("POST", r"/callback$"))[0].body
    assert body["type"] == 4 and body["data"]["flags"] & EPHEMERAL and "no text" in body["data"]["content"]


async def test_a_direct_message_is_answered_without_a_mention(bot, api, store):
    deliver(bot, "MESSAGE_CREATE", payload("message_create_dm"))
    reply = (await api.wait_for("POST", r"^/channels/1120000000000000000/messages$"))[0].body
    assert store.answer_record(answer_id_of(reply))["question"] == "What does an AI PM do day to day?"


async def test_other_messages_are_left_alone(bot, api):
    own = payload("message_create_mention")
    own["author"] = {"id": APPLICATION_ID, "username": "advisor", "discriminator": "0", "avatar": None, "bot": True}
    for data in (payload("message_create_everyone"), own):
        deliver(bot, "MESSAGE_CREATE", data)
    deliver(bot, "MESSAGE_CREATE", payload("message_create_mention"))  # then a real question
    [reply] = await api.wait_for("POST", rf"^/channels/{CHANNEL}/messages$")
    await asyncio.sleep(0.3)
    assert api.find("POST", r"^/channels/.*/messages$") == [reply], "only the real question is answered"
    assert len(api.find("POST", r"^/channels/")) == 2, "and only it got a typing indicator"


async def test_help_in_a_mention(bot, api):
    data = payload("message_create_mention")
    data["content"] = f"<@{APPLICATION_ID}> help"
    deliver(bot, "MESSAGE_CREATE", data)
    reply = (await api.wait_for("POST", rf"^/channels/{CHANNEL}/messages$"))[0].body
    assert reply["embeds"][0]["title"] == "What advisor can answer"


async def test_no_raw_user_id_is_stored_whatever_users_do(bot, api, store):
    """/ask (public, private and shared, a follow-up), the message menu, a mention, a DM, feedback and its reason."""
    first = await ask(bot, api, "Does a Series A startup hire ML PMs?")
    deliver(bot, "INTERACTION_CREATE", slash_ask("and at Series B?", id="1300000000000000021"))
    await api.wait_for("POST", r"^/webhooks/", 2)
    private = await ask(bot, api, "What does an ML PM do?", private=True)
    deliver(bot, "INTERACTION_CREATE", payload("interaction_button_share", answer_id=answer_id_of(private)))
    deliver(bot, "INTERACTION_CREATE", payload("interaction_message_menu"))
    await api.wait_for("POST", rf"^/channels/{CHANNEL}/messages$")
    deliver(bot, "MESSAGE_CREATE", payload("message_create_mention"))
    deliver(bot, "MESSAGE_CREATE", payload("message_create_dm"))
    await api.wait_for("POST", r"^/channels/1120000000000000000/messages$")
    answer_id = answer_id_of(first)
    deliver(bot, "INTERACTION_CREATE", payload("interaction_button_helpful", answer_id=answer_id))
    await api.wait_for("POST", r"^/interactions/1300000000000000004/.+/callback$")
    deliver(bot, "INTERACTION_CREATE", payload("interaction_button_not_helpful", answer_id=answer_id))
    deliver(bot, "INTERACTION_CREATE", payload("interaction_modal_reason", answer_id=answer_id))
    await api.wait_for("POST", r"^/interactions/1300000000000000007/.+/callback$")
    await api.wait_for("POST", rf"^/channels/{CHANNEL}/messages$", 2)
    assert store.count() == 6 and store.feedback(answer_id)[0]["reason"]

    stored = dump(store)  # every table, every column
    for user in (ASHA, RAVI):
        assert user not in stored
    [follow_up] = [r for r in (store.answer_record(i) for (i,) in query(store, "SELECT id FROM answers"))
                   if r["question"] == "and at Series B?"]
    assert follow_up["context"] == ["Does a Series A startup hire ML PMs?"], "/ask follow-ups keep their context"


# -- failures are never silent ---------------------------------------------------------------------


async def test_a_crash_in_ask_gives_a_short_private_error_and_logs_the_cause(bot, api, service, monkeypatch, caplog):
    async def broken(question):
        raise RuntimeError("index went away")

    monkeypatch.setattr(service, "ask", broken)
    with caplog.at_level(logging.ERROR):
        deliver(bot, "INTERACTION_CREATE", slash_ask("Does a Series A startup hire ML PMs?"))
        message = (await api.wait_for("POST", r"^/webhooks/"))[0].body
    assert api.find("DELETE", r"/messages/@original$")  # the public "thinking" message is removed first
    assert message["content"] == FAILED and message["flags"] & EPHEMERAL
    assert "index went away" in caplog.text and "/ask failed" in caplog.text


async def test_a_crash_on_a_mention_is_told_in_the_channel(bot, api, service, monkeypatch, caplog):
    async def broken(question):
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "ask", broken)
    deliver(bot, "MESSAGE_CREATE", payload("message_create_mention"))
    reply = (await api.wait_for("POST", rf"^/channels/{CHANNEL}/messages$"))[0].body
    assert reply["content"] == FAILED and "boom" in caplog.text


async def test_rate_limited_is_a_private_notice(fake_advisor, store, api):
    client = await _bot(ChatService(fake_advisor, store, Limits(burst=1, per_minute=0.5)))
    try:
        await ask(client, api, "Does a Series A startup hire ML PMs?")
        deliver(client, "INTERACTION_CREATE", slash_ask("What does an ML PM do?", id="1300000000000000099"))
        notice = (await api.wait_for("POST", r"^/webhooks/", 2))[-1].body
        assert notice["flags"] & EPHEMERAL and re.search(r"wait \d+ seconds?", notice["content"])
        assert api.find("DELETE", r"/messages/@original$")
    finally:
        await client.close()


async def test_an_unknown_command_gets_an_error_not_silence(bot, api, caplog):
    data = slash_ask("x")
    data["data"]["name"] = "retired-command"
    deliver(bot, "INTERACTION_CREATE", data)
    body = (await api.wait_for("POST", r"/callback$"))[0].body
    assert body["type"] == 4 and body["data"]["content"] == FAILED and body["data"]["flags"] & EPHEMERAL
    assert "retired-command" in caplog.text
