"""PostgreSQL's own cases: the report reads it as it reads SQLite, `advisor store migrate`, and a database that cannot
be reached (at start, or going away under a running bot) is one clear line, a failing health check and a polite
reply, never its password."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit, urlunsplit

import pytest

from retrieval.vocabulary import Question, ReplyStatus
from bot.guards import Limits
from bot.report.build import build_report, parse_since
from bot.service import ChatService
from bot.store import Store, StoreError, StoreReader, migrations
from bot.store.postgres import PostgresReader, PostgresStore
from tests.commands import assert_one_line_error, run
from tests.tcp_proxy import TcpProxy
from tests.sample_stores import ENTRIES, NOW, VERDICTS, populate, sample_store

def password_of(url: str) -> str:
    return urlsplit(url).password


def copy_into(target, source_path) -> None:
    """Every answer and verdict of a SQLite store, written through another store's own methods."""
    import sqlite3

    from retrieval.vocabulary import Answer, AnswerSentence, Citation

    db = sqlite3.connect(source_path)
    db.row_factory = sqlite3.Row
    for row in db.execute("SELECT * FROM answers"):
        answer = Answer(row["question"], row["answer"],
                        tuple(Citation(**c) for c in json.loads(row["citations"])),
                        bool(row["abstained"]),
                        tuple(AnswerSentence(**s) for s in json.loads(row["sentences"])))
        question = Question(row["question"], user=row["user_hash"], platform=row["platform"],
                            channel=row["channel"], thread=row["thread"])
        target.save_answer(row["id"], question, answer, row["latency_ms"] / 1000, created=row["created"])
    for row in db.execute("SELECT * FROM feedback"):
        assert target.save_feedback(row["answer_id"], bool(row["helpful"]), row["user_hash"], row["platform"],
                                    row["reason"], created=row["created"])
    db.close()


@pytest.mark.parametrize("build", ["entries", "sample"])
def test_the_report_from_postgresql_is_the_report_from_sqlite(tmp_path, postgres_url, build):
    path = tmp_path / "advisor.sqlite3"
    if build == "entries":
        populate(path, NOW, hash_user_ids=False)
    else:
        sample_store(path, NOW, days=30)
    store = PostgresStore(postgres_url, hash_user_ids=False)  # the user column copied as it is
    copy_into(store, path)
    store.close()
    for since in ("24h", "7d", "30d", "all"):
        for limit in (1, 20):
            with StoreReader(path) as sqlite_reader, PostgresReader(postgres_url) as pg_reader:
                expected = build_report(sqlite_reader, parse_since(since, NOW), limit)
                assert build_report(pg_reader, parse_since(since, NOW), limit) == expected, (since, limit)
    assert len(ENTRIES) and len(VERDICTS)


def test_report_command_reads_the_database_from_any_folder(capsys, tmp_path, postgres_url, monkeypatch):
    store = PostgresStore(postgres_url)
    now = datetime.now(timezone.utc)
    for n, (answer_id, hours, platform, user, text, answer) in enumerate(ENTRIES[:3]):
        store.save_answer(answer_id, Question(text, user=user, platform=platform), answer, 0.05,
                          created=(now - timedelta(hours=hours)).timestamp())
    assert store.save_feedback("d0-s1", False, "U0VOTER", "slack", "too vague")
    store.close()
    monkeypatch.setenv("ADVISOR_DATABASE_URL", postgres_url)
    code, out, err = run(capsys, "report", "--data-dir", tmp_path / "elsewhere", "--since", "all")
    assert code == 0 and err == "", err
    assert "Questions 3 from 3 people" in out and "too vague" in out
    assert not (tmp_path / "elsewhere").exists()  # a report never creates a store


def test_an_empty_database_is_not_a_report(capsys, tmp_path, postgres_url, monkeypatch):
    monkeypatch.setenv("ADVISOR_DATABASE_URL", postgres_url)
    assert_one_line_error(*run(capsys, "report", "--data-dir", tmp_path), "no questions recorded yet",
                          "advisor store migrate")


def test_store_migrate_applies_the_migrations_once(capsys, tmp_path, postgres_url, monkeypatch):
    monkeypatch.setenv("ADVISOR_DATABASE_URL", postgres_url)
    code, out, err = run(capsys, "store", "migrate", "--data-dir", tmp_path)
    assert code == 0 and err == ""
    assert out.startswith(f"Applied {migrations.latest()} migrations to postgresql://advisor_test@127.0.0.1:")
    assert "001_answers_events_feedback" in out and "004_shared_settings_and_corpus_version" in out
    assert password_of(postgres_url) not in out
    code, out, _ = run(capsys, "store", "migrate", "--data-dir", tmp_path)
    assert code == 0 and f"is up to date (schema version {migrations.latest()})" in out
    assert not (tmp_path / "advisor.sqlite3").exists()  # the database, not a SQLite file
    monkeypatch.delenv("ADVISOR_DATABASE_URL")
    code, out, _ = run(capsys, "store", "migrate", "--data-dir", tmp_path)
    assert code == 0 and out.startswith(f"Applied {migrations.latest()} migrations to {tmp_path / 'advisor.sqlite3'}")


def closed_port_url(url: str) -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}"))


@pytest.mark.parametrize("argv", [("store", "migrate"), ("report",)])
def test_an_unreachable_database_is_one_line_without_its_password(capsys, tmp_path, postgres_url, monkeypatch, argv):
    url = closed_port_url(postgres_url)
    monkeypatch.setenv("ADVISOR_DATABASE_URL", url)
    code, out, err = run(capsys, *argv, "--data-dir", tmp_path)
    assert_one_line_error(code, out, err, "cannot be", "127.0.0.1", "ADVISOR_DATABASE_URL")
    assert password_of(url) not in err


def test_a_wrong_password_is_said_without_the_password(capsys, tmp_path, postgres_url, monkeypatch):
    parts = urlsplit(postgres_url)
    wrong = urlunsplit(parts._replace(netloc=f"{parts.username}:not-the-password-42@{parts.hostname}:{parts.port}"))
    monkeypatch.setenv("ADVISOR_DATABASE_URL", wrong)
    code, out, err = run(capsys, "store", "migrate", "--data-dir", tmp_path)
    assert_one_line_error(code, out, err, "password authentication failed")
    assert "not-the-password-42" not in err and password_of(postgres_url) not in err


@pytest.mark.parametrize(("url", "needle"), [
    ("mysql://u:hunter2secret@db/x", "should look like postgresql://"),
    ("postgresql://u:hunter2secret@db:port/x", "port is not a number"),
    ("postgresql://u:hunter2secret@/x", "names no host"),
])
def test_a_malformed_url_is_named_without_repeating_it(capsys, tmp_path, monkeypatch, url, needle):
    monkeypatch.setenv("ADVISOR_DATABASE_URL", url)
    code, out, err = run(capsys, "store", "migrate", "--data-dir", tmp_path)
    assert_one_line_error(code, out, err, "ADVISOR_DATABASE_URL", needle)
    assert "hunter2secret" not in err


def test_the_settings_never_show_the_url(monkeypatch):
    from bot.settings import Settings

    monkeypatch.setenv("ADVISOR_DATABASE_URL", "postgresql://advisor:pw-in-url-1234@db:5432/advisor")
    settings = Settings.from_env()
    assert settings.database_url.endswith("@db:5432/advisor") and "pw-in-url-1234" not in repr(settings)


def test_the_password_is_redacted_from_any_log_line(monkeypatch):
    import io

    from bot import logs

    monkeypatch.setenv("ADVISOR_DATABASE_URL", "postgresql://advisor:pw-in-url-1234@db:5432/advisor")
    stream = io.StringIO()
    logs.setup(stream=stream, fmt="json")
    logger = logging.getLogger("bot.test")
    logger.warning("connecting to postgresql://advisor:pw-in-url-1234@db:5432/advisor")
    logger.warning("libpq said password=pw-in-url-1234 and %s", "pw-in-url-1234")
    logger.warning("another URL postgresql://someone:short@elsewhere/db")
    text = stream.getvalue()
    assert "pw-in-url-1234" not in text and ":short@" not in text and text.count("[redacted]") >= 3


def answer_for(text: str):
    from retrieval.vocabulary import Answer

    return Answer(text, "An answer.")


class FixedAdvisor:
    def answer(self, question):
        return answer_for(question.text)

    def documents(self):
        return []


async def test_a_database_going_away_fails_health_answers_politely_and_comes_back(postgres_url, monkeypatch, caplog):
    import bot.store.postgres as postgres

    monkeypatch.setattr(postgres, "CONNECT_SECONDS", 1)
    monkeypatch.setattr(postgres, "PAUSE_SECONDS", 0.5)
    real = urlsplit(postgres_url)
    proxy = TcpProxy((real.hostname, real.port)).restore()
    url = urlunsplit(real._replace(netloc=f"{real.username}:{real.password}@127.0.0.1:{proxy.port}"))
    store = PostgresStore(url)
    service = ChatService(FixedAdvisor(), store, Limits(duplicate_seconds=0))
    try:
        first = await service.ask(Question("before?", "U1", "slack", "C1", "1.1"))
        assert first.status == ReplyStatus.ANSWERED and service.health()["status"] == "ok"

        proxy.cut()
        with caplog.at_level(logging.WARNING):
            started = time.monotonic()
            health = service.health()
            assert health["status"] == "failing" and health["failed"] == ["store"]
            during = await service.ask(Question("during?", "U2", "slack", "C1", "2.2"))
            assert during.status == ReplyStatus.ANSWERED  # the user still gets the answer
            assert not await service.feedback(first.answer_id, True, "U1", "slack")  # "couldn't record; try again"
            with pytest.raises(StoreError, match="cannot be|could not be reached"):
                store.claim_event("slack:Ev1")
            assert time.monotonic() - started < 10  # each failure within seconds, not a hang
        assert "cannot be reached" in caplog.text and "Could not store answer" in caplog.text
        assert real.password not in caplog.text

        proxy.restore()  # the database is back on the same address
        deadline = time.monotonic() + 20
        while not store.healthy() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert service.health()["status"] == "ok"
        assert await service.feedback(first.answer_id, True, "U1", "slack")
        after = await service.ask(Question("after?", "U3", "slack", "C1", "3.3"))
        assert store.answer_record(after.answer_id)["question"] == "after?"
        assert store.claim_event("slack:Ev1")
    finally:
        store.close()
        proxy.cut()


def test_sqlite_stays_the_default(tmp_path):
    from bot.settings import Settings
    from bot.store import open_store

    store = open_store(Settings.from_env(data_dir=str(tmp_path)))
    assert isinstance(store, Store) and not store.shared and store.path == tmp_path / "advisor.sqlite3"
    store.close()


def test_compose_postgres_profile_runs_the_database_beside_the_apps():
    yaml = pytest.importorskip("yaml")
    from tests.conftest import ROOT

    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    db = compose["services"]["postgres"]
    assert db["profiles"] == ["postgres"] and db["image"].startswith("postgres:15")
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")  # never a password in the file
    assert all(port.startswith("127.0.0.1:") for port in db["ports"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"]) and "advisor-postgres" in compose["volumes"]
    example = (ROOT / "deploy" / ".env.example").read_text()
    assert "# ADVISOR_DATABASE_URL=postgresql://" in example and "# POSTGRES_PASSWORD=\n" in example


def test_a_bot_whose_database_cannot_be_reached_does_not_start(capsys, tmp_path, postgres_url, monkeypatch):
    from tests.mock_slack_api import BOT_TOKEN, SECRET, MockSlackAPI

    url = closed_port_url(postgres_url)
    with MockSlackAPI() as api:
        monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
        monkeypatch.setenv("SLACK_API_URL", api.url)
        monkeypatch.setenv("ADVISOR_DATABASE_URL", url)
        code, out, err = run(capsys, "serve", "slack", "--http", "--port", "0", "--data-dir", tmp_path)
    lines = [line for line in err.splitlines() if line.startswith("advisor: ")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "cannot be used" in lines[0] and "Connection refused" in lines[0] and password_of(url) not in err


async def test_healthz_over_http_follows_the_database(postgres_url, fake_advisor, monkeypatch):
    import bot.store.postgres as postgres
    from tests.mock_slack_api import MockSlackAPI, serve

    monkeypatch.setattr(postgres, "CONNECT_SECONDS", 1)
    real = urlsplit(postgres_url)
    proxy = TcpProxy((real.hostname, real.port)).restore()
    store = PostgresStore(urlunsplit(real._replace(netloc=f"{real.username}:{real.password}@127.0.0.1:{proxy.port}")))
    try:
        with MockSlackAPI() as api:
            async with serve(api, ChatService(fake_advisor, store)) as slack:
                async with slack.sender.session.get(f"{slack.url}/healthz") as resp:
                    assert resp.status == 200 and (await resp.json())["checks"]["store"]["ok"] is True
                proxy.cut()
                async with slack.sender.session.get(f"{slack.url}/healthz") as resp:
                    body = await resp.json()
                    assert resp.status == 503 and body["failed"] == ["store"]
                    assert real.password not in json.dumps(body)
                proxy.restore()
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    async with slack.sender.session.get(f"{slack.url}/healthz") as resp:
                        if resp.status == 200:
                            break
                    await asyncio.sleep(0.2)
                assert resp.status == 200
    finally:
        store.close()
        proxy.cut()
