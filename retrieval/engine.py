"""The retrieval engine: keeps the index in step with the corpus and answers questions from it."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from retrieval.abstention import Abstainer
from retrieval.answer import Answer, compose, not_covered
from retrieval.chunking import Chunk, chunk_document
from retrieval.documents import Document, load_corpus
from retrieval.index_store import IndexStore, LoadedIndex
from retrieval.search import HybridRetriever

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000


class QuestionError(ValueError):
    """The question itself cannot be answered as asked (empty, too long)."""


@dataclass(frozen=True)
class IndexStatus:
    """What `ensure_index` did."""

    chunks: int
    embedded: int
    rebuilt: bool
    warnings: tuple[str, ...]


def check_question(text: str, limit: int = MAX_QUESTION_CHARS) -> str:
    """The question stripped, or a QuestionError that says what to do."""
    text = (text or "").strip()
    if not text:
        raise QuestionError("Your question is empty; ask something, e.g. \"does a Series A startup hire ML PMs?\"")
    if len(text) > limit:
        raise QuestionError(
            f"Your question is {len(text):,} characters long; please keep it under {limit:,} "
            "characters (one question at a time)."
        )
    return text


class Engine:
    """Corpus + index + retriever + answer composer, for one corpus folder."""

    def __init__(self, corpus_dir: Path, index_dir: Path, embedder, abstainer: Abstainer | None = None):
        self.corpus_dir = Path(corpus_dir)
        self.store = IndexStore(index_dir)
        self.embedder = embedder
        self.abstainer = abstainer or Abstainer.load()
        self._lock = threading.Lock()
        self._retriever: HybridRetriever | None = None
        self.documents: list[Document] = []

    def read_corpus(self) -> tuple[list[Document], list[Chunk], list[str]]:
        documents, warnings = load_corpus(self.corpus_dir)
        chunks = [c for d in documents for c in chunk_document(d)]
        return documents, chunks, warnings

    def ensure_index(self, force: bool = False, progress: Callable[[int, int], None] | None = None) -> IndexStatus:
        """Load the index, rebuilding (incrementally) when the corpus, model or chunker changed."""
        documents, chunks, warnings = self.read_corpus()
        loaded: LoadedIndex | None = None
        if not force:
            manifest = self.store.read_manifest()
            if manifest is not None and manifest.matches(self.embedder.name, chunks):
                loaded = self.store.load()
        embedded = 0
        rebuilt = loaded is None
        if loaded is None:
            logger.info("Building the index for %d chunks in %s", len(chunks), self.store.folder)
            loaded, embedded = self.store.build(chunks, self.embedder, progress=progress)
        self._install(loaded, documents)
        return IndexStatus(len(chunks), embedded, rebuilt, tuple(warnings))

    def _install(self, loaded: LoadedIndex, documents: list[Document]) -> None:
        retriever = HybridRetriever(loaded, self.embedder)
        with self._lock:  # a reader sees the old index or the new one, never half of each
            self._retriever, self.documents = retriever, documents

    @property
    def retriever(self) -> HybridRetriever:
        if self._retriever is None:
            self.ensure_index()
        return self._retriever

    def titles(self) -> list[str]:
        return [d.title for d in self.documents]

    def answer(self, text: str, context: str = "", k: int = 5) -> Answer:
        """Answer one question; `context` is an earlier question of the same thread, for follow-ups."""
        question = check_question(text)
        retriever = self.retriever
        result = retriever.search(question, k=k)
        if context:
            # a follow-up ("and at Series B?") leans on the thread's earlier question; a new topic doesn't
            with_context = retriever.search(f"{context}\n{question}", k=k)
            if self.abstainer.confidence(with_context) > self.abstainer.confidence(result):
                result = with_context
        if self.abstainer.should_abstain(result):
            return not_covered(question, self.titles(), hits=tuple(result.hits))
        return compose(question, result, retriever.index)
