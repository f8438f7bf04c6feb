"""The ONNX query encoder: same vectors and answers as sentence-transformers, a fresh process without torch, and
sentence-transformers again (one log line) whenever the export is missing, damaged or impossible."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.settings import Settings, SettingsError
from retrieval import query_encoder
from retrieval.embedding import QueryEmbedder, SentenceTransformerEmbedder
from retrieval.engine import Engine
from tests.conftest import ROOT, SHARED_EVAL, SHIPPED_CORPUS

pytestmark = pytest.mark.model

OWN_QUESTIONS = [  # when ../shared/eval is not beside the checkout
    "does a Series A startup hire ML PMs?", "what do AI PMs earn compared to other PMs?",
    "how do I prepare for an ML PM interview loop?", "and at Series B?", "how do I boil pasta?",
]
HEAVY = ("torch", "transformers", "sentence_transformers", "sklearn", "onnx")


def dev_questions() -> list[str]:
    """The labelled sets' questions from shared/eval beside the checkout (or beside its folder, for a worktree)."""
    for shared in (SHARED_EVAL, ROOT.parent.parent / "shared" / "eval"):
        files = [shared / "dev.jsonl", shared / "dev2.jsonl"]
        if all(f.is_file() for f in files):
            break
    else:
        return OWN_QUESTIONS
    return [json.loads(line)["question"] for f in files for line in f.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def fast(real_advisor) -> QueryEmbedder:
    """The real advisor's query embedder, on the export its index build wrote."""
    embedder = real_advisor.engine.query_embedder
    embedder.embed(["warm up"])
    assert embedder.fast, "the index build exported the query encoder and questions use it"
    return embedder


def test_fast_vectors_match_sentence_transformers_on_the_dev_questions(fast, real_embedder):
    questions = dev_questions()
    onnx_vectors = np.stack([fast.embed([q])[0] for q in questions])  # one at a time, as questions come
    reference = real_embedder.embed(questions)
    cosines = np.sum(onnx_vectors * reference, axis=1)
    print(f"{len(questions)} questions: cosine min {cosines.min():.7f}")
    assert cosines.min() >= 0.999
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)
    batched = fast.embed(questions[:8])  # padded batch: padding must not move a vector
    assert np.sum(batched * reference[:8], axis=1).min() >= 0.999


def test_rankings_and_answers_differ_only_where_passages_tie(real_advisor, fast, real_embedder):
    """Every question's ranked hits from both encoders: a swap is allowed only where the scores are within 1e-4."""
    engine = real_advisor.engine
    retriever = engine.retriever
    ties, differing_answers = [], []
    try:
        for question in dev_questions():
            retriever.embedder = fast
            onnx_hits, onnx_answer = retriever.search(question).hits, engine.answer(question).text
            retriever.embedder = real_embedder
            full_hits, full_answer = retriever.search(question).hits, engine.answer(question).text
            for a, b in zip(onnx_hits, full_hits, strict=True):
                assert abs(a.score - b.score) < 1e-4, (question, a.score, b.score)
                if a.position != b.position:
                    score_of = {h.position: h.score for h in full_hits}
                    assert a.position in score_of and abs(score_of[a.position] - b.score) < 1e-4, \
                        (question, a.position, b.position)
                    ties.append(question)
            if onnx_answer != full_answer:
                differing_answers.append(question)
    finally:
        retriever.embedder = fast
    print(f"rank swaps within 1e-4: {sorted(set(ties))}; answers that differ: {differing_answers}")
    assert set(differing_answers) <= set(ties), "an answer differs only where two passages tie"


def test_a_fresh_process_answers_without_importing_torch(real_advisor, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(real_advisor.engine.store.folder, Settings(corpus_dir=SHIPPED_CORPUS, data_dir=data).index_dir,
                    symlinks=True)
    script = ("import sys; from bot.cli.entry import main; code = main(['ask', '--json', 'does a Series A startup hire ML "
              f"PMs?', '--corpus', {str(SHIPPED_CORPUS)!r}, '--data-dir', {str(data)!r}]); "
              f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr); sys.exit(code)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
    assert json.loads(proc.stdout)["citations"]


def _copy_export(real_advisor, tmp_path) -> Path:
    folder = tmp_path / "query-encoder"
    shutil.copytree(real_advisor.engine.encoder_folder, folder)
    return folder


@pytest.mark.parametrize("damage", ["flipped bytes", "truncated", "missing", "not onnx"])
def test_a_damaged_export_falls_back_to_sentence_transformers_with_one_log_line(
        real_advisor, real_embedder, fast, tmp_path, caplog, damage):
    folder = _copy_export(real_advisor, tmp_path)
    model = folder / query_encoder.read_record(folder)["files"]["model"]
    data = bytearray(model.read_bytes())
    if damage == "flipped bytes":
        data[len(data) // 2: len(data) // 2 + 8] = bytes(8)
        model.write_bytes(bytes(data))
    elif damage == "truncated":
        model.write_bytes(bytes(data[: len(data) // 3]))
    elif damage == "missing":
        model.unlink()
    else:  # a file that matches its record but is no model: onnxruntime refuses it
        record = query_encoder.read_record(folder)
        model.write_bytes(b"not an onnx model")
        record["sizes"]["model"], record["crc"]["model"] = len(b"not an onnx model"), query_encoder._file_crc(model)
        (folder / query_encoder.RECORD).write_text(json.dumps(record))
    embedder = real_embedder.for_queries(folder, threads=1)
    question = "does a Series A startup hire ML PMs?"
    with caplog.at_level(logging.INFO, logger="retrieval"):
        first = embedder.embed([question])
        second = embedder.embed(["and at Series B?"])
    assert not embedder.fast
    np.testing.assert_allclose(first, real_embedder.embed([question]), atol=1e-6)
    assert second.shape == (1, 384)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "Encoding questions with sentence-transformers" in lines[0], lines


def test_advisor_index_replaces_a_damaged_export(real_advisor, real_embedder, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(real_advisor.engine.store.folder, index, symlinks=True)
    engine = Engine(SHIPPED_CORPUS, index, real_embedder)
    model = engine.encoder_folder / query_encoder.read_record(engine.encoder_folder)["files"]["model"]
    model.write_bytes(model.read_bytes()[:1000])
    engine.ensure_index()  # a start does not export when a current record exists: it falls back
    assert engine.answer("does a Series A startup hire ML PMs?").citations and not engine.query_embedder.fast
    status = engine.ensure_index(force=True)  # `advisor index`: checks the export and writes it again
    assert status.embedded == 0
    assert engine.answer("does a Series A startup hire ML PMs?").citations and engine.query_embedder.fast


def tiny_corpus(folder: Path) -> Path:
    folder.mkdir()
    (folder / "hiring.md").write_text("---\nid: hiring\ntitle: Hiring ML PMs\n---\n# Startups\nTrue ML PMs "
                                      "emerge at Series B+, when model iteration needs dedicated ownership.\n")
    return folder


def test_a_model_that_cannot_be_exported_still_answers_and_says_so_once(real_embedder, tmp_path, caplog):
    """all-MiniLM-L6-v2 with max pooling: a pipeline the export does not reproduce."""
    from sentence_transformers import SentenceTransformer, models

    corpus_dir = tiny_corpus(tmp_path / "corpus")

    st = real_embedder._ensure()
    folder = tmp_path / "max-pooled"
    SentenceTransformer(modules=[st[0], models.Pooling(384, pooling_mode="max"), models.Normalize()],
                        device="cpu").save(str(folder))
    embedder = SentenceTransformerEmbedder(str(folder))
    engine = Engine(corpus_dir, tmp_path / "index", embedder)
    with caplog.at_level(logging.INFO, logger="retrieval"):
        engine.ensure_index()
        answer = engine.answer("does a Series A startup hire ML PMs?")
        engine.answer("and at Series B?")
    record = query_encoder.read_record(engine.encoder_folder)
    assert record["exportable"] is False and "pooling is 'max'" in record["reason"]
    assert not list(engine.encoder_folder.glob("*.onnx"))
    assert answer.citations and not engine.query_embedder.fast
    said = [r.getMessage() for r in caplog.records if "sentence-transformers" in r.getMessage()]
    assert len(said) == 1 and "could not be exported" in said[0] and "pooling is 'max'" in said[0], said
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="retrieval"):
        Engine(corpus_dir, tmp_path / "index", embedder).ensure_index()  # the next start tries no export
    assert not [r for r in caplog.records if "Exporting" in r.getMessage()]


def test_an_export_that_could_not_be_written_is_tried_again_at_the_next_start(real_embedder, tmp_path, monkeypatch,
                                                                             caplog):
    corpus_dir, index = tiny_corpus(tmp_path / "corpus"), tmp_path / "index"

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(query_encoder, "_export_onnx", disk_full)
    engine = Engine(corpus_dir, index, real_embedder)
    with caplog.at_level(logging.WARNING, logger="retrieval"):
        engine.ensure_index()
        assert engine.answer("does a Series A startup hire ML PMs?").citations
    assert "Could not write the query encoder" in caplog.text and "No space left" in caplog.text
    assert query_encoder.read_record(engine.encoder_folder) is None, "a full disk says nothing about the model"
    monkeypatch.undo()
    again = Engine(corpus_dir, index, real_embedder)
    again.ensure_index()
    assert again.answer("does a Series A startup hire ML PMs?").citations and again.query_embedder.fast


def test_a_changed_model_folder_makes_the_export_stale(real_embedder, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(real_embedder._target, folder)
    embedder = SentenceTransformerEmbedder(str(folder))
    fingerprint = embedder.fingerprint()
    os.utime(folder / "config.json", ns=(1, 1))
    assert SentenceTransformerEmbedder(str(folder)).fingerprint() != fingerprint


def test_questions_are_encoded_on_one_thread_unless_set(fast, real_embedder, tmp_path, monkeypatch):
    import torch

    assert fast.threads == 1 and fast._encoder._session.get_session_options().intra_op_num_threads == 1
    assert Settings.from_env().query_threads == 1
    monkeypatch.setenv("ADVISOR_TORCH_THREADS", "2")
    assert Settings.from_env().query_threads == 2
    for bad in ("0", "two", "-3"):
        monkeypatch.setenv("ADVISOR_TORCH_THREADS", bad)
        with pytest.raises(SettingsError, match="ADVISOR_TORCH_THREADS"):
            Settings.from_env()
    fallback = real_embedder.for_queries(tmp_path / "none", threads=1)
    fallback.embed(["a question"])
    assert torch.get_num_threads() == 1  # the full path's questions: one thread too
    real_embedder.embed(["a passage", "another"])
    if (os.cpu_count() or 1) > 1:
        assert torch.get_num_threads() > 1  # the index build: every core again
