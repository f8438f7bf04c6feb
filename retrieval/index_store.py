"""Build and load an index: embed what changed, write a generation (FAISS, chunks, BM25, manifest), read it back
verified."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from retrieval.chunking import Chunk, content_hash
from retrieval.embedded_texts import embedding_texts, sentences_of
from retrieval.generations import MANIFEST, Generations, IndexDamagedError
from retrieval.integrity import check_files, entries, load_npy_verified, read_verified
from retrieval.lexical import LexicalIndex
from retrieval.manifest import FORMAT_VERSION, Manifest

__all__ = ["IndexDamagedError", "IndexStore", "LoadedIndex", "make_faiss_index"]

logger = logging.getLogger(__name__)

BM25_PREFIX = "bm25."  # LexicalIndex's files, beside the others
_CHUNK_FIELDS = ("id", "doc_id", "doc_title", "section", "text", "kind")
_REQUIRED = ("chunks.json", "vectors.npy", "index.faiss", "vector_hashes.npy")


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
    lexical: LexicalIndex | None = None  # BM25 over the chunks' embed texts, as saved with them

    def chunk_vectors(self) -> np.ndarray:
        return self.vectors[: len(self.chunks)]

    def window_vectors(self) -> np.ndarray:
        return self.vectors[len(self.chunks): 2 * len(self.chunks)]


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
        self.generations = Generations(self.folder)
        self._told_format = ""

    def locked(self):
        """Hold the writers' lock (reentrant): builds, corpus changes and the query encoder's export, one at a time."""
        return self.generations.locked()

    def current_name(self) -> str | None:
        return self.generations.current_name()

    def current_generation(self) -> Path | None:
        return self.generations.current()

    def read_manifest(self) -> Manifest | None:
        """The current manifest, or None if there is no index yet (or one of another format, to be rebuilt)."""
        with self.generations.reading() as gen:
            return self._manifest_at(gen)

    def _manifest_at(self, gen: Path | None) -> Manifest | None:
        data = self._manifest_data(gen)
        if data is None:
            return None
        if data.get("format_version") != FORMAT_VERSION:
            if self._told_format != gen.name:  # once, though a start reads the manifest more than once
                self._told_format = gen.name
                logger.info("The index in %s has another format (%s, now %s); it will be rebuilt, reusing its "
                            "vectors.", self.folder, data.get("format_version"), FORMAT_VERSION)
            return None
        try:
            return Manifest.from_data(data)
        except (TypeError, KeyError) as exc:
            raise self.generations.damaged(f"its manifest cannot be read ({type(exc).__name__})") from None

    def _manifest_data(self, gen: Path | None) -> dict | None:
        if gen is None:
            return None
        try:
            data = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return data
        except (OSError, ValueError) as exc:
            raise self.generations.damaged(f"its manifest cannot be read ({type(exc).__name__})") from None

    def load(self) -> LoadedIndex | None:
        """Load and verify the current index; None if there is none.

        Every data file is checked against the size and CRC-32 in the manifest, on the very bytes that are
        parsed (see `retrieval.integrity`).

        Raises:
            IndexDamagedError: the files are missing, truncated or do not match the manifest.
        """
        damaged = self.generations.damaged
        # manifest and files from one generation, which no other process may prune meanwhile
        with self.generations.reading() as gen:
            manifest = self._manifest_at(gen)
            if manifest is None:
                return None
            files = manifest.files
            for name in _REQUIRED:
                if name not in files:
                    raise damaged(f"its manifest lists no {name}")
            for name, expected in files.items():
                if not isinstance(expected, list) or len(expected) != 2 or "/" in name or name.startswith("."):
                    raise damaged(f"its manifest lists {name!r} oddly")
                path = gen / name
                if not path.is_file():
                    raise damaged(f"{name} is missing")
                if path.stat().st_size != expected[0]:
                    raise damaged(f"{name} does not match its manifest (truncated or changed)")
            try:
                import faiss

                columns = json.loads(read_verified(gen / "chunks.json", files["chunks.json"]))
                vectors = load_npy_verified(gen / "vectors.npy", files["vectors.npy"])
                faiss_index = faiss.deserialize_index(
                    np.frombuffer(read_verified(gen / "index.faiss", files["index.faiss"]), dtype=np.uint8))
                bm25_files = {name: entry for name, entry in files.items() if name.startswith(BM25_PREFIX)}
                check_files(gen, bm25_files)  # block by block: LexicalIndex reads them itself
                lexical = LexicalIndex.load(gen, BM25_PREFIX) if bm25_files else None
                chunks = [Chunk(*row) for row in zip(*(columns[k] for k in _CHUNK_FIELDS), strict=True)]
                sentences, sentence_rows = sentences_of(columns["sentences"], columns["sentence_counts"], len(chunks))
            except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged index
                mismatch = "does not match its manifest" in str(exc)
                raise damaged(str(exc) if mismatch else f"it cannot be read ({type(exc).__name__})") from None
        if faiss_index.ntotal != len(chunks) or len(chunks) != len(manifest.chunk_hashes) \
                or vectors.ndim != 2 or vectors.shape[1:] != (manifest.dim,) \
                or len(vectors) != 2 * len(chunks) + sum(len(s) for s in sentences) \
                or (lexical is not None and lexical.size != len(chunks)):
            raise damaged("its parts disagree on the number of chunks")
        return LoadedIndex(
            manifest=manifest, chunks=chunks, faiss_index=faiss_index, vectors=vectors,
            sentence_rows=sentence_rows, sentences=sentences, generation=gen.name, lexical=lexical,
        )

    def _reusable_vectors(self, model: str) -> dict[str, np.ndarray]:
        """Vectors of the current index (of any format that lists them) by the content hash of their text, when
        it used the same model: what makes a rebuild incremental."""
        try:
            with self.generations.reading() as gen:
                data = self._manifest_data(gen)
                if data is None or data.get("model") != model or "vector_hashes.npy" not in data.get("files", {}):
                    return {}
                files = data["files"]
                check_files(gen, files, size_only=("vectors.npy", "vector_hashes.npy"))
                hashes = load_npy_verified(gen / "vector_hashes.npy", files["vector_hashes.npy"])
                vectors = load_npy_verified(gen / "vectors.npy", files["vectors.npy"])
        except (IndexDamagedError, OSError, ValueError, TypeError, KeyError) as exc:
            logger.warning("Not reusing the old index: %s", exc)
            return {}
        if hashes.ndim != 2 or hashes.shape[1:] != (16,) or len(hashes) != len(vectors):
            logger.warning("Not reusing the old index in %s: its vectors and their hashes disagree.", self.folder)
            return {}
        text = hashes.tobytes().hex()
        return dict(zip((text[i:i + 32] for i in range(0, len(text), 32)), vectors))

    def build(
        self,
        chunks: Sequence[Chunk],
        embedder,
        progress: Callable[[int, int], None] | None = None,
        batch_size: int = 64,
        corpus: dict | None = None,
    ) -> tuple[LoadedIndex, int]:
        """Embed what changed, write a new generation and switch `current` to it atomically.

        Args:
            corpus: a stamp of the corpus files the chunks come from, kept in the manifest so that the next
                start can tell the index is current without reading and chunking the corpus again.

        Returns:
            The loaded index and how many texts were embedded (the rest were reused).
        """
        with self.locked():
            cache = self._reusable_vectors(embedder.name)
            texts, sentences, sentence_rows = embedding_texts(chunks)
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
            loaded = self._write(chunks, matrix, hashes, sentences, sentence_rows, embedder.name, corpus)
            return loaded, len(missing)

    def _write(self, chunks, matrix, hashes, sentences, sentence_rows, model, corpus) -> LoadedIndex:
        import faiss

        tmp = self.generations.new()
        try:
            columns = {k: [getattr(c, k) for c in chunks] for k in _CHUNK_FIELDS}
            columns["sentence_counts"] = [len(s) for s in sentences]
            columns["sentences"] = [x for s in sentences for x in s]
            (tmp / "chunks.json").write_bytes(json.dumps(columns, ensure_ascii=False).encode("utf-8"))
            np.save(tmp / "vectors.npy", matrix, allow_pickle=False)
            # raw 16-byte digests, one row each (not dtype "S16": numpy drops a digest's trailing zero bytes)
            np.save(tmp / "vector_hashes.npy",
                    np.frombuffer(bytes.fromhex("".join(hashes)), dtype=np.uint8).reshape(len(hashes), 16),
                    allow_pickle=False)
            faiss_index = make_faiss_index(matrix[: len(chunks)].reshape(len(chunks), matrix.shape[1]))
            faiss.write_index(faiss_index, str(tmp / "index.faiss"))
            lexical = LexicalIndex([c.embed_text for c in chunks])
            lexical.save(tmp, BM25_PREFIX)
            manifest = Manifest(
                model=model, dim=matrix.shape[1], chunk_hashes=tuple(c.record_hash for c in chunks),
                created_at=time.time(), corpus=corpus,
                files=entries(tmp, sorted(p.name for p in tmp.iterdir() if p.is_file())),
            )
            gen = self.generations.publish(tmp, manifest.to_json().encode("utf-8"))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return LoadedIndex(manifest=manifest, chunks=list(chunks), faiss_index=faiss_index, vectors=matrix,
                           sentence_rows=list(sentence_rows), sentences=sentences, generation=gen.name,
                           lexical=lexical)

    def restamp(self, loaded: LoadedIndex, corpus: dict) -> LoadedIndex | None:
        """Record a new corpus stamp for an index found current the slow way, so the next start is fast.

        The new generation hard-links the data files of `loaded` (nothing is rewritten or re-embedded)
        and differs only in its manifest. None when `current` moved meanwhile or links are not possible.
        """
        tmp: Path | None = None
        try:
            with self.locked():  # may fail too: an index folder mounted read-only is used as it is
                if self.current_name() != loaded.generation:
                    return None
                old = self.folder / loaded.generation
                manifest = Manifest(**dict(loaded.manifest.__dict__, corpus=corpus, created_at=time.time()))
                tmp = self.generations.new()
                for name in manifest.files:
                    os.link(old / name, tmp / name)
                gen = self.generations.publish(tmp, manifest.to_json().encode("utf-8"))
        except OSError as exc:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            logger.info("Could not record the corpus stamp in %s (%s); the next start reads the corpus again.",
                        self.folder, exc)
            return None
        return LoadedIndex(**dict(loaded.__dict__, manifest=manifest, generation=gen.name))
