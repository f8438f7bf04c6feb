"""A running engine follows index rebuilds made by another process: atomically, without dropping a question."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from retrieval.corpus_admin import add_file
from bot.settings import Settings, SettingsError
from retrieval.engine import Engine
from retrieval.generations import READERS, Generations
from retrieval.index_store import IndexStore
from retrieval.fake_embedder import HashingEmbedder
from tests.support import ARTICLE
from tests.support import ARTICLE_ID, NEW_QUESTION

OLD_QUESTION = "does a Series A startup hire ML PMs?"
DEADLINE = 60  # seconds: a bound so a broken swap fails the test instead of hanging it


def cited_docs(answer) -> set[str]:
    return {c.doc_id for c in answer.citations}


@pytest.fixture
def index_dir(tmp_path) -> Path:
    return tmp_path / "index"


def engine_for(corpus_dir, index_dir, check_seconds=0.0) -> Engine:
    engine = Engine(corpus_dir, index_dir, HashingEmbedder(), check_seconds=check_seconds)
    engine.ensure_index()
    return engine


def rebuild_elsewhere(corpus_dir, index_dir) -> Engine:
    """What `advisor corpus add` does in another process: store a document, rebuild incrementally."""
    writer = Engine(corpus_dir, index_dir, HashingEmbedder(), check_seconds=3600)
    with writer.store.locked():
        add_file(corpus_dir, ARTICLE)
        writer.ensure_index()
    return writer


def test_questions_streaming_during_a_rebuild_are_all_answered_and_then_cite_the_new_document(corpus_dir, index_dir):
    bot = engine_for(corpus_dir, index_dir)
    before = bot.answer(NEW_QUESTION)
    assert ARTICLE_ID not in cited_docs(before)
    answers: list[tuple[str, str, object]] = []  # (thread, generation in use before asking, answer)
    errors: list[BaseException] = []
    swapped = threading.Event()
    started = threading.Barrier(5)

    def ask_continuously(name: str) -> None:
        started.wait(DEADLINE)
        after_swap = 0
        for i in range(400):  # bounded: stops by itself
            question = NEW_QUESTION if i % 2 else OLD_QUESTION
            generation = bot.generation  # the retriever is swapped before the generation name
            try:
                answers.append((name, generation, bot.answer(question)))
            except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
                errors.append(exc)
            if swapped.is_set():
                after_swap += 1
                if after_swap > 6 and i >= 20:  # both questions asked a few times on the new index
                    return

    threads = [threading.Thread(target=ask_continuously, args=(f"asker-{n}",), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    started.wait(DEADLINE)
    writer = rebuild_elsewhere(corpus_dir, index_dir)
    for _ in range(DEADLINE * 20):
        if bot.generation == writer.generation:
            break
        threading.Event().wait(0.05)
    swapped.set()
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(answers) >= 4 * 20 and all(a.sentences or a.abstained for _, _, a in answers)
    assert bot.generation == writer.generation
    new_answers = [a for _, gen, a in answers if gen == writer.generation and a.question == NEW_QUESTION]
    assert new_answers and all(ARTICLE_ID in cited_docs(a) for a in new_answers)
    assert ARTICLE_ID in {doc_id for doc_id, _ in [(d.id, d.title) for d in bot.documents]}


def test_a_question_in_flight_finishes_on_the_index_it_started_with(corpus_dir, index_dir):
    bot = engine_for(corpus_dir, index_dir)
    old = bot.retriever
    entered, release = threading.Event(), threading.Event()
    real_search = old.search

    def slow_search(query, k=5):
        entered.set()
        release.wait(DEADLINE)
        return real_search(query, k)

    old.search = slow_search
    result: list = []
    asker = threading.Thread(target=lambda: result.append(bot.answer(NEW_QUESTION)), daemon=True)
    asker.start()
    assert entered.wait(DEADLINE)
    writer = rebuild_elsewhere(corpus_dir, index_dir)
    assert bot.refresh() is True and bot.generation == writer.generation  # swapped while the question waits
    release.set()
    asker.join(DEADLINE)
    assert len(result) == 1 and ARTICLE_ID not in cited_docs(result[0])  # answered from the old index
    assert ARTICLE_ID in cited_docs(bot.answer(NEW_QUESTION))  # the next one uses the new index


def test_the_index_is_checked_at_most_every_check_seconds(corpus_dir, index_dir):
    bot = engine_for(corpus_dir, index_dir, check_seconds=3600)
    old_generation = bot.generation
    rebuild_elsewhere(corpus_dir, index_dir)
    bot.answer(NEW_QUESTION)
    bot.wait_for_reload(DEADLINE)
    assert bot.generation == old_generation  # not yet time to look
    assert bot.refresh() is True and bot.generation != old_generation


def test_check_seconds_comes_from_the_environment(monkeypatch):
    assert Settings.from_env().index_check_seconds == 5
    monkeypatch.setenv("ADVISOR_INDEX_CHECK_SECONDS", "0.5")
    assert Settings.from_env().index_check_seconds == 0.5
    for bad in ("soon", "-1"):  # a typo stops the command at start, like every other malformed setting
        monkeypatch.setenv("ADVISOR_INDEX_CHECK_SECONDS", bad)
        with pytest.raises(SettingsError, match=f"ADVISOR_INDEX_CHECK_SECONDS should be a number of seconds.*'{bad}'"):
            Settings.from_env()


def test_a_damaged_new_generation_is_not_installed_and_the_old_one_keeps_answering(corpus_dir, index_dir, caplog):
    bot = engine_for(corpus_dir, index_dir)
    old_generation = bot.generation
    writer = rebuild_elsewhere(corpus_dir, index_dir)
    vectors = index_dir / writer.generation / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-64])
    with caplog.at_level(logging.WARNING):
        assert bot.refresh() is False
    assert "Not switching index" in caplog.text and "advisor index" in caplog.text
    assert bot.generation == old_generation
    assert bot.answer(OLD_QUESTION).citations
    bot.answer(OLD_QUESTION)
    bot.wait_for_reload(DEADLINE)
    assert bot.generation == old_generation  # the damaged generation is not retried on every question


def test_an_index_of_another_model_is_not_installed(corpus_dir, index_dir):
    bot = engine_for(corpus_dir, index_dir)
    old_generation = bot.generation
    other = Engine(corpus_dir, index_dir, HashingEmbedder(name="another-model"), check_seconds=3600)
    other.ensure_index()
    assert bot.refresh() is False and bot.generation == old_generation


def test_a_corpus_changed_without_a_rebuild_is_not_indexed_by_the_running_engine(corpus_dir, index_dir):
    bot = engine_for(corpus_dir, index_dir)
    generation, embedded = bot.generation, bot.embedder.texts_embedded
    add_file(corpus_dir, ARTICLE)  # stored with --no-index: nobody rebuilt
    answer = bot.answer(NEW_QUESTION)
    bot.wait_for_reload(DEADLINE)
    assert ARTICLE_ID not in cited_docs(answer)
    assert bot.generation == generation and IndexStore(index_dir).current_name() == generation
    assert bot.embedder.texts_embedded == embedded + 1  # only the question: no rebuild in the serving process


def test_a_generation_being_read_is_not_pruned_under_the_reader(corpus_dir, index_dir):
    engine_for(corpus_dir, index_dir)
    reader = IndexStore(index_dir)
    with reader.generations.reading() as gen:  # another process in the middle of loading this generation
        rebuild_elsewhere(corpus_dir, index_dir)
        assert gen.is_dir() and (gen / READERS).exists() and (gen / "vectors.npy").exists()
        assert reader.current_name() != gen.name
    (corpus_dir / f"{ARTICLE_ID}.md").unlink()
    Engine(corpus_dir, index_dir, HashingEmbedder()).ensure_index()  # the next build prunes it
    assert not gen.exists()
    assert sorted(p.name for p in index_dir.iterdir() if "gen-" in p.name) == [IndexStore(index_dir).current_name()]


def test_a_reader_whose_generation_was_pruned_reads_current_again(corpus_dir, index_dir, monkeypatch):
    engine_for(corpus_dir, index_dir)
    store = IndexStore(index_dir)
    stale = store.current_generation()
    writer = rebuild_elsewhere(corpus_dir, index_dir)
    assert not stale.exists()
    calls = iter([stale])  # the first look at `current` saw the generation pruned since
    real = Generations.current
    monkeypatch.setattr(Generations, "current", lambda self: next(calls, None) or real(self))
    loaded = store.load()
    assert loaded.generation == writer.generation


async def test_the_chat_service_answers_every_question_across_a_swap(corpus_dir, index_dir):
    """The bots' path: ChatService -> Advisor -> Engine, with the rebuild running beside the questions."""
    import asyncio

    from bot.core import Advisor

    from retrieval.vocabulary import Question
    from bot.guards import Limits
    from bot.service import ChatService
    from retrieval.vocabulary import ReplyStatus

    bot = engine_for(corpus_dir, index_dir)
    service = ChatService(Advisor(bot), limits=Limits(per_minute=10_000, burst=10_000, workers=2))

    def question(n: int) -> Question:  # distinct users and threads: no rate limit, no duplicate filter
        return Question(text=NEW_QUESTION, user=f"user-{n}", platform="console", thread=f"thread-{n}")

    rebuild = asyncio.create_task(asyncio.to_thread(rebuild_elsewhere, corpus_dir, index_dir))
    replies, n = [], 0
    while not (rebuild.done() and ARTICLE_ID in cited_docs(replies[-1].answer)) and n < 2000:  # bounded
        batch = await asyncio.gather(*(service.ask(question(n + i)) for i in range(8)))
        replies.extend(batch)
        n += len(batch)
        bot.wait_for_reload(DEADLINE)
    writer = await rebuild
    assert [r.status for r in replies] == [ReplyStatus.ANSWERED] * len(replies)
    assert bot.generation == writer.generation and ARTICLE_ID in cited_docs(replies[-1].answer)


def test_a_swap_loads_the_saved_bm25_and_does_not_read_the_corpus(corpus_dir, index_dir, monkeypatch):
    import retrieval.documents
    from retrieval import lexical

    bot = engine_for(corpus_dir, index_dir)
    writer = rebuild_elsewhere(corpus_dir, index_dir)

    def refuse(*args, **kwargs):
        raise AssertionError("the swap read the corpus or re-tokenised it")

    monkeypatch.setattr(retrieval.documents, "read_corpus", refuse)
    monkeypatch.setattr(retrieval.documents, "_to_document", refuse)
    monkeypatch.setattr(lexical, "tokenize", refuse)
    assert bot.refresh() is True and bot.generation == writer.generation
    monkeypatch.undo()
    assert ARTICLE_ID in {d.id for d in bot.documents}
    assert [(d.id, d.title) for d in bot.documents] == [(d.id, d.title) for d in writer.documents]
    assert bot.retriever.lexical._bm25 is bot.retriever.index.lexical._bm25
    assert bot.answer(NEW_QUESTION).to_dict() == writer.answer(NEW_QUESTION).to_dict()
