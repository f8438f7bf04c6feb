"""Hybrid search: dense FAISS and BM25 candidates, each scored on its evidence signals by the ranker, diversified."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retrieval.chunking import Chunk
from retrieval.index_store import LoadedIndex
from retrieval.lexical import LexicalIndex, in_pm_words, writes_pm
from retrieval.ranking import FEATURES, Ranker, centre

DIVERSITY = 0.3  # MMR penalty on a passage too similar to one already shown, in shares of the scores' spread
CANDIDATES = 50  # from each of dense and BM25: the fused top 5 held the evidence for 87-89% of questions
RERANKED = 20  # the best candidates that diversification chooses the shown ones from
PER_DOCUMENT = 5  # candidates kept per document for the answer to find another document's view among

_COLUMN = {name: i for i, name in enumerate(FEATURES)}


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its scores."""

    chunk: Chunk
    position: int  # row of the chunk in the index
    score: float  # the ranker's
    dense: float  # cosine similarity of the passage
    lexical: float  # BM25 normalised to the best BM25 score of this query


@dataclass(frozen=True)
class SearchResult:
    """Hits best first, and what the abstention check needs to know about them."""

    hits: list[Hit]
    query_vector: np.ndarray
    top_dense: float
    coverage: float
    unknown_names: int = 0
    top_centred: float = 0.0  # the best candidate's similarity once the corpus's shared direction is removed
    corpus_mean: np.ndarray | None = field(default=None, compare=False, repr=False)  # the shared direction
    # each document's best few candidates, best first, from all candidates (not just the hits): where
    # another document's view of the question is looked for
    by_document: dict = field(default_factory=dict, compare=False, repr=False)


class HybridRetriever:
    """Dense and lexical search over one loaded index."""

    def __init__(self, index: LoadedIndex, embedder, ranker: Ranker | None = None):
        self.index = index
        self.embedder = embedder
        self.ranker = ranker or Ranker.default()
        texts = [c.embed_text for c in index.chunks]
        saved = index.lexical  # saved with the index: no need to re-tokenise the corpus when it fits
        self.lexical = saved if saved is not None and saved.built_from(texts) else LexicalIndex(texts)
        self._chunk_vectors = index.chunk_vectors()
        self._window_vectors = index.window_vectors()
        # the direction every passage of a one-topic corpus shares (here: AI, ML, PM): removed before
        # comparing, so that what a passage says apart from the topic counts
        self._mean = self._chunk_vectors.mean(0) if len(self._chunk_vectors) else np.zeros(0, dtype=np.float32)
        # a question is embedded in the corpus's own words for the role: "do AI product managers make less money
        # ...?" as "do AI PMs make less money ...?" where the documents write "PMs" (BM25 reads both as one word;
        # the model sees "product managers" and "ML PMs" as further apart than they are)
        self._pm_words = writes_pm(texts)

    def search(self, query: str, k: int = 5) -> SearchResult:
        qv, candidates, top_dense, signals = self._candidates(query)
        if not candidates:
            return SearchResult([], qv, 0.0, self.lexical.coverage(query), self.lexical.unknown_names(query))
        scores = self.ranker.score(signals)
        scored = {i: (float(scores[r]), float(signals[r, _COLUMN["dense"]]), float(signals[r, _COLUMN["lexical"]]))
                  for r, i in enumerate(candidates)}
        ranked = sorted(scored, key=lambda i: -scored[i][0])
        chosen = self._diversify(ranked[:RERANKED], scored, k)
        by_document: dict[str, list[Hit]] = {}
        for i in ranked:
            mine = by_document.setdefault(self.index.chunks[i].doc_id, [])
            if len(mine) < PER_DOCUMENT:
                mine.append(Hit(self.index.chunks[i], i, *scored[i]))
        return SearchResult(
            hits=[Hit(self.index.chunks[i], i, *scored[i]) for i in chosen], query_vector=qv,
            top_dense=top_dense, coverage=self.lexical.coverage(query),
            unknown_names=self.lexical.unknown_names(query),
            top_centred=float(signals[:, _COLUMN["centred"]].max()), by_document=by_document,
            corpus_mean=self._mean,
        )

    def candidate_signals(self, query: str) -> tuple[list[int], np.ndarray]:
        """Every candidate's chunk row and its signals (FEATURES columns), for choosing a ranker."""
        _, candidates, _, signals = self._candidates(query)
        return candidates, signals

    def _candidates(self, query: str):
        """The question's vector, its candidates (chunk rows: the dense and BM25 tops), the best cosine, and
        the candidates' signals."""
        qv = self.embedder.embed([in_pm_words(query) if self._pm_words else query])[0]
        n = len(self.index.chunks)
        if not n:
            return qv, [], 0.0, np.zeros((0, len(FEATURES)))
        dense_scores, dense_ids = self.index.faiss_index.search(qv.reshape(1, -1), min(CANDIDATES, n))
        top_dense = float(dense_scores[0].max()) if dense_scores.size else 0.0
        found = {int(i) for i in dense_ids[0] if i >= 0}
        bm25 = self.lexical.scores(query)
        top_bm25 = float(bm25.max())
        if top_bm25 > 0:
            found |= {int(i) for i in np.argpartition(-bm25, min(CANDIDATES, n) - 1)[:CANDIDATES] if bm25[i] > 0}
        candidates = sorted(found)
        signals = self._signals(candidates, query, qv, bm25, top_bm25) if candidates \
            else np.zeros((0, len(FEATURES)))
        return qv, candidates, top_dense, signals

    def _signals(self, order: list[int], query: str, qv: np.ndarray, bm25: np.ndarray,
                 top_bm25: float) -> np.ndarray:
        """The FEATURES row of each candidate chunk in `order`."""
        rows = np.array(order)
        x = np.zeros((len(order), len(FEATURES)))
        x[:, _COLUMN["dense"]] = self._chunk_vectors[rows] @ qv
        x[:, _COLUMN["window"]] = self._window_vectors[rows] @ qv
        x[:, _COLUMN["centred"]] = centre(self._chunk_vectors[rows], self._mean) @ centre(qv, self._mean)
        x[:, _COLUMN["lexical"]] = bm25[rows] / top_bm25 if top_bm25 > 0 else 0.0
        x[:, _COLUMN["phrase"]] = self.lexical.phrase_matches(query, [self.index.chunks[i].embed_text for i in order])
        for r, i in enumerate(order):
            start, end = self.index.sentence_rows[i]
            x[r, _COLUMN["sentence"]] = float((self.index.vectors[start:end] @ qv).max()) if end > start \
                else x[r, _COLUMN["dense"]]
        return x

    def _diversify(self, ranked: list[int], scored: dict, k: int) -> list[int]:
        """Maximal marginal relevance: three near-identical passages help nobody."""
        if not ranked:
            return []
        values = [scored[i][0] for i in ranked]
        spread = (max(values) - min(values)) or 1.0  # the penalty in the units of this question's scores
        chosen: list[int] = []
        pool, seen = [], set()
        for i in ranked:  # the same text twice in the corpus (a document added twice) is one passage
            text = " ".join(self.index.chunks[i].text.split()).lower()
            if text not in seen:
                seen.add(text)
                pool.append(i)
        while pool and len(chosen) < k:
            def value(i: int) -> float:
                overlap = max((float(self._chunk_vectors[i] @ self._chunk_vectors[j]) for j in chosen), default=0.0)
                return scored[i][0] - DIVERSITY * spread * overlap
            best = max(pool, key=value)
            chosen.append(best)
            pool.remove(best)
        return chosen
