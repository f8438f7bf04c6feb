"""The chat service: guards, follow-ups, worker pool, failures and the store, on the fake-embedder advisor."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from bot.guards import Limits
from bot.messages import BUSY as BUSY_MESSAGE, ERROR as ERROR_MESSAGE
from bot.service import ChatService
from bot.store import Store
from retrieval.vocabulary import Question


class Spy:
    """Wraps an advisor and records the questions it was asked."""

    def __init__(self, advisor):
        self.advisor = advisor
        self.questions: list[Question] = []

    def answer(self, question):
        self.questions.append(question)
        return self.advisor.answer(question)

    def documents(self):
        return self.advisor.documents()


class Failing:
    def answer(self, question):
        raise RuntimeError("index exploded")

    def documents(self):
        return []


def q(text, user="U1", channel="C1", thread="t1", platform="slack"):
    return Question(text=text, user=user, platform=platform, channel=channel, thread=thread)


async def test_answers_with_citations_and_stores_them(fake_advisor, tmp_path):
    store = Store(tmp_path / "advisor.sqlite3")
    service = ChatService(fake_advisor, store)
    reply = await service.ask(q("  does a Series A startup hire ML PMs?  "))
    assert reply.status == "answered" and reply.message == ""
    assert reply.answer.citations and reply.answer_id
    assert service.get_answer(reply.answer_id) == reply.answer
    assert await service.feedback(reply.answer_id, True, "U2", "slack")
    store.close()

    # after a restart: the answer is still there for "Share in channel", and feedback still lands
    reopened = Store(tmp_path / "advisor.sqlite3")
    again = ChatService(fake_advisor, reopened)
    shared = again.get_answer(reply.answer_id)
    assert shared.text == reply.answer.text and shared.citations == reply.answer.citations
    assert await again.feedback(reply.answer_id, False, "U3", "slack", reason="too short")
    assert reopened.count("feedback") == 2
    reopened.close()


async def test_empty_and_too_long_questions(fake_advisor):
    service = ChatService(fake_advisor, limits=Limits(max_chars=50))
    empty = await service.ask(q("   "))
    assert empty.status == "empty" and "empty" in empty.message and empty.answer is None
    long = await service.ask(q("why " * 40))
    assert long.status == "too_long" and "50" in long.message


async def test_same_question_same_place_is_answered_once(fake_advisor):
    spy = Spy(fake_advisor)
    service = ChatService(spy)
    first, second = await asyncio.gather(service.ask(q("What do ML PMs do?")), service.ask(q("what do  ML PMs do?")))
    assert sorted([first.status, second.status]) == ["answered", "duplicate"]
    assert len(spy.questions) == 1
    # another thread, or another user, is a different question
    assert (await service.ask(q("What do ML PMs do?", thread="t2"))).status == "answered"
    assert (await service.ask(q("What do ML PMs do?", user="U2"))).status == "answered"


async def test_rate_limit_per_user(fake_advisor):
    service = ChatService(fake_advisor, limits=Limits(per_minute=1, burst=2))
    statuses = [(await service.ask(q(f"question number {i} about PMs"))).status for i in range(3)]
    assert statuses == ["answered", "answered", "rate_limited"]
    limited = await service.ask(q("yet another question about PMs"))
    assert "wait" in limited.message and "second" in limited.message
    assert (await service.ask(q("a question from someone else", user="U9"))).status == "answered"


async def test_burst_beyond_capacity_gets_a_polite_busy(fake_advisor):
    release = threading.Event()

    class Slow(Spy):
        def answer(self, question):
            release.wait(5)
            return super().answer(question)

    service = ChatService(Slow(fake_advisor), limits=Limits(workers=1, queue=2, per_minute=100, burst=100))
    tasks = [asyncio.create_task(service.ask(q(f"question {i} on ML PM hiring", thread=f"t{i}"))) for i in range(5)]
    await asyncio.sleep(0.1)
    release.set()
    replies = await asyncio.gather(*tasks)
    statuses = [r.status for r in replies]
    assert statuses.count("answered") == 3 and statuses.count("busy") == 2
    assert all(r.message == BUSY_MESSAGE for r in replies if r.status == "busy")
    assert service.pool.pending == 0
    # a busy question may be asked again at once: it is neither a duplicate nor counted against the user
    assert (await service.ask(q("question 4 on ML PM hiring", thread="t4"))).status == "answered"


async def test_follow_up_in_a_thread_gets_the_earlier_question_as_context(fake_advisor):
    spy = Spy(fake_advisor)
    service = ChatService(spy)
    await service.ask(q("does a Series A startup hire ML PMs?", thread="T"))
    follow = await service.ask(q("and at Series B?", user="U2", thread="T"))
    assert follow.status == "answered"
    assert spy.questions[-1].context == ("does a Series A startup hire ML PMs?",)
    assert service.context_for("slack", "C1", "T") == ("does a Series A startup hire ML PMs?", "and at Series B?")
    await service.ask(q("and at Series B?", thread="other"))
    assert spy.questions[-1].context == ()  # another thread knows nothing of it
    # context given by the adapter wins
    await service.ask(Question("and at Series C?", "U1", "slack", "C1", "T", context=("from the adapter",)))
    assert spy.questions[-1].context == ("from the adapter",)


async def test_a_question_the_documents_did_not_cover_is_no_context_for_the_next(fake_advisor, tmp_path):
    store = Store(tmp_path / "s.sqlite3", salt="s")
    spy = Spy(fake_advisor)
    service = ChatService(spy, store)
    await service.ask(q("does a Series A startup hire ML PMs?", thread="T"))
    off_topic = await service.ask(q("what's the weather like in SF this weekend?", thread="T"))
    assert off_topic.answer.abstained
    await service.ask(q("and at Series B?", thread="T"))
    assert spy.questions[-1].context == ("does a Series A startup hire ML PMs?",)
    assert store.thread_questions("slack", "C1", "T", 5) == ("does a Series A startup hire ML PMs?",
                                                            "and at Series B?")
    store.close()


async def test_a_thread_is_remembered_across_a_restart_through_the_store(fake_advisor, tmp_path):
    """Another process (a restart, a second replica) reads the thread's earlier questions from the store."""
    store = Store(tmp_path / "s.sqlite3", salt="s")
    await ChatService(fake_advisor, store).ask(q("does a Series A startup hire ML PMs?", thread="T"))
    await ChatService(fake_advisor, store).ask(q("and at Series B?", thread="T"))

    spy = Spy(fake_advisor)
    restarted = ChatService(spy, store, Limits(context_depth=2))
    assert (await restarted.ask(q("what about seed stage?", thread="T"))).status == "answered"
    assert spy.questions[-1].context == ("does a Series A startup hire ML PMs?", "and at Series B?")
    await restarted.ask(q("what about seed stage?", thread="T2"))
    assert spy.questions[-1].context == ()  # another thread
    await restarted.ask(q("what about seed stage?", thread=""))
    assert spy.questions[-1].context == ()  # outside a thread, nothing is a follow-up of an old question
    store.close()


async def test_advisor_failure_is_an_error_reply_with_the_cause_logged(caplog):
    service = ChatService(Failing())
    with caplog.at_level(logging.ERROR, logger="bot.service"):
        reply = await service.ask(q("does a Series A startup hire ML PMs?"))
    assert reply.status == "error" and reply.message == ERROR_MESSAGE
    assert "index exploded" in caplog.text and "Traceback" in caplog.text
    # "please try again" must work: the retry is not swallowed as a duplicate
    assert (await service.ask(q("does a Series A startup hire ML PMs?"))).status == "error"


async def test_feedback_on_unknown_answers(fake_advisor, tmp_path):
    service = ChatService(fake_advisor)
    assert not await service.feedback("missing", True, "U1", "slack")
    reply = await service.ask(q("what does a data PM do?"))
    assert await service.feedback(reply.answer_id, True, "U1", "slack")  # kept in memory without a store
    assert service.get_answer("missing") is None


def test_help_text_names_the_documents(fake_advisor):
    text = ChatService(fake_advisor).help_text()
    for _, title in fake_advisor.documents():
        assert title in text
    assert "Share in channel" in text and "[1]" in text


def test_ready_once_index_is_loaded(fake_advisor):
    assert ChatService(fake_advisor).ready()


def test_reply_statuses_read_as_their_plain_names_in_logs_and_json():
    import json

    from retrieval.vocabulary import ReplyStatus

    assert [s.value for s in ReplyStatus] == ["answered", "empty", "too_long", "rate_limited", "busy", "duplicate",
                                              "error"]
    assert json.dumps({"status": ReplyStatus.TOO_LONG}) == '{"status": "too_long"}'
    assert f"{ReplyStatus.BUSY} %s" % ReplyStatus.DUPLICATE == "busy duplicate"


async def test_a_failing_store_does_not_cost_the_user_the_answer(fake_advisor, caplog):
    class BrokenStore:
        def save_answer(self, *args):
            raise OSError("disk full")

        def save_feedback(self, *args):
            raise OSError("disk full")

        def get_answer(self, answer_id):
            raise OSError("disk full")

    service = ChatService(fake_advisor, BrokenStore())
    with caplog.at_level(logging.ERROR, logger="bot.service"):
        reply = await service.ask(q("what does an ML PM do?"))
    assert reply.status == "answered" and "disk full" in caplog.text
    assert service.get_answer(reply.answer_id) == reply.answer  # still in memory
    assert not await service.feedback(reply.answer_id, True, "U1", "slack")
    assert service.get_answer("not-in-memory") is None


@pytest.mark.model
async def test_a_question_with_undecodable_characters_is_answered_and_stored(real_advisor, tmp_path):
    """Lone surrogates (undecodable bytes, a JSON "\\ud800") are replaced before the tokenizer or SQLite see them."""
    store = Store(tmp_path / "s.sqlite3", salt="s")
    reply = await ChatService(real_advisor, store).ask(q("does a Series A startup hire ML PMs? \udcff \ud800"))
    assert reply.status == "answered" and reply.answer.citations and not reply.answer.abstained
    assert store.answer_record(reply.answer_id)["question"] == "does a Series A startup hire ML PMs? \ufffd \ufffd"
    assert await ChatService(real_advisor, store).feedback(reply.answer_id, False, "U1", "slack", "odd \udcff")
    store.close()
