"""A saved BM25 index read without bm25s scores exactly as bm25s itself scores it."""

from __future__ import annotations

import bm25s
import numpy as np

from retrieval.lexical import LexicalIndex, _bm25_names, expand, tokenize

TEXTS = [
    "True ML PMs emerge at Series B+, when model iteration cycles require dedicated ownership.",
    "In a seed-stage AI startup, the ML PM is often the CTO or a founding engineer.",
    "Salary 2026 (US senior): AI PM $280-420k, ML PM $260-380k, Data PM $230-340k.",
    "Interview loops for AI PMs include an eval design round and a product sense round.",
    "Series B-D scale-ups hire one of each role typically.",
]
QUERIES = ["does a Series A startup hire ML PMs?", "what do AI PMs earn?", "interview rounds", "pm pm pm startup",
           "eval design for an ML PM at a Series B scale-up"]


def test_saved_index_scores_exactly_as_bm25s(tmp_path):
    LexicalIndex(TEXTS).save(tmp_path)
    ours = LexicalIndex.load(tmp_path)
    theirs = bm25s.BM25.load(str(tmp_path), show_progress=False, **_bm25_names("bm25."))
    for query in QUERIES:
        known = [t for t in expand(tokenize(query)) if t in ours.vocabulary]
        assert known, query
        expected = np.asarray(theirs.get_scores(known), dtype=np.float32)
        assert np.array_equal(ours.scores(query), expected), query
        assert expected.max() > 0
    assert ours.vocabulary == frozenset(theirs.vocab_dict) - {""}
    assert np.array_equal(ours.idf(["pm", "seri", "unknown"]), LexicalIndex(TEXTS).idf(["pm", "seri", "unknown"]))


def test_saved_index_of_a_method_with_a_nonoccurrence_array(tmp_path):
    """BM25+ adds a score for the query words a passage lacks: read from its own saved array."""
    tokens = [tokenize(t) for t in TEXTS]
    model = bm25s.BM25(method="bm25+")
    model.index(tokens, show_progress=False)
    model.save(str(tmp_path), show_progress=False, **_bm25_names("bm25."))
    (tmp_path / "bm25.meta.json").write_text('{"size": 5, "texts": "", "code": ""}')
    ours = LexicalIndex.load(tmp_path)
    query = "ML PM startup salary"
    known = [t for t in expand(tokenize(query)) if t in ours.vocabulary]
    assert np.array_equal(ours.scores(query), np.asarray(model.get_scores(known), dtype=np.float32))
