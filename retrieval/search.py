"""Hybrid search: dense FAISS and BM25 candidates, fused with passage, context and sentence scores, diversified."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval.chunking import Chunk
from retrieval.index_store import LoadedIndex
from retrieval.lexical import LexicalIndex

# Weights of the fused score, chosen on the dev set.
WEIGHTS = {"dense": 0.4, "window": 0.4, "sentence": 0.2, "lexical": 0.2}
DIVERSITY = 0.3  # MMR penalty on a passage too similar to one already shown
CANDIDATES = 50
RERANKED = 20


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its scores."""

    chunk: Chunk
    position: int  # row of the chunk in the index
    score: float  # fused
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


class HybridRetriever:
    """Dense and lexical search over one loaded index."""

    def __init__(self, index: LoadedIndex, embedder):
        self.index = index
        self.embedder = embedder
        texts = [c.embed_text for c in index.chunks]
        saved = index.lexical  # saved with the index: no need to re-tokenise the corpus when it fits
        self.lexical = saved if saved is not None and saved.built_from(texts) else LexicalIndex(texts)
        self._chunk_vectors = index.chunk_vectors()
        self._window_vectors = index.window_vectors()

    def _best_sentence(self, i: int, qv: np.ndarray, fallback: float) -> float:
        start, end = self.index.sentence_rows[i]
        return float((self.index.vectors[start:end] @ qv).max()) if end > start else fallback

    def search(self, query: str, k: int = 5) -> SearchResult:
        qv = self.embedder.embed([query])[0]
        n = len(self.index.chunks)
        dense_scores, dense_ids = self.index.faiss_index.search(qv.reshape(1, -1), min(CANDIDATES, n))
        dense = {int(i): float(s) for i, s in zip(dense_ids[0], dense_scores[0]) if i >= 0}
        bm25 = self.lexical.scores(query)
        top_bm25 = float(bm25.max()) if n else 0.0
        if top_bm25 > 0:
            lexical_ids = np.argpartition(-bm25, min(CANDIDATES, n) - 1)[:CANDIDATES]
            candidates = set(dense) | {int(i) for i in lexical_ids if bm25[i] > 0}
        else:
            candidates = set(dense)
        w = WEIGHTS
        scored = {}
        for i in candidates:
            d = dense[i] if i in dense else float(self._chunk_vectors[i] @ qv)
            lex = float(bm25[i]) / top_bm25 if top_bm25 > 0 else 0.0
            fused = (w["dense"] * d + w["lexical"] * lex
                     + w["window"] * float(self._window_vectors[i] @ qv)
                     + w["sentence"] * self._best_sentence(i, qv, d))
            scored[i] = (fused, d, lex)
        order = self._diversify(sorted(scored, key=lambda i: -scored[i][0])[:RERANKED], scored, k)
        hits = [Hit(self.index.chunks[i], i, *scored[i]) for i in order]
        return SearchResult(
            hits=hits, query_vector=qv, top_dense=max(dense.values(), default=0.0),
            coverage=self.lexical.coverage(query),
            unknown_names=self.lexical.unknown_names(query),
        )

    def _diversify(self, ranked: list[int], scored: dict, k: int) -> list[int]:
        """Maximal marginal relevance: three near-identical passages help nobody."""
        chosen: list[int] = []
        pool = list(ranked)
        while pool and len(chosen) < k:
            def value(i: int) -> float:
                overlap = max((float(self._chunk_vectors[i] @ self._chunk_vectors[j]) for j in chosen), default=0.0)
                return scored[i][0] - DIVERSITY * overlap
            best = max(pool, key=value)
            chosen.append(best)
            pool.remove(best)
        return chosen
