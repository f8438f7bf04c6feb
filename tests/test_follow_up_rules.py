"""Which thread messages are follow-ups for the bot, and the switches that turn follow-ups off."""

from __future__ import annotations

import pytest

from bot.follow_ups import FollowUps, addressed_elsewhere, parse_switch
from bot.settings import SettingsError
from bot.variables import value

BOT = "UBOT"


@pytest.mark.parametrize(("mentioned", "replying_to", "elsewhere"), [
    ([], "", False),  # a plain reply in the thread
    ([BOT], "", False),  # for the bot
    (["U0RAVI"], "", True),  # for Ravi
    (["U0RAVI", BOT], "", False),  # for both: the bot answers
    ([], "U0RAVI", True),  # a reply to Ravi's message
    ([], BOT, False),  # a reply to the bot's answer
])
def test_messages_between_people_are_told_apart(mentioned, replying_to, elsewhere):
    assert addressed_elsewhere(mentioned, [BOT], replying_to) is elsewhere


@pytest.mark.parametrize(("text", "wanted"), [
    ("follow-ups off", False), ("Follow-ups ON", True), ("followups 0", False), ("follow ups yes", True),
    ("follow-ups", ""), ("follow-up status", ""), ("follow-ups maybe", None),
    ("does a Series A startup hire ML PMs?", None), ("follow-ups off please", None),
])
def test_the_switch_command(text, wanted):
    assert parse_switch(text) == wanted


def test_the_environment_switch(monkeypatch):
    assert value("ADVISOR_SLACK_THREAD_FOLLOW_UPS") is True and value("ADVISOR_DISCORD_THREAD_FOLLOW_UPS") is False
    monkeypatch.setenv("ADVISOR_SLACK_THREAD_FOLLOW_UPS", " Off ")
    assert value("ADVISOR_SLACK_THREAD_FOLLOW_UPS") is False
    monkeypatch.setenv("ADVISOR_SLACK_THREAD_FOLLOW_UPS", "2")
    with pytest.raises(SettingsError, match="ADVISOR_SLACK_THREAD_FOLLOW_UPS must be 1 .* or 0 .*not '2'"):
        value("ADVISOR_SLACK_THREAD_FOLLOW_UPS")


def test_threads_answered_and_channel_switches_outlast_a_restart(open_store, fake_advisor):
    from retrieval.vocabulary import Question

    store = open_store(salt="test")
    answer = fake_advisor.answer(Question("does a Series A startup hire ML PMs?"))
    store.save_answer("a1", Question(answer.question, "U1", "slack", "C1", "100.1"), answer, 0.1)
    follow_ups = FollowUps(store, "slack")
    assert follow_ups.wanted("C1", "100.1") and not follow_ups.wanted("C1", "200.2")
    assert not follow_ups.wanted("C2", "100.1") and FollowUps(store, "slack").answered_in("", "100.1")
    follow_ups.switch("C1", False)
    again = FollowUps(open_store(salt="test"), "slack")  # a new process on the same store
    assert not again.wanted("C1", "100.1") and again.on_in("C2")
    assert not FollowUps(store, "slack", enabled=False).wanted("C2", "100.1")
    assert not FollowUps(store, "discord").answered_in("C1", "100.1"), "per platform"
