"""Hybrid search: dense FAISS similarity fused with BM25, returning scored hits and the evidence signals."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retrieval.chunking import Chunk
from retrieval.index_store import LoadedIndex
from retrieval.lexical import LexicalIndex

DENSE_WEIGHT = 0.7  # chosen on the dev set: see benchmarks/tune_search.py
CANDIDATES = 50


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its scores."""

    chunk: Chunk
    position: int  # row of the chunk in the index
    score: float  # fused
    dense: float  # cosine similarity
    lexical: float  # BM25 normalised to the best BM25 score of this query


@dataclass(frozen=True)
class SearchResult:
    """Hits best first, and what the abstention check needs to know about them."""

    hits: list[Hit]
    query_vector: np.ndarray
    top_dense: float
    top_lexical_raw: float
    coverage: float
    signals: dict = field(default_factory=dict)


class HybridRetriever:
    """Dense and lexical search over one loaded index."""

    def __init__(self, index: LoadedIndex, embedder, dense_weight: float = DENSE_WEIGHT, fusion: str = "linear"):
        self.index = index
        self.embedder = embedder
        self.lexical = LexicalIndex([c.embed_text for c in index.chunks])
        self.dense_weight = dense_weight
        self.fusion = fusion

    def search(self, query: str, k: int = 5) -> SearchResult:
        qv = self.embedder.embed([query])[0]
        n = len(self.index.chunks)
        dense_scores, dense_ids = self.index.faiss_index.search(qv.reshape(1, -1), min(CANDIDATES, n))
        dense = {int(i): float(s) for i, s in zip(dense_ids[0], dense_scores[0]) if i >= 0}
        bm25 = self.lexical.scores(query)
        top_bm25 = float(bm25.max()) if len(bm25) else 0.0
        lexical_ids = np.argpartition(-bm25, min(CANDIDATES, n) - 1)[:CANDIDATES] if top_bm25 > 0 else []
        candidates = set(dense) | {int(i) for i in lexical_ids if bm25[i] > 0}
        vectors = self.index.vectors
        scored = []
        for i in candidates:
            d = dense.get(i)
            if d is None:
                d = float(vectors[i] @ qv)
            lex = float(bm25[i]) / top_bm25 if top_bm25 > 0 else 0.0
            scored.append((i, d, lex))
        if self.fusion == "rrf":
            dense_rank = {i: r for r, (i, *_rest) in enumerate(sorted(scored, key=lambda t: -t[1]))}
            lex_rank = {i: r for r, (i, *_rest) in enumerate(sorted(scored, key=lambda t: -t[2]))}
            fused = {i: 1 / (60 + dense_rank[i]) + 1 / (60 + lex_rank[i]) for i, *_ in scored}
        else:
            w = self.dense_weight
            fused = {i: w * d + (1 - w) * lex for i, d, lex in scored}
        scored.sort(key=lambda t: -fused[t[0]])
        hits = [Hit(self.index.chunks[i], i, fused[i], d, lex) for i, d, lex in scored[:k]]
        return SearchResult(
            hits=hits, query_vector=qv,
            top_dense=max(dense.values(), default=0.0), top_lexical_raw=top_bm25,
            coverage=self.lexical.coverage(query),
        )
