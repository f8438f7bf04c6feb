"""The console adapter as the end-to-end harness: lines in, rendered answers out, through the real service."""

from __future__ import annotations

import io
from types import SimpleNamespace

from bot.console.session import ConsoleSession, run
from bot.messages import FEEDBACK_THANKS
from bot.service import ChatService
from bot.settings import Settings
from bot.store import Store


def test_push_pop_answers_with_citations(fake_advisor):
    bot = ConsoleSession(ChatService(fake_advisor))
    try:
        bot.push("does a Series A startup hire ML PMs?")
        text = bot.pop()
        assert "[1]" in text
        for title in {title for _, title in fake_advisor.documents()}:
            if title in text:
                break
        else:
            raise AssertionError(f"no document title in {text!r}")
    finally:
        bot.close()


def test_follow_up_in_one_conversation_and_new(fake_advisor):
    seen = []

    class Spy:
        def answer(self, question):
            seen.append(question)
            return fake_advisor.answer(question)

        def documents(self):
            return fake_advisor.documents()

    bot = ConsoleSession(ChatService(Spy()))
    bot.push("does a Series A startup hire ML PMs?")
    bot.push("and at Series B?")
    assert seen[-1].context == ("does a Series A startup hire ML PMs?",)
    assert "[1]" in bot.pop() and bot.pop()  # both answered, in order
    bot.push("/new")
    assert "New conversation" in bot.pop()
    bot.push("and at Series C?")
    assert seen[-1].context == ()
    bot.close()


async def test_commands_help_feedback_quit(fake_advisor, tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    bot = ConsoleSession(ChatService(fake_advisor, store))
    assert "no answer to rate" in await bot.send("/good")
    help_text = await bot.send("/help")
    assert "/quit" in help_text and fake_advisor.documents()[0][1] in help_text
    await bot.send("what does an ML PM do?")
    assert await bot.send("/bad not specific enough") == FEEDBACK_THANKS
    [fb] = store.feedback(bot.last_answer_id)
    assert fb["reason"] == "not specific enough" and fb["helpful"] is False and fb["platform"] == "console"
    assert "Unknown command" in await bot.send("/nope")
    assert "empty" in await bot.send("   ")
    assert await bot.send("/quit") == "Bye." and bot.done
    store.close()


async def test_same_line_twice_is_answered_once(fake_advisor):
    bot = ConsoleSession(ChatService(fake_advisor))
    assert await bot.send("what does an ML PM do?")
    assert await bot.send("what does an ML PM do?") == ""


def test_run_reads_questions_until_quit(fake_advisor, monkeypatch, tmp_path):
    import bot.core

    monkeypatch.setattr(bot.core.Advisor, "from_settings", classmethod(lambda cls, settings: fake_advisor))
    out = io.StringIO()
    settings = Settings(corpus_dir=tmp_path, data_dir=tmp_path / "data")
    stdin = io.StringIO("does a Series A startup hire ML PMs?\n\n/quit\nnever asked\n")
    assert run(settings, SimpleNamespace(), stdin=stdin, stdout=out) == 0
    text = out.getvalue()
    assert "Advisor ready" in text and "[1]" in text and "Bye." in text and "never asked" not in text
    reopened = Store(settings.store_path)
    assert reopened.count() == 1  # the answer was stored
    reopened.close()
