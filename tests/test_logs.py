"""Logs: one JSON record per question from the chat service, text by default, tokens and secrets redacted."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot import logs
from bot.cli.entry import main
from bot.service import ChatService
from bot.store import Store
from bot.variables import SECRETS
from retrieval.vocabulary import Question

USER = "U0RAWUSERID42"  # fake platform user id: must never reach a log line
SLACK_TOKEN = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"  # fake, token-shaped
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789"  # fake, token-shaped


class Failing:
    def answer(self, question):
        raise RuntimeError(f"index exploded while holding {SLACK_TOKEN}")

    def documents(self):
        return []


@pytest.fixture
def captured():
    """Run logs.setup for a test and put the root logger back afterwards; yields a function reading the lines."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger(logs.ANSWERS).level
    stream = io.StringIO()

    def configure(**kwargs):
        logs.setup(stream=stream, **kwargs)
        return lambda: stream.getvalue().splitlines()

    yield configure
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger(logs.ANSWERS).setLevel(saved[2])


def q(text, user=USER, thread="t1"):
    return Question(text=text, user=user, platform="slack", channel="C0CHANNEL", thread=thread)


async def test_one_json_record_per_question(captured, fake_advisor, tmp_path):
    lines = captured(fmt="json")
    store = Store(tmp_path / "advisor.sqlite3")
    service = ChatService(fake_advisor, store)
    question = f"does a Series A startup hire ML PMs? my token is {SLACK_TOKEN}"
    answered = await service.ask(q(question))
    empty = await service.ask(q("   ", thread="t2"))
    failed = await ChatService(Failing()).ask(q("what do ML PMs do?", thread="t3"))
    store.close()

    records = [json.loads(line) for line in lines()]  # every line is one JSON object
    questions = [r for r in records if r.get("event") == "question"]
    assert [r["status"] for r in questions] == ["answered", "empty", "error"]
    first = questions[0]
    assert first["platform"] == "slack" and first["logger"] == logs.ANSWERS and first["level"] == "info"
    assert first["answer_id"] == answered.answer_id and answered.status == "answered"
    assert first["abstained"] is answered.answer.abstained is False
    assert first["citations"] == [{"doc_id": c.doc_id, "chunk_id": c.chunk_id} for c in answered.answer.citations]
    assert first["citations"] and all(c["chunk_id"] for c in first["citations"])
    assert isinstance(first["latency_ms"], float) and first["latency_ms"] > 0
    assert first["time"].endswith("+00:00")
    assert questions[1]["abstained"] is None and questions[1]["citations"] == [] and empty.status == "empty"
    assert failed.status == "error"
    # the failure's traceback is logged (redacted) beside the record
    assert any("index exploded" in r.get("traceback", "") for r in records)

    text = "\n".join(lines())
    assert USER not in text  # never a raw user id (error lines may name the channel, for debugging)
    assert set(first) == {"time", "level", "logger", "message", "event", "platform", "status", "latency_ms",
                          "answer_id", "abstained", "citations", "written_by", "delivered"}
    assert first["delivered"] is None  # asked without a `deliver`: the service cannot tell
    assert "Series A" not in text  # no question text: the store has it, behind the answer_id
    assert SLACK_TOKEN not in text and "[redacted]" in text


async def test_text_by_default_and_question_records_only_with_verbose(captured, fake_advisor):
    lines = captured()
    await ChatService(fake_advisor).ask(q("does a Series A startup hire ML PMs?"))
    assert lines() == []  # a terminal user sees warnings and errors, not a record per question
    logging.getLogger("bot.anything").info("not shown")
    logging.getLogger("bot.anything").warning("plain %s", "words")
    [line] = lines()
    assert line.endswith("WARNING bot.anything: plain words") and not line.startswith("{")

    lines = captured(verbose=True)
    await ChatService(fake_advisor).ask(q("what do ML PMs do?", thread="t9"))
    assert any("Answered on slack in" in line and "citations" in line for line in lines())


def test_json_format_from_the_environment(captured, monkeypatch):
    monkeypatch.setenv("ADVISOR_LOG_FORMAT", "JSON")
    lines = captured()
    logging.getLogger("bot.x").info("not shown: below warning without -v")
    logging.getLogger("bot.x").warning("skipped %d files", 2, extra={"folder": "corpus"})
    [line] = lines()
    record = json.loads(line)
    assert record["message"] == "skipped 2 files" and record["folder"] == "corpus" and record["level"] == "warning"


def test_configured_secrets_and_token_shapes_are_redacted(captured, monkeypatch):
    api_key = "sk-local-0123456789abcdef"  # fake; matches no token pattern, redacted because it is configured
    monkeypatch.setenv("ADVISOR_LLM_API_KEY", api_key)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "0123456789abcdef0123456789abcdef")
    lines = captured(fmt="json")
    log = logging.getLogger("bot.leaky")
    log.warning("calling with key %s and secret %s", api_key, "0123456789abcdef0123456789abcdef")
    log.warning("app token xapp-1-A0123-456-abcdef0123, discord %s", DISCORD_TOKEN,
                extra={"token": SLACK_TOKEN, "nested": [DISCORD_TOKEN]})
    try:
        raise ValueError(f"auth failed for {SLACK_TOKEN}")
    except ValueError:
        log.exception("Slack call failed")
    log.warning("docs: ml-pm.guide-v2.txt and career.ladder.md stay readable")
    records = [json.loads(line) for line in lines()]
    text = "\n".join(lines())
    for secret in (api_key, "0123456789abcdef0123456789abcdef", "xapp-1-A0123", SLACK_TOKEN, DISCORD_TOKEN):
        assert secret not in text
    assert records[0]["message"] == "calling with key [redacted] and secret [redacted]"
    assert records[1]["token"] == "[redacted]" and records[1]["nested"] == ["[redacted]"]
    assert "ValueError: auth failed for [redacted]" in records[2]["traceback"]
    assert records[3]["message"] == "docs: ml-pm.guide-v2.txt and career.ladder.md stay readable"


@pytest.mark.parametrize("name", SECRETS)
def test_every_declared_secret_is_redacted_whatever_its_shape(captured, monkeypatch, name):
    secret = f"plain-words-{len(name)}-not-token-shaped"  # matches no token pattern: redacted for being declared
    monkeypatch.setenv(name, secret)
    lines = captured(fmt="json")
    logging.getLogger("bot.leaky").warning("%s is %s", name, secret, extra={"given": [secret]})
    try:
        raise ValueError(f"refused {secret}")
    except ValueError:
        logging.getLogger("bot.leaky").exception("call failed")
    text = "\n".join(lines())
    assert secret not in text and f"{name} is [redacted]" in text and "refused [redacted]" in text


def test_text_format_redacts_too(captured, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "short.tok.en-but-configured")
    lines = captured(verbose=True)
    logging.getLogger("discord.client").info("logging in using static token short.tok.en-but-configured")
    [line] = lines()
    assert "short.tok.en-but-configured" not in line and line.endswith("static token [redacted]")


def test_a_bad_log_format_is_one_sentence(monkeypatch, capsys):
    monkeypatch.setenv("ADVISOR_LOG_FORMAT", "xml")
    assert main(["ask", "what do ML PMs do?"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "advisor: ADVISOR_LOG_FORMAT should be json or text, not 'xml'."
