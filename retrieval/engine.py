"""The retrieval engine: keeps the index in step with the corpus and answers questions from it."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from retrieval.abstention import Abstainer
from retrieval.calibration import Calibration
from retrieval.answer import compose, not_covered
from retrieval.chunking import CHUNKER_VERSION, Chunk, chunk_document
from retrieval.documents import (CorpusError, CorpusRead, Document, FileStamp, corpus_warnings, files_unchanged,
                                 load_corpus, read_corpus)
from retrieval.errors import AdvisorError
from retrieval.follow_up import looks_like_follow_up
from retrieval.index_store import IndexDamagedError, IndexStore, LoadedIndex
from retrieval.manifest import Manifest
from retrieval.query_encoder import FOLDER as QUERY_ENCODER_FOLDER
from retrieval.search import HybridRetriever
from retrieval.vocabulary import Answer

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
MAX_CONTEXT_QUESTIONS = 2  # earlier questions of a thread a follow-up is read with
DEFAULT_INDEX_CHECK_SECONDS = 5.0


class QuestionError(AdvisorError, ValueError):
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


def to_stamp(read: CorpusRead, folder: Path) -> dict:
    """What a manifest records of the corpus an index was read from: files, skipped files, documents, and the
    version of the code that read and chunked them (CHUNKER_VERSION)."""
    return {
        "chunker": CHUNKER_VERSION, "stamped_ns": read.stamped_ns,
        "files": [[f.path, f.size, f.mtime_ns, f.ctime_ns, f.digest] for f in read.files],
        "skipped": [list(s) for s in read.skipped],
        "documents": [[d.id, d.title, d.author, d.origin, Path(d.path).relative_to(folder).as_posix()]
                      for d in read.documents],
    }


def from_stamp(stamp: dict, folder: Path) -> list[Document]:
    """The documents of a stamp: their metadata (their text is in the index's chunks)."""
    return [Document(id=i, title=t, author=a, origin=o, path=str(Path(folder) / rel), text="")
            for i, t, a, o, rel in stamp["documents"]]


class Engine:
    """Corpus + index + retriever + answer composer, for one corpus folder.

    A long-running engine follows the index on disk: when another process (`advisor index`,
    `advisor corpus add`) switches `current` to a new generation, the next question notices it (at most
    every `check_seconds`) and a background thread loads it and swaps it in; questions meanwhile, and
    those already in flight, are answered from the index they started with. The engine never rebuilds
    by itself after startup: files edited by hand are indexed by the next `advisor index` (which the
    engine then picks up) or at the next start.
    """

    def __init__(self, corpus_dir: Path, index_dir: Path, embedder, abstainer: Abstainer | None = None,
                 check_seconds: float = DEFAULT_INDEX_CHECK_SECONDS, calibration: Calibration | None = None,
                 query_threads: int = 1):
        """Args:
            embedder: embeds the passages at index build (every core); an embedder with `for_queries` (the
                sentence-transformers one) also exports its ONNX query encoder beside the index then, and
                encodes questions with it.
            check_seconds: how often a running engine looks for a newer index on disk (0: before every question).
            query_threads: CPU threads per question's encoding (1 serves best when other work shares the cores).
        """
        self.corpus_dir = Path(corpus_dir)
        self.store = IndexStore(index_dir)
        self.embedder = embedder
        self.encoder_folder = self.store.folder / QUERY_ENCODER_FOLDER
        for_queries = getattr(embedder, "for_queries", None)
        self.query_embedder = for_queries(self.encoder_folder, query_threads) if for_queries else embedder
        calibration = calibration or Calibration.for_model(embedder.name)
        self.ranker = calibration.ranker
        self.style = calibration.style
        self._uncalibrated = calibration.fallback  # said once, at the first answer
        self.abstainer = abstainer or calibration.abstainer
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._retriever: HybridRetriever | None = None
        self.documents: list[Document] = []  # metadata; their text only when the corpus was read at this start
        self.generation = ""  # the index generation questions are answered from
        self._watch = threading.Lock()  # guards the fields below
        self._checked_at = time.monotonic()
        self._reloader: threading.Thread | None = None
        self._failed_generation = ""

    def calibrated(self) -> Calibration:
        """The ranking, abstention and style answers are made with now."""
        return Calibration(ranker=self.ranker, abstainer=self.abstainer, model=self.embedder.name, style=self.style)

    def use(self, calibration: Calibration) -> None:
        """Answer with this calibration from now on, the loaded index's retriever included."""
        self.ranker, self.abstainer, self.style = calibration.ranker, calibration.abstainer, calibration.style
        if self._retriever is not None:
            self._retriever.ranker = calibration.ranker

    def read_corpus(self) -> tuple[list[Document], list[Chunk], list[str]]:
        documents, chunks, warnings, _ = self.read_corpus_stamped()
        return documents, chunks, warnings

    def read_corpus_stamped(self) -> tuple[list[Document], list[Chunk], list[str], dict]:
        """`read_corpus`, and the stamp of the files read, for `IndexStore.build(corpus=...)`."""
        read = read_corpus(self.corpus_dir)
        chunks = [c for d in read.documents for c in chunk_document(d)]
        return read.documents, chunks, read.warnings, to_stamp(read, self.corpus_dir)

    def ensure_index(self, force: bool = False, progress: Callable[[int, int], None] | None = None) -> IndexStatus:
        """Load the index, rebuilding (incrementally) when the corpus, model or chunker changed.

        When the manifest's stamp shows the corpus files, the model and the code that chunks them all as
        they were at the last build, the index is loaded without reading the corpus; otherwise the corpus
        is read and chunked and its chunks compared with the index's, as before.
        """
        if not force:
            fast = self._load_if_unchanged()
            if fast is not None:
                loaded, documents, warnings = fast
                self._ensure_query_encoder()
                self._install(loaded, documents)
                return IndexStatus(len(loaded.chunks), 0, False, tuple(warnings))
        documents, chunks, warnings, stamp = self.read_corpus_stamped()
        loaded: LoadedIndex | None = None
        if not force:
            manifest = self.store.read_manifest()
            if manifest is not None and manifest.matches(self.embedder.name, chunks):
                loaded = self.store.load()
                if loaded is not None and not loaded.manifest.matches(self.embedder.name, chunks):
                    loaded = None  # another process switched generations in between
                if loaded is not None and loaded.manifest.corpus != stamp:
                    logger.info("The index in %s is current; recording the corpus files' stamp so the next "
                                "start need not read them.", self.store.folder)
                    loaded = self.store.restamp(loaded, stamp) or loaded
        embedded = 0
        rebuilt = loaded is None
        if loaded is None:
            logger.info("Building the index for %d chunks in %s", len(chunks), self.store.folder)
            loaded, embedded = self.store.build(chunks, self.embedder, progress=progress, corpus=stamp)
        self._ensure_query_encoder(verify=force)
        self._install(loaded, documents)
        return IndexStatus(len(chunks), embedded, rebuilt, tuple(warnings))

    def _load_if_unchanged(self) -> tuple[LoadedIndex, list[Document], list[str]] | None:
        """The index, its documents and warnings, if its stamp proves it current without reading the corpus."""
        manifest = self.store.read_manifest()
        if manifest is None or not self._stamp_current(manifest):
            return None
        loaded = self.store.load()
        if loaded is None or (loaded.manifest != manifest and not self._stamp_current(loaded.manifest)):
            return None  # another process switched generations in between: check the slow way
        stamp = loaded.manifest.corpus
        return loaded, from_stamp(stamp, self.corpus_dir), corpus_warnings(self.corpus_dir, stamp["skipped"])

    def _stamp_current(self, manifest: Manifest) -> bool:
        stamp = manifest.corpus
        if not stamp or manifest.model != self.embedder.name or stamp.get("chunker") != CHUNKER_VERSION:
            return False
        try:
            files = [FileStamp(*f) for f in stamp["files"]]
            return files_unchanged(self.corpus_dir, files, stamp["stamped_ns"])
        except (TypeError, KeyError, ValueError):
            return False

    def _ensure_query_encoder(self, verify: bool = False) -> None:
        """Export the query encoder when the folder holds no outcome of exporting this model as it is now (part
        of the build: the first start after a model change pays it once); with `verify` (`advisor index`),
        also when the export there does not load, or none could be made last time."""
        embedder = self.embedder
        if not hasattr(embedder, "export_query_encoder"):
            return
        if embedder.query_encoder_current(self.encoder_folder) and not (verify and self._encoder_unusable()):
            return
        try:
            with self.store.locked():  # one export at a time; a second process finds the first one's
                if verify or not embedder.query_encoder_current(self.encoder_folder):
                    logger.info("Exporting the query encoder of %s to ONNX in %s", embedder.name, self.encoder_folder)
                    embedder.export_query_encoder(self.encoder_folder)
        except OSError as exc:  # a read-only index folder: questions are encoded by sentence-transformers
            logger.warning("Could not write the query encoder in %s (%s).", self.encoder_folder, exc)
        reset = getattr(self.query_embedder, "reset", None)
        if reset is not None:
            reset()

    def _encoder_unusable(self) -> bool:
        from retrieval.query_encoder import EncoderUnavailable, OnnxQueryEncoder

        try:
            OnnxQueryEncoder(self.encoder_folder, threads=1)
        except EncoderUnavailable as exc:
            logger.info("The query encoder in %s is not usable (%s); exporting it again.", self.encoder_folder, exc)
            return True
        return False

    def _install(self, loaded: LoadedIndex, documents: list[Document]) -> None:
        retriever = HybridRetriever(loaded, self.query_embedder, self.ranker)
        with self._lock:  # a reader sees the old index or the new one, never half of each
            # the name last: whoever sees the new generation's name also gets its retriever
            self._retriever, self.documents, self.generation = retriever, documents, loaded.generation

    @property
    def retriever(self) -> HybridRetriever:
        if self._retriever is None:
            self.ensure_index()
        else:
            self._check_for_new_index()
        return self._retriever

    def _check_for_new_index(self) -> None:
        """Start loading a newer generation in the background if `current` moved; never waits for it."""
        with self._watch:
            now = time.monotonic()
            if now - self._checked_at < self.check_seconds or self._reloader is not None:
                return
            self._checked_at = now
            name = self.store.current_name()
            if not name or name in (self.generation, self._failed_generation):
                return
            self._reloader = threading.Thread(target=self._reload_in_background, name="advisor-index-reload",
                                              daemon=True)
            self._reloader.start()

    def _reload_in_background(self) -> None:
        try:
            self.refresh()
        except Exception:  # noqa: BLE001 - a failed reload keeps the loaded index answering
            logger.exception("Loading the new index failed; still answering from generation %s", self.generation)
        finally:
            with self._watch:
                self._reloader = None

    def wait_for_reload(self, timeout: float | None = None) -> None:
        """Wait for a background reload in progress, if any (for tests and orderly shutdown)."""
        reloader = self._reloader
        if reloader is not None:
            reloader.join(timeout)

    def refresh(self) -> bool:
        """Load and install the current generation if it is newer than the one in use.

        Returns:
            True if a new generation was installed.
        """
        try:
            loaded = self.store.load()
        except IndexDamagedError as exc:
            self._failed_generation = self.store.current_name() or ""
            logger.warning("Not switching index: %s Still answering from generation %s.", exc, self.generation)
            return False
        if loaded is None or loaded.generation == self.generation:
            return False
        if loaded.manifest.model != self.embedder.name:
            self._failed_generation = loaded.generation
            logger.warning("Not switching to index generation %s: it was built with the model %s, this process "
                           "uses %s.", loaded.generation, loaded.manifest.model, self.embedder.name)
            return False
        self._install(loaded, self._documents_of(loaded))
        self._failed_generation = ""
        logger.info("Switched to index generation %s (%d passages from %d documents).", loaded.generation,
                    len(loaded.chunks), len(self.documents))
        return True

    def _documents_of(self, loaded: LoadedIndex) -> list[Document]:
        """The documents an index was built from: the corpus's, or their id and title when gone since."""
        if loaded.manifest.corpus:  # recorded at build time: no need to read the corpus again
            try:
                return from_stamp(loaded.manifest.corpus, self.corpus_dir)
            except (TypeError, KeyError, ValueError):
                pass
        try:
            on_disk = {d.id: d for d in load_corpus(self.corpus_dir)[0]}
        except CorpusError:
            on_disk = {}
        documents: dict[str, Document] = {}
        for chunk in loaded.chunks:
            if chunk.doc_id not in documents:
                doc = on_disk.get(chunk.doc_id)
                documents[chunk.doc_id] = doc if doc is not None and doc.title == chunk.doc_title \
                    else Document(id=chunk.doc_id, title=chunk.doc_title, text="", path="")
        return list(documents.values())

    def titles(self) -> list[str]:
        return [d.title for d in self.documents]

    def answer(self, text: str, context: Sequence[str] = (), k: int = 5) -> Answer:
        """Answer one question; `context` holds earlier questions of the same thread, oldest first.

        A follow-up ("and at Series B?", "what about the interviews?") leans on the thread's last one or
        two questions: each reading is searched, and the most confident one wins. A question that stands
        on its own ("how do I boil pasta?") is read alone.
        """
        question = check_question(text)
        retriever = self.retriever
        if self._uncalibrated:
            self._uncalibrated = False
            logger.warning("No calibration for the model %s: ranking with the default weights and declining only "
                           "clearly unrelated questions. Run `advisor calibrate --questions FILE` to fit one.",
                           self.embedder.name)
        earlier = [c for c in context if c.strip()]
        if not looks_like_follow_up(question):
            earlier = []  # a question that stands on its own is not read with the thread's topic
        result = retriever.search(question, k=k)
        confidence = self.abstainer.confidence(result)
        for n in range(1, min(len(earlier), MAX_CONTEXT_QUESTIONS) + 1):
            with_context = retriever.search("\n".join([*earlier[-n:], question]), k=k)
            if (score := self.abstainer.confidence(with_context)) > confidence:
                result, confidence = with_context, score
        if self.abstainer.should_abstain(result):
            # near the documents (not below the floor of what they are about at all): say what is nearest
            nearby = bool(result.hits) and result.top_dense >= self.abstainer.min_dense
            return not_covered(question, self.titles(), hits=tuple(result.hits), nearby=nearby)
        return compose(question, result, retriever.index, retriever.lexical.idf, self.style)
