"""The engine and the core: question checks, index upkeep, and answers whose citations hold together."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bot.core import Advisor

from retrieval.documents import CorpusError
from retrieval.engine import MAX_QUESTION_CHARS, Engine, QuestionError, check_question
from retrieval.index_store import IndexStore
from retrieval.vocabulary import Question
from retrieval.fake_embedder import HashingEmbedder
from tests.support import assert_well_formed, normalise

QUESTIONS = [
    "does a Series A startup hire ML PMs?",
    "is ML PM or AI PM better pay?",
    "how many technical interview rounds does an ML PM loop have?",
    "how long do I boil pasta?",
]


# --- questions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   ", "\n\t  \n", None])
def test_empty_question_is_refused_with_an_example(text):
    with pytest.raises(QuestionError) as err:
        check_question(text)
    assert "empty" in str(err.value) and "e.g." in str(err.value)


def test_ten_thousand_character_question_is_refused_saying_the_limit():
    with pytest.raises(QuestionError) as err:
        check_question("why " * 2500)
    message = str(err.value)
    assert "9,999 characters" in message  # its length once stripped ("why " * 2500 ends on a space)
    assert f"{MAX_QUESTION_CHARS:,}" in message


def test_question_at_the_limit_is_accepted_and_stripped():
    text = "a" * MAX_QUESTION_CHARS
    assert check_question(f"  {text}\n") == text
    with pytest.raises(QuestionError):
        check_question(text + "a")


def test_bad_question_is_refused_before_anything_is_indexed(tmp_path):
    embedder = HashingEmbedder()
    engine = Engine(tmp_path / "no-corpus", tmp_path / "index", embedder)
    with pytest.raises(QuestionError):
        engine.answer("  ")
    with pytest.raises(QuestionError):
        Advisor(engine).answer(Question(text="x" * 10_000))
    assert embedder.calls == 0 and not (tmp_path / "index").exists()


# --- index upkeep ---------------------------------------------------------------------------------

def test_first_question_builds_the_index(corpus_dir, tmp_path):
    embedder = HashingEmbedder()
    engine = Engine(corpus_dir, tmp_path / "index", embedder)
    answer = engine.answer("does a Series A startup hire ML PMs?")
    assert embedder.texts_embedded > 0
    assert IndexStore(tmp_path / "index").load() is not None
    assert answer.question == "does a Series A startup hire ML PMs?"


def test_missing_corpus_is_a_corpus_error(tmp_path):
    engine = Engine(tmp_path / "missing", tmp_path / "index", HashingEmbedder())
    with pytest.raises(CorpusError, match="does not exist"):
        engine.ensure_index()


def test_skipped_files_come_back_as_warnings(corpus_dir, tmp_path):
    (corpus_dir / "scan.md").write_bytes(b"\x00\x01binary scan")
    status = Engine(corpus_dir, tmp_path / "index", HashingEmbedder()).ensure_index()
    assert len(status.warnings) == 1 and "scan.md" in status.warnings[0]
    assert status.chunks > 0


def test_older_index_format_is_rebuilt_not_reported(corpus_dir, tmp_path):
    index_dir = tmp_path / "index"
    Engine(corpus_dir, index_dir, HashingEmbedder()).ensure_index()
    manifest_path = IndexStore(index_dir).current_generation() / "manifest.json"
    data = json.loads(manifest_path.read_text())
    data["format_version"] = 0
    manifest_path.write_text(json.dumps(data))
    engine = Engine(corpus_dir, index_dir, HashingEmbedder())
    assert engine.ensure_index().rebuilt
    assert engine.store.read_manifest().format_version != 0


def test_documents_and_titles(fake_advisor):
    assert dict(fake_advisor.documents()) == {
        "ai-pm-vs-ml-pm": "AI PM vs ML PM: what the titles really mean",
        "ai-ml-data-pm-guide": "AI PM vs ML PM vs Data PM: a 2026 career guide",
    }


def test_removing_a_document_reports_a_rebuild(corpus_dir, tmp_path):
    index_dir = tmp_path / "index"
    Engine(corpus_dir, index_dir, HashingEmbedder()).ensure_index()
    (corpus_dir / "ai-ml-data-pm-guide.txt").unlink()
    engine = Engine(corpus_dir, index_dir, HashingEmbedder())
    status = engine.ensure_index()
    assert {c.doc_id for c in engine.retriever.index.chunks} == {"ai-pm-vs-ml-pm"}
    assert status.rebuilt


def test_renaming_a_document_title_refreshes_citations(corpus_dir, tmp_path):
    index_dir = tmp_path / "index"
    Engine(corpus_dir, index_dir, HashingEmbedder()).ensure_index()
    path = corpus_dir / "ai-pm-vs-ml-pm.txt"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "title: AI PM vs ML PM: what the titles really mean", "title: Titles Decoded"), encoding="utf-8")
    engine = Engine(corpus_dir, index_dir, HashingEmbedder())
    engine.ensure_index()
    titles = {c.doc_title for c in engine.retriever.index.chunks if c.doc_id == "ai-pm-vs-ml-pm"}
    assert titles == {"Titles Decoded"}


def test_renaming_a_file_refreshes_doc_ids(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "old-name.txt").write_text("ML PMs own model metrics.\nAI PMs own AI features.\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    Engine(corpus, index_dir, HashingEmbedder()).ensure_index()
    shutil.move(corpus / "old-name.txt", corpus / "new-name.txt")
    engine = Engine(corpus, index_dir, HashingEmbedder())
    engine.ensure_index()
    assert {c.doc_id for c in engine.retriever.index.chunks} == {"new-name"}


# --- answers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_are_well_formed(fake_advisor, question):
    answer = fake_advisor.answer(Question(text=question))
    assert answer.question == question
    assert_well_formed(answer, fake_advisor)


def test_search_ranks_the_passage_that_shares_the_question_words(fake_advisor):
    result = fake_advisor.engine.retriever.search("When do true ML PMs emerge: seed stage or Series B+?")
    assert any("True ML PMs emerge at Series B+" in h.chunk.text for h in result.hits[:3])


def test_the_passage_that_says_the_questions_phrase_has_the_highest_phrase_signal(fake_advisor):
    from retrieval.ranking import FEATURES

    retriever = fake_advisor.engine.retriever
    rows, signals = retriever.candidate_signals("when do true ML PMs emerge?")
    phrase = signals[:, FEATURES.index("phrase")]
    best = rows[int(phrase.argmax())]
    assert "True ML PMs emerge" in retriever.index.chunks[best].text and phrase.max() == 1.0


def test_answer_to_dict_is_json(fake_advisor):
    data = json.loads(json.dumps(fake_advisor.answer(Question(text=QUESTIONS[0])).to_dict()))
    assert {"question", "abstained", "text", "citations"} <= set(data)
    for citation in data["citations"]:
        assert {"number", "doc_id", "title", "section", "quote"} <= set(citation)


def test_follow_up_is_read_with_the_thread_context(fake_advisor):
    answer = fake_advisor.answer(Question(text="and how much do they earn?",
                                          context=("what does an ML PM do day-to-day?",)))
    assert_well_formed(answer, fake_advisor)
    assert answer.question == "and how much do they earn?"


# --- answer sentences stand alone -------------------------------------------------------------------

def _pick(sentences, best, text=None):
    from retrieval.answer import answer_span

    sims = np.zeros(len(sentences))
    sims[best] = 1.0
    return answer_span(sentences, text or "\n".join(sentences), sims)[2]


def test_a_list_intro_carries_its_items_and_an_item_its_intro():
    loop = ["At Google, the ML PM loop includes:", "- 1 behavioral round", "- 1 product sense round",
            "- 1 system design", "Prepare for each."]
    assert _pick(loop, 0) == ("At Google, the ML PM loop includes: 1 behavioral round; 1 product sense round; "
                              "1 system design")
    assert _pick(loop, 2) == "At Google, the ML PM loop includes: 1 product sense round"
    assert _pick(["Day-to-day:", "Ship features every week and talk to users."], 0) == \
        "Day-to-day: Ship features every week and talk to users."
    long_items = ["The loop includes:"] + [f"- item number {i} " + "x" * 60 for i in range(8)]
    text = _pick(long_items, 0)
    assert text.startswith("The loop includes: item number 0") and len(text) <= 280


def test_an_intro_closing_its_line_before_a_line_that_is_not_its_list_is_left_off():
    owns = ["Owns data products - pipelines, dashboards and schemas.", "Day-to-day:",
            "The internal-platform variant pays less but is steady."]
    text = f"{owns[0]} {owns[1]}\n{owns[2]}"  # the day-to-day list itself is not in the passage
    assert _pick(owns, 0, text) == owns[0], "not \"Day-to-day: The internal-platform variant pays less\""
    listed = owns[:2] + ["- Ship dashboards", "- Review schemas"]
    with_list = _pick(listed, 0, f"{owns[0]} {owns[1]}\n- Ship dashboards\n- Review schemas")
    assert with_list.startswith(f"{owns[0]} Day-to-day:") and "Ship dashboards" in with_list  # its list: kept
    only_intro = ["Some skills are specific:", "ML PM-specific: deep statistical methodology."]
    assert _pick(only_intro, 0) == "Some skills are specific: ML PM-specific: deep statistical methodology."


# --- warm start without reading the corpus ---------------------------------------------------------

def _no_corpus_reading(monkeypatch):
    """Fail the test if the corpus is read or chunked (the stamp should have been enough)."""
    import retrieval.documents
    import retrieval.engine

    def refuse(*args, **kwargs):
        raise AssertionError("the corpus was read or chunked")

    monkeypatch.setattr(retrieval.documents, "_to_document", refuse)
    monkeypatch.setattr(retrieval.engine, "chunk_document", refuse)


def _age(corpus_dir, seconds=60):
    """Make the files look written a while before the index (not 'racy': size and mtime are then trusted)."""
    import os
    import time

    for path in corpus_dir.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(time.time_ns() - seconds * 10**9,) * 2)


def test_a_warm_start_neither_reads_nor_chunks_the_corpus_and_answers_the_same(corpus_dir, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    _age(corpus_dir)
    (corpus_dir / "scan.md").write_bytes(b"\x00\x01binary scan")
    first = Engine(corpus_dir, index_dir, HashingEmbedder())
    first_status = first.ensure_index()
    expected = [first.answer(q).to_dict() for q in QUESTIONS]
    _age(corpus_dir)

    _no_corpus_reading(monkeypatch)
    embedder = HashingEmbedder()
    engine = Engine(corpus_dir, index_dir, embedder)
    status = engine.ensure_index()
    assert not status.rebuilt and status.embedded == 0 and status.chunks == first_status.chunks
    assert status.warnings == first_status.warnings and "scan.md" in status.warnings[0]
    assert [(d.id, d.title, d.path) for d in engine.documents] == [(d.id, d.title, d.path) for d in first.documents]
    assert engine.generation == first.generation
    assert [engine.answer(q).to_dict() for q in QUESTIONS] == expected
    assert engine.retriever.lexical._bm25 is engine.retriever.index.lexical._bm25, "BM25 loaded, not rebuilt"


def test_touching_files_keeps_the_fast_start(corpus_dir, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    Engine(corpus_dir, index_dir, HashingEmbedder()).ensure_index()
    _age(corpus_dir, seconds=5)  # new mtimes, same bytes (a `git checkout`, a copy): hashed, found equal
    _no_corpus_reading(monkeypatch)
    assert Engine(corpus_dir, index_dir, HashingEmbedder()).ensure_index().rebuilt is False


@pytest.mark.parametrize("change", ["same size", "added", "removed", "renamed"])
def test_any_change_to_the_files_is_seen_without_a_full_read_first(corpus_dir, tmp_path, change):
    import os

    index_dir = tmp_path / "index"
    _age(corpus_dir)
    Engine(corpus_dir, index_dir, HashingEmbedder()).ensure_index()
    path = corpus_dir / "ai-ml-data-pm-guide.txt"
    if change == "same size":
        stat = path.stat()
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("junior levels", "junior LEVELS"), encoding="utf-8")
        assert path.stat().st_size == stat.st_size
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the old mtime back: the ctime still moved
    elif change == "added":
        (corpus_dir / "new.md").write_text("# New\n\nML PMs write model launch checklists.\n", encoding="utf-8")
    elif change == "removed":
        path.unlink()
    else:
        path.rename(corpus_dir / "guide.txt")
    engine = Engine(corpus_dir, index_dir, HashingEmbedder())
    status = engine.ensure_index()
    assert status.rebuilt  # a rename too: the index records each document's path, which changed
    texts = " ".join(c.text for c in engine.retriever.index.chunks)
    if change == "same size":
        assert "junior LEVELS" in texts
    elif change == "added":
        assert "model launch checklists" in texts
    elif change == "removed":
        assert {d.id for d in engine.documents} == {"ai-pm-vs-ml-pm"}
    else:  # its header keeps its id; the documents know the new file
        assert [d.path for d in engine.documents if d.id == "ai-ml-data-pm-guide"] == [str(corpus_dir / "guide.txt")]


def test_a_changed_reader_checks_the_chunks_then_records_a_new_stamp(corpus_dir, tmp_path, monkeypatch):
    import os

    import retrieval.engine

    index_dir = tmp_path / "index"
    _age(corpus_dir)
    built = Engine(corpus_dir, index_dir, HashingEmbedder())
    built.ensure_index()
    vectors = IndexStore(index_dir).current_generation() / "vectors.npy"
    inode = os.stat(vectors).st_ino
    monkeypatch.setattr(retrieval.engine, "CHUNKER_VERSION", "a later chunker")
    embedder = HashingEmbedder()
    engine = Engine(corpus_dir, index_dir, embedder)
    status = engine.ensure_index()  # chunks read and compared: the same, so nothing is rebuilt
    assert not status.rebuilt and embedder.texts_embedded == 0
    assert engine.generation != built.generation, "a new generation records the new stamp"
    assert os.stat(IndexStore(index_dir).current_generation() / "vectors.npy").st_ino == inode, "hard-linked"
    assert sorted(p.name for p in index_dir.iterdir() if "gen-" in p.name) == [engine.generation]

    _no_corpus_reading(monkeypatch)
    again = Engine(corpus_dir, index_dir, HashingEmbedder())
    assert again.ensure_index().rebuilt is False and again.generation == engine.generation


def test_an_index_built_without_a_stamp_is_checked_the_slow_way(corpus_dir, tmp_path):
    from retrieval.chunking import chunk_document
    from retrieval.documents import load_corpus

    index_dir = tmp_path / "index"
    chunks = [c for d in load_corpus(corpus_dir)[0] for c in chunk_document(d)]
    IndexStore(index_dir).build(chunks, HashingEmbedder())  # as an older caller would: no corpus stamp
    engine = Engine(corpus_dir, index_dir, HashingEmbedder())
    assert engine.ensure_index().rebuilt is False
    assert engine.store.read_manifest().corpus is not None


def test_a_stamp_that_cannot_be_recorded_still_starts(corpus_dir, tmp_path, monkeypatch, caplog):
    import logging
    import os

    import retrieval.engine

    index_dir = tmp_path / "index"
    built = Engine(corpus_dir, index_dir, HashingEmbedder())
    built.ensure_index()
    monkeypatch.setattr(retrieval.engine, "CHUNKER_VERSION", "a later chunker")

    def no_links(*args, **kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    engine = Engine(corpus_dir, index_dir, HashingEmbedder())
    with caplog.at_level(logging.INFO, logger="retrieval.index_store"):
        status = engine.ensure_index()
    assert not status.rebuilt and engine.generation == built.generation
    assert "Could not record the corpus stamp" in caplog.text
    assert not [p for p in index_dir.iterdir() if p.name.startswith(".gen-")]
    assert engine.answer(QUESTIONS[0]).question == QUESTIONS[0]


def test_a_document_added_twice_is_not_quoted_twice(corpus_dir, tmp_path, fake_embedder):
    """The same text under two names: each passage is shown once, never as [1], [2] and [3]."""
    original = corpus_dir / "ai-pm-vs-ml-pm.txt"
    (corpus_dir / "copy-of-titles.txt").write_text(
        original.read_text(encoding="utf-8").replace("id: ai-pm-vs-ml-pm", "id: copy-of-titles"), encoding="utf-8")
    advisor = Advisor(Engine(corpus_dir, tmp_path / "index", fake_embedder))
    for question in QUESTIONS[:3]:
        answer = advisor.answer(Question(text=question))
        quotes = [normalise(c.quote) for c in answer.citations]
        assert len(quotes) == len(set(quotes)), quotes
        hits = [normalise(h.chunk.text) for h in answer.hits]
        assert len(hits) == len(set(hits))
        sentences = [s.text for s in answer.sentences]
        assert len(sentences) == len(set(sentences))
