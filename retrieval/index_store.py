"""The on-disk index: FAISS vectors, chunk records and a manifest, written atomically, reused incrementally."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from retrieval.chunking import CHUNKER_VERSION, Chunk, content_hash, split_sentences

logger = logging.getLogger(__name__)

FORMAT_VERSION = 4
CURRENT = "current"
READERS = ".readers"  # in each generation: readers hold a shared lock on it, pruning needs an exclusive one
_FILES = ("chunks.jsonl", "vectors.npy", "index.faiss")


class IndexDamagedError(Exception):
    """The index on disk cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Manifest:
    """What an index was built from: enough to tell whether it is stale."""

    model: str
    dim: int
    chunker_version: str
    chunk_hashes: tuple[str, ...]
    files: dict
    vector_hashes: tuple[str, ...]  # content hash of the text behind each row of vectors.npy
    created_at: float
    format_version: int = FORMAT_VERSION

    def matches(self, model: str, chunks: Sequence[Chunk]) -> bool:
        return (
            self.format_version == FORMAT_VERSION
            and self.model == model
            and self.chunker_version == CHUNKER_VERSION
            and self.chunk_hashes == tuple(c.record_hash for c in chunks)
        )

    def to_json(self) -> str:
        data = dict(self.__dict__, chunk_hashes=list(self.chunk_hashes), vector_hashes=list(self.vector_hashes))
        return json.dumps(data, indent=1)


@dataclass
class LoadedIndex:
    """An index in memory: chunks, their FAISS index, and sentence vectors for answer extraction."""

    manifest: Manifest
    chunks: list[Chunk]
    faiss_index: object
    vectors: np.ndarray  # every embedded text: chunks, then their windows, then their sentences
    sentence_rows: list[tuple[int, int]]  # per chunk, its sentences' rows in `vectors`
    sentences: list[list[str]]
    generation: str

    def chunk_vectors(self) -> np.ndarray:
        return self.vectors[: len(self.chunks)]

    def window_vectors(self) -> np.ndarray:
        return self.vectors[len(self.chunks): 2 * len(self.chunks)]


def window_texts(chunks: Sequence[Chunk]) -> list[str]:
    """Each chunk with its neighbours in the same document: the context its own words may lack."""
    out = []
    for i, chunk in enumerate(chunks):
        before = chunks[i - 1].text if i > 0 and chunks[i - 1].doc_id == chunk.doc_id else ""
        after = chunks[i + 1].text if i + 1 < len(chunks) and chunks[i + 1].doc_id == chunk.doc_id else ""
        out.append("\n".join(t for t in (chunk.section, before, chunk.text, after) if t))
    return out


def _file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def make_faiss_index(vectors: np.ndarray):
    """Exact inner-product search (vectors are normalised, so this is cosine)."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


class IndexStore:
    """One index folder: generations written beside each other, `current` pointing at the good one."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._depth = 0  # how deep this process is inside `locked()`: the flock is taken once
        self._thread_lock = threading.RLock()

    @contextlib.contextmanager
    def locked(self):
        """Hold the writers' lock (reentrant within this instance): builds and corpus changes go one at a time."""
        with self._thread_lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / ".lock", "w") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def current_name(self) -> str | None:
        """The generation `current` points at (one readlink: cheap enough to call before every question)."""
        try:
            return os.readlink(self.folder / CURRENT)
        except OSError:
            return None

    def current_generation(self) -> Path | None:
        link = self.folder / CURRENT
        if not link.is_symlink() and not link.exists():
            return None
        return self.folder / os.readlink(link) if link.is_symlink() else link

    @contextlib.contextmanager
    def _reading(self):
        """The current generation, held against pruning by another process until the block ends."""
        for _ in range(5):
            gen = self.current_generation()
            if gen is None:
                yield None
                return
            try:
                handle = open(gen / READERS, "rb")
            except FileNotFoundError:
                if gen.is_dir() and (gen / "manifest.json").exists():
                    yield gen  # built before reader locks existed: nothing to hold
                    return
                continue  # pruned between reading `current` and opening: read `current` again
            with handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                if (gen / READERS).exists():  # not renamed away for pruning while we waited
                    yield gen
                    return
        raise self._damaged("its current generation keeps disappearing while being read")

    def read_manifest(self) -> Manifest | None:
        """The current manifest, or None if there is no index yet."""
        with self._reading() as gen:
            return self._manifest_at(gen)

    def _manifest_at(self, gen: Path | None) -> Manifest | None:
        if gen is None:
            return None
        try:
            data = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
            if data.get("format_version") != FORMAT_VERSION:
                logger.info("The index in %s has an older format; it will be rebuilt.", self.folder)
                return None
            data["chunk_hashes"] = tuple(data["chunk_hashes"])
            data["vector_hashes"] = tuple(data["vector_hashes"])
            return Manifest(**data)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise self._damaged(f"its manifest cannot be read ({type(exc).__name__})") from None

    def _damaged(self, why: str) -> IndexDamagedError:
        return IndexDamagedError(
            f"The index in {self.folder} is damaged: {why}. Run `advisor index` to rebuild it."
        )

    def load(self) -> LoadedIndex | None:
        """Load and verify the current index; None if there is none.

        Raises:
            IndexDamagedError: the files are missing, truncated or do not match the manifest.
        """
        # manifest and files from one generation, which no other process may prune meanwhile
        with self._reading() as gen:
            manifest = self._manifest_at(gen)
            if manifest is None:
                return None
            for name in _FILES:
                path = gen / name
                if not path.exists():
                    raise self._damaged(f"{name} is missing")
                if manifest.files.get(name) != _file_digest(path):
                    raise self._damaged(f"{name} does not match its manifest (half-written or changed)")
            try:
                import faiss

                records = [json.loads(line) for line in (gen / "chunks.jsonl").read_text("utf-8").splitlines()]
                vectors = np.load(gen / "vectors.npy", allow_pickle=False)
                faiss_index = faiss.read_index(str(gen / "index.faiss"))
            except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged index
                raise self._damaged(f"it cannot be read ({type(exc).__name__})") from None
        chunks = [Chunk(**{k: r[k] for k in ("id", "doc_id", "doc_title", "section", "text")}) for r in records]
        if faiss_index.ntotal != len(chunks) or len(chunks) != len(manifest.chunk_hashes) \
                or vectors.shape[1:] != (manifest.dim,) or len(vectors) != len(manifest.vector_hashes):
            raise self._damaged("its parts disagree on the number of chunks")
        return LoadedIndex(
            manifest=manifest, chunks=chunks, faiss_index=faiss_index, vectors=vectors,
            sentence_rows=[tuple(r["sentence_rows"]) for r in records],
            sentences=[r["sentences"] for r in records], generation=gen.name,
        )

    def _reusable_vectors(self, model: str) -> dict[str, np.ndarray]:
        """Vectors of the current index by the content hash of their text, when it used the same model."""
        try:
            loaded = self.load()
        except IndexDamagedError as exc:
            logger.warning("Not reusing the old index: %s", exc)
            return {}
        if loaded is None or loaded.manifest.model != model:
            return {}
        return dict(zip(loaded.manifest.vector_hashes, loaded.vectors))

    def build(
        self,
        chunks: Sequence[Chunk],
        embedder,
        progress: Callable[[int, int], None] | None = None,
        batch_size: int = 64,
    ) -> tuple[LoadedIndex, int]:
        """Embed what changed, write a new generation and switch `current` to it atomically.

        Returns:
            The loaded index and how many texts were embedded (the rest were reused).
        """
        with self.locked():
            cache = self._reusable_vectors(embedder.name)
            sentences = [split_sentences(c.text) for c in chunks]
            texts = [c.embed_text for c in chunks] + window_texts(chunks)
            sentence_rows = []
            for sents in sentences:
                sentence_rows.append((len(texts), len(texts) + len(sents)))
                texts.extend(sents)
            hashes = [content_hash(t) for t in texts]
            missing = sorted({h: i for i, h in reversed(list(enumerate(hashes))) if h not in cache}.items(),
                             key=lambda kv: kv[1])
            done = 0
            if progress:
                progress(0, len(missing))
            for start in range(0, len(missing), batch_size):
                batch = missing[start:start + batch_size]
                vectors = embedder.embed([texts[i] for _, i in batch])
                for (h, _), vector in zip(batch, vectors):
                    cache[h] = vector
                done += len(batch)
                if progress:
                    progress(done, len(missing))
            # the dimension comes from the vectors when there are any: removing a document needs no model
            matrix = np.stack([cache[h] for h in hashes]).astype(np.float32) if hashes \
                else np.zeros((0, embedder.dim), dtype=np.float32)
            dim = matrix.shape[1]
            loaded = self._write(chunks, matrix, hashes, sentences, sentence_rows, embedder.name, dim)
            return loaded, len(missing)

    def _write(self, chunks, matrix, hashes, sentences, sentence_rows, model, dim) -> LoadedIndex:
        import faiss

        gen_name = f"gen-{time.time_ns()}"
        tmp = self.folder / f".{gen_name}.tmp"
        tmp.mkdir(parents=True)
        try:
            records = "\n".join(
                json.dumps({"id": c.id, "doc_id": c.doc_id, "doc_title": c.doc_title, "section": c.section,
                            "text": c.text, "hash": c.content_hash, "sentences": s, "sentence_rows": r},
                           ensure_ascii=False)
                for c, s, r in zip(chunks, sentences, sentence_rows)
            )
            _fsync_write(tmp / "chunks.jsonl", records.encode("utf-8"))
            with open(tmp / "vectors.npy", "wb") as f:
                np.save(f, matrix, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            faiss_index = make_faiss_index(matrix[: len(chunks)].reshape(len(chunks), dim))
            faiss.write_index(faiss_index, str(tmp / "index.faiss"))
            manifest = Manifest(
                model=model, dim=dim, chunker_version=CHUNKER_VERSION,
                chunk_hashes=tuple(c.record_hash for c in chunks), vector_hashes=tuple(hashes),
                files={name: _file_digest(tmp / name) for name in _FILES}, created_at=time.time(),
            )
            _fsync_write(tmp / "manifest.json", manifest.to_json().encode("utf-8"))
            (tmp / READERS).touch()
            gen = self.folder / gen_name
            os.rename(tmp, gen)
            link_tmp = self.folder / f".{CURRENT}.{gen_name}"
            os.symlink(gen_name, link_tmp)
            os.replace(link_tmp, self.folder / CURRENT)  # the atomic switch
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._remove_old_generations(keep=gen_name)
        return LoadedIndex(manifest=manifest, chunks=list(chunks), faiss_index=faiss_index, vectors=matrix,
                           sentence_rows=list(sentence_rows), sentences=sentences, generation=gen_name)

    def _remove_old_generations(self, keep: str) -> None:
        """Delete superseded generations, except one another process is still loading (left for next time)."""
        for path in self.folder.iterdir():
            if path.name == keep:
                continue
            if path.name.startswith((".gen-", ".trash-")):  # a crashed build's or pruning's leftovers
                shutil.rmtree(path, ignore_errors=True)
            elif path.name.startswith("gen-"):
                self._prune(path)

    def _prune(self, gen: Path) -> None:
        try:
            handle = open(gen / READERS, "rb")
        except FileNotFoundError:
            handle = None  # built before reader locks existed
        except OSError:
            return
        try:
            if handle is not None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    logger.info("Generation %s is being read by another process; removing it later.", gen.name)
                    return
            trash = self.folder / f".trash-{gen.name}"
            os.rename(gen, trash)  # readers waiting on the lock see it gone and read `current` again
        except OSError:
            return
        finally:
            if handle is not None:
                handle.close()
        shutil.rmtree(trash, ignore_errors=True)
