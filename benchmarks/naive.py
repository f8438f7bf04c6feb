"""A naive reference RAG pipeline, for the benchmark to compare the product against.

Fixed 1,000-character chunks with 200 characters of overlap over the raw document files, the same
embedding model, an exact FAISS inner-product index (IndexFlatIP), top-k=5. No cleaning, no
structure, no lexical signal, no sentence extraction, no abstention: the "answer" a user would see
is the top passage itself.

Used by benchmarks/bench_retrieval.py; it only calls public project APIs (the embedder protocol,
`corpus_files`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

CHUNK_CHARS = 1000
OVERLAP_CHARS = 200
TOP_K = 5


@dataclass(frozen=True)
class NaiveChunk:
    source: str  # file name of the document
    start: int  # character offset in the raw file
    text: str


def fixed_chunks(text: str, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> list[tuple[int, str]]:
    """(offset, text) windows of `size` characters, each starting `size - overlap` after the last."""
    if not text:
        return []
    step = size - overlap
    out = []
    for start in range(0, len(text), step):
        out.append((start, text[start:start + size]))
        if start + size >= len(text):
            break
    return out


def read_raw_documents(folder: Path) -> list[tuple[str, str]]:
    """(file name, raw text) of every corpus file, exactly as on disk (undecodable files skipped)."""
    from retrieval.documents import corpus_files

    docs = []
    for path in corpus_files(Path(folder)):
        try:
            docs.append((path.name, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return docs


class NaivePipeline:
    """Fixed-size chunks, one vector each, FAISS flat inner product, top-k."""

    def __init__(self, embedder, chunk_chars: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS, k: int = TOP_K):
        self.embedder = embedder
        self.chunk_chars = chunk_chars
        self.overlap = overlap
        self.k = k
        self.chunks: list[NaiveChunk] = []
        self.index = None
        self.vectors: np.ndarray | None = None

    def build(self, documents: Sequence[tuple[str, str]], batch_size: int = 64, vector_embedder=None) -> dict:
        """Chunk and embed the documents; `vector_embedder` (if given) embeds the passages instead of
        the query model (the benchmark passes generated vectors for large corpora). Returns timings."""
        import faiss

        t0 = time.perf_counter()
        self.chunks = [NaiveChunk(name, start, text) for name, raw in documents
                       for start, text in fixed_chunks(raw, self.chunk_chars, self.overlap)]
        t1 = time.perf_counter()
        embedder = vector_embedder or self.embedder
        dim = self.embedder.dim
        parts = [embedder.embed([c.text for c in self.chunks[i:i + batch_size]])
                 for i in range(0, len(self.chunks), batch_size)]
        self.vectors = np.ascontiguousarray(np.vstack(parts) if parts else np.zeros((0, dim)), dtype=np.float32)
        t2 = time.perf_counter()
        self.index = faiss.IndexFlatIP(dim)
        if len(self.vectors):
            self.index.add(self.vectors)
        t3 = time.perf_counter()
        return {"chunks": len(self.chunks), "chunk_s": t1 - t0, "embed_s": t2 - t1, "faiss_s": t3 - t2,
                "total_s": t3 - t0}

    def search(self, query: str, k: int | None = None) -> list[tuple[float, NaiveChunk]]:
        qv = self.embedder.embed([query])
        scores, ids = self.index.search(np.ascontiguousarray(qv, dtype=np.float32), min(k or self.k, len(self.chunks)))
        return [(float(s), self.chunks[int(i)]) for s, i in zip(scores[0], ids[0]) if i >= 0]

    def answer(self, qid: str, query: str) -> dict:
        """A results line in the shape of shared/eval/score.py: the top passage is what is shown."""
        hits = self.search(query)
        top = hits[0][1] if hits else None
        return {
            "id": qid,
            "abstained": top is None,
            "hits": [{"text": c.text, "source": c.source} for _, c in hits],
            # the passage is the answer; citing it too would count its characters twice
            "answer": {"text": top.text if top else "", "citations": []},
        }
