"""The store, SQLite and PostgreSQL alike: answers, citations and feedback survive a restart; users kept only as salted
hashes; event claims decided once; numbered migrations. SQLite's own files and PostgreSQL's own failures at the end."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading

import pytest

from bot.store import Store, StoreError
from retrieval.vocabulary import Answer, AnswerSentence, Citation, Question
from tests.support import dump, query

ANSWER = Answer(
    question="does a Series A startup hire ML PMs?",
    text="Rarely. [1]",
    citations=(Citation(1, "guide", "A guide", "Hiring", "Series A startups rarely hire ML PMs.", "guide#1"),),
    sentences=(AnswerSentence("Rarely.", 1),),
)
QUESTION = Question(ANSWER.question, user="U0LEAD", platform="slack", channel="C1", thread="1.2",
                    context=("earlier?",))


def test_answers_and_feedback_survive_reopening(open_store):
    store = open_store()
    store.save_answer("a1", QUESTION, ANSWER, latency=0.012)
    assert store.save_feedback("a1", False, "U0READER", "slack", reason="missing Series B")
    store.close()

    reopened = open_store()
    assert reopened.get_answer("a1") == ANSWER
    record = reopened.answer_record("a1")
    assert record["platform"] == "slack" and record["channel"] == "C1" and record["thread"] == "1.2"
    assert record["context"] == ["earlier?"]
    assert record["latency_ms"] == 12.0
    assert record["citations"][0]["title"] == "A guide"
    assert reopened.answer_record("nope") is None and reopened.get_answer("nope") is None
    [fb] = reopened.feedback("a1")
    assert fb["helpful"] is False and fb["reason"] == "missing Series B" and fb["platform"] == "slack"
    assert fb["user_hash"] == store.hash_user("U0READER")  # same salt after the restart
    reopened.close()


def test_no_raw_user_ids_anywhere(open_store):
    store = open_store()
    store.save_answer("a1", QUESTION, ANSWER, 0.1)
    store.save_feedback("a1", True, "U0READER", "slack")
    store.save_answer("a2", Question("q?", "U0ASKER", "slack", "C1", store.private_thread("U0ASKER")), ANSWER, 0.1)
    stored = dump(store)
    assert "U0LEAD" not in stored and "U0READER" not in stored and "U0ASKER" not in stored
    assert store.hash_user("U0LEAD") in stored


def test_wal_mode_and_a_private_salt_file(tmp_path):
    path = tmp_path / "advisor.sqlite3"
    store = Store(path)
    store.save_answer("a1", QUESTION, ANSWER, 0.1)
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert (tmp_path / "advisor.sqlite3.salt").stat().st_mode & 0o077 == 0  # private


def test_salt_from_environment(open_store, tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_USER_SALT", "pepper")
    store = open_store()
    assert store.hash_user("U1") == hashlib.sha256(b"pepper:U1").hexdigest()
    assert not (tmp_path / "data" / "advisor.sqlite3.salt").exists()
    assert "pepper" not in dump(store)


def test_two_hosts_opening_one_store_hash_a_user_the_same_way(open_store):
    first, second = open_store(), open_store()
    assert first.hash_user("U1") == second.hash_user("U1") != first.hash_user("U2")
    assert len(first._salt) == 64


def test_feedback_upserts_per_user_and_rejects_unknown_answers(open_store):
    store = open_store()
    assert not store.save_feedback("nope", True, "U1", "slack")
    store.save_answer("a1", QUESTION, ANSWER, 0.1)
    store.save_feedback("a1", False, "U1", "slack")
    store.save_feedback("a1", False, "U1", "slack", reason="too vague")
    store.save_feedback("a1", False, "U1", "slack")  # a later click keeps the reason
    store.save_feedback("a1", True, "U2", "discord")
    rows = {r["user_hash"]: r for r in store.feedback("a1")}
    assert len(rows) == 2
    assert rows[store.hash_user("U1")]["reason"] == "too vague"
    assert store.count("feedback") == 2 and store.count("answers") == 1
    store.close()


def test_concurrent_writes_from_threads(open_store):
    store = open_store()

    def write(n):
        for i in range(25):
            store.save_answer(f"{n}-{i}", QUESTION, ANSWER, 0.01)
            store.save_feedback(f"{n}-{i}", i % 2 == 0, f"U{n}", "slack")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert store.count() == 100 and store.count("feedback") == 100
    store.close()


def test_an_event_is_claimed_once_among_racing_stores(open_store):
    """Many replicas (each with its own store connection) receiving the same events at the same moment."""
    stores = [open_store() for _ in range(4)]
    events = [f"slack:Ev{n}" for n in range(30)]
    wins: list[str] = []
    start = threading.Barrier(len(stores))

    def claim_all(store):
        start.wait(30)
        for event in events:
            if store.claim_event(event):
                wins.append(event)

    threads = [threading.Thread(target=claim_all, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(wins) == sorted(events)  # each event exactly once, none lost
    assert not stores[0].claim_event("slack:Ev0") and stores[1].claim_event("slack:Ev-new")


def test_thread_memory_is_read_back_in_order_and_skips_what_was_not_covered(open_store):
    store = open_store()
    for n, (text, abstained) in enumerate([("first?", False), ("off topic?", True), ("second?", False)]):
        answer = Answer(text, "x", abstained=abstained)
        store.save_answer(f"t{n}", Question(text, "U1", "slack", "C1", "9.9"), answer, 0.01, created=100.0 + n)
    assert store.thread_questions("slack", "C1", "9.9", 5) == ("first?", "second?")
    assert store.thread_questions("slack", "C1", "9.9", 1) == ("second?",)
    assert store.thread_questions("slack", "C2", "9.9", 5) == ()


def test_delivery_is_recorded(open_store):
    store = open_store()
    store.save_answer("a1", QUESTION, ANSWER, 0.01)
    assert store.answer_record("a1")["delivered"] is None
    store.mark_delivered("a1", False)
    assert store.answer_record("a1")["delivered"] == 0


def test_migrations_are_numbered_applied_once_and_recorded(open_store):
    from bot.store import migrations

    store = open_store()
    assert store.migrate() == []  # all applied at open
    second = open_store()
    assert second.migrate() == []
    rows = query(store, "SELECT version, name FROM schema_migrations ORDER BY version")
    assert [tuple(r) for r in rows] == [(n, name) for n, name, _ in migrations.MIGRATIONS]
    assert migrations.latest() == len(rows) >= 4


def test_a_corpus_version_is_announced_and_read_back(open_store):
    store, other = open_store(), open_store()
    assert store.corpus_version() is None
    assert store.announce_corpus("f1", 3, "host-a") == 1
    assert other.announce_corpus("f2", 4, "host-b") == 2
    seen = store.corpus_version()
    assert (seen["version"], seen["fingerprint"], seen["documents"], seen["host"]) == (2, "f2", 4, "host-b")


def test_store_path_follows_settings(monkeypatch, tmp_path):
    from bot.settings import Settings

    monkeypatch.setenv("ADVISOR_STORE", str(tmp_path / "custom.db"))
    store = Store.from_settings(Settings.from_env())
    assert store.path == tmp_path / "custom.db"
    store.close()


def test_processes_starting_together_agree_on_one_salt(tmp_path):
    """Several bots starting at once on a fresh data folder must hash a user the same way."""
    import multiprocessing

    from bot.store import _salt_for

    with multiprocessing.get_context("spawn").Pool(4) as pool:
        salts = pool.map(_salt_for, [tmp_path / "advisor.sqlite3"] * 8)
    assert len(set(salts)) == 1 and len(salts[0]) == 64
    assert (tmp_path / "advisor.sqlite3.salt").read_text().strip() == salts[0]
    assert [p.name for p in tmp_path.iterdir()] == ["advisor.sqlite3.salt"], "no temporary files left behind"


def test_which_model_wrote_an_answer_is_kept_and_old_stores_gain_the_column(tmp_path):
    import sqlite3
    from dataclasses import replace

    from retrieval.vocabulary import Question
    from bot.store import Store
    from retrieval.vocabulary import Answer, AnswerSentence, Citation

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)  # the answers table as stores made before generated answers had it
    old.execute("CREATE TABLE answers (id TEXT PRIMARY KEY, created REAL NOT NULL, platform TEXT NOT NULL, "
                "channel TEXT NOT NULL, thread TEXT NOT NULL, user_hash TEXT NOT NULL, question TEXT NOT NULL, "
                "context TEXT NOT NULL, answer TEXT NOT NULL, abstained INTEGER NOT NULL, citations TEXT NOT NULL, "
                "sentences TEXT NOT NULL, latency_ms REAL NOT NULL)")
    old.execute("INSERT INTO answers VALUES ('a0', 1, 'slack', 'C', '', 'h', 'q?', '[]', 'x [1]', 0, '[]', '[]', 3)")
    old.commit()
    old.close()
    store = Store(path, salt="s")
    assert store.get_answer("a0").written_by == ""  # the earlier answer still reads
    answer = Answer(question="q?", text="Yes. [1]", citations=(Citation(1, "d", "T", "S", "Yes."),),
                    sentences=(AnswerSentence("Yes.", 1),))
    store.save_answer("a1", Question(text="q?", user="U1"), replace(answer, written_by="llama3"), 0.01)
    store.close()
    assert Store(path, salt="s").get_answer("a1").written_by == "llama3"


def test_store_files_are_private_to_the_service_user(tmp_path):
    old_umask = os.umask(0o022)  # the usual umask, under which files are made readable by everyone
    try:
        store = Store(tmp_path / "advisor.sqlite3")
        store.save_answer("a1", QUESTION, ANSWER, 0.1)
        files = [tmp_path / name for name in ("advisor.sqlite3", "advisor.sqlite3-wal", "advisor.sqlite3-shm")]
        assert all(f.exists() for f in files)
        for f in files:
            assert f.stat().st_mode & 0o077 == 0, f"{f.name} is {oct(f.stat().st_mode)}"
        store.close()
        (tmp_path / "advisor.sqlite3").chmod(0o644)  # made by an earlier version
        Store(tmp_path / "advisor.sqlite3").close()
        assert (tmp_path / "advisor.sqlite3").stat().st_mode & 0o077 == 0
    finally:
        os.umask(old_umask)


def test_private_ask_threads_are_hashed_also_in_stores_that_kept_raw_ids(tmp_path):
    path = tmp_path / "advisor.sqlite3"
    store = Store(path, salt="s")
    old = Question("does a Series A startup hire ML PMs?", "U0LEAD", "slack", "C1", "ask:U0LEAD")
    store.save_answer("a1", old, ANSWER, 0.1)  # as /ask was stored before its thread key was hashed
    store.close()
    reopened = Store(path, salt="s")
    db = sqlite3.connect(path)
    assert "U0LEAD" not in "\n".join(db.iterdump())
    db.close()
    thread = reopened.private_thread("U0LEAD")
    assert thread.startswith("ask:") and reopened.answer_record("a1")["thread"] == thread
    assert reopened.thread_questions("slack", "C1", thread, 3) == (old.text,)  # the conversation goes on
    reopened.close()


@pytest.mark.parametrize(("content", "needles"), [
    (b"this is not a database, just text that someone wrote here by mistake" * 20, ("damaged", "move it aside")),
    (b"SQLite format 3\x00" + b"\xff" * 84 + b"\x00" * 4000, ("damaged", "move it aside")),
])
def test_a_broken_store_is_one_sentence_naming_the_file(tmp_path, content, needles):
    path = tmp_path / "advisor.sqlite3"
    path.write_bytes(content)
    with pytest.raises(StoreError) as caught:
        Store(path, salt="s")
    message = str(caught.value)
    assert str(path) in message and all(n in message for n in needles), message
    assert path.read_bytes() == content, "the damaged file is left as it is"


def test_a_working_store_is_healthy(open_store):
    assert open_store().healthy()


def test_a_deleted_or_unwritable_store_is_not_healthy(tmp_path):
    store = Store(tmp_path / "advisor.sqlite3")
    assert store.healthy()
    (tmp_path / "advisor.sqlite3").rename(tmp_path / "moved.sqlite3")  # writes would go to a file nobody reads
    assert not store.healthy()
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_many_writers_in_several_processes_lose_nothing(kind, tmp_path, request):
    """benchmarks/store_load.py, small: processes x threads writing answers and verdicts, racing for event claims."""
    from benchmarks.store_load import run

    target = request.getfixturevalue("postgres_url") if kind == "postgres" else str(tmp_path / "advisor.sqlite3")
    figures = run(target, processes=3, threads=3, writes=20)
    assert figures["errors"] == []
    assert figures["answers"] == figures["expected_answers"] == 180 and figures["feedback"] == 180
    assert figures["events_won"] == figures["distinct_events_won"] == figures["expected_events"] == 20
