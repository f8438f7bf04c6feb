"""The on-disk index: FAISS vectors, chunk records, BM25 and a manifest, written atomically, reused incrementally."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from retrieval import chunking, documents
from retrieval.chunking import CHUNKER_VERSION, Chunk, content_hash, split_sentences
from retrieval.lexical import LexicalIndex

logger = logging.getLogger(__name__)

# 5: columnar chunks.json, vector hashes in vector_hashes.npy, BM25 saved in bm25/, (size, CRC-32) per file,
# and a stamp of the corpus files the index was built from. 6: each chunk's kind (a table row's window is itself).
FORMAT_VERSION = 6
_REUSABLE_FORMATS = (5, 6)  # their vectors are found by vector_hashes.npy; format 4's by its manifest
CURRENT = "current"
READERS = ".readers"  # in each generation: readers hold a shared lock on it, pruning needs an exclusive one
BM25_PREFIX = "bm25."  # LexicalIndex's files, beside the others
_CHUNK_FIELDS = ("id", "doc_id", "doc_title", "section", "text", "kind")
_BLOCK = 1 << 24


class IndexDamagedError(Exception):
    """The index on disk cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Manifest:
    """What an index was built from: enough to tell whether it is stale."""

    model: str
    dim: int
    chunker_version: str
    chunk_hashes: tuple[str, ...]
    files: dict  # every data file of the generation: [size in bytes, CRC-32]
    created_at: float
    corpus: dict | None = None  # the corpus files the chunks were read from (Engine's stamp), when known
    format_version: int = FORMAT_VERSION

    def matches(self, model: str, chunks: Sequence[Chunk]) -> bool:
        return (
            self.format_version == FORMAT_VERSION
            and self.model == model
            and self.chunker_version == CHUNKER_VERSION
            and self.chunk_hashes == tuple(c.record_hash for c in chunks)
        )

    def to_json(self) -> str:
        return json.dumps(dict(self.__dict__, chunk_hashes=list(self.chunk_hashes)), ensure_ascii=False)


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


def window_texts(chunks: Sequence[Chunk]) -> list[str]:
    """Each chunk with its neighbours in the same document: the context its own words may lack.

    A table row is the exception: it already carries its header, and the rows beside it are other facts
    ("Customer: ..." beside "Technical depth: ..."), which would only blur what it says.
    """
    out = []
    for i, chunk in enumerate(chunks):
        if chunk.kind == "table":
            out.append("\n".join(t for t in (chunk.section, chunk.text) if t))
            continue
        before = chunks[i - 1].text if i > 0 and chunks[i - 1].doc_id == chunk.doc_id else ""
        after = chunks[i + 1].text if i + 1 < len(chunks) and chunks[i + 1].doc_id == chunk.doc_id else ""
        out.append("\n".join(t for t in (chunk.section, before, chunk.text, after) if t))
    return out


@functools.cache
def reader_version() -> str:
    """Digest of the code that turns corpus files into chunks: an edit to it makes file stamps prove nothing."""
    digest = hashlib.blake2b(CHUNKER_VERSION.encode(), digest_size=16)
    for module in (documents, chunking):
        try:
            digest.update(Path(module.__file__).read_bytes())
        except (OSError, TypeError):
            digest.update(b"?")
    return digest.hexdigest()


def _file_crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            crc = zlib.crc32(block, crc)
    return crc


def _data_files(gen: Path) -> list[str]:
    return sorted(p.name for p in gen.iterdir() if p.is_file() and p.name not in ("manifest.json", READERS))


def _read_verified(path: Path, expected: list) -> bytes:
    """The bytes of a file, or ValueError when they are not the ones the manifest recorded."""
    data = path.read_bytes()
    if [len(data), zlib.crc32(data)] != list(expected):
        raise ValueError(f"{path.name} does not match its manifest")
    return data


def _load_npy_verified(path: Path, expected: list) -> np.ndarray:
    """np.load that checks size and CRC-32 on the bytes it reads (one pass, no second copy)."""
    with open(path, "rb") as f:
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(np.lib.format.read_magic(f))
        if read_header is None:
            raise ValueError(f"{path.name} has an unknown .npy version")
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
        if fortran or dtype.hasobject or os.fstat(f.fileno()).st_size != offset + dtype.itemsize * int(np.prod(shape)):
            raise ValueError(f"{path.name} does not match its manifest")
        f.seek(0)
        crc = zlib.crc32(f.read(offset))
        array = np.fromfile(f, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
    crc = zlib.crc32(memoryview(array).cast("B") if array.size else b"", crc)
    if [offset + array.nbytes, crc] != list(expected):
        raise ValueError(f"{path.name} does not match its manifest")
    return array


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def embedding_texts(chunks: Sequence[Chunk]) -> tuple[list[str], list[list[str]], list[tuple[int, int]]]:
    """Every text the index embeds, in row order (each chunk, then each chunk's context window, then each
    chunk's sentences); the sentences per chunk; and each chunk's sentence rows."""
    sentences = [split_sentences(c.text) for c in chunks]
    texts = [c.embed_text for c in chunks] + window_texts(chunks)
    sentence_rows = []
    for sents in sentences:
        sentence_rows.append((len(texts), len(texts) + len(sents)))
        texts.extend(sents)
    return texts, sentences, sentence_rows


def _sentences_of(columns: dict, n: int) -> tuple[list[list[str]], list[tuple[int, int]]]:
    """Each chunk's sentences and their rows in `vectors` (after the n chunk rows and the n window rows)."""
    flat, counts = columns["sentences"], columns["sentence_counts"]
    if len(counts) != n or sum(counts) != len(flat):
        raise ValueError("sentence counts disagree")
    sentences, rows, start = [], [], 0
    for count in counts:
        sentences.append(flat[start:start + count])
        rows.append((2 * n + start, 2 * n + start + count))
        start += count
    return sentences, rows


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
        self._told_format = ""

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
        """The generation folder `current` points at; None when there is no index yet.

        Raises:
            IndexDamagedError: `current` is (or points at) a file rather than a generation folder.
        """
        link = self.folder / CURRENT
        if not link.is_symlink() and not link.exists():
            return None
        gen = self.folder / os.readlink(link) if link.is_symlink() else link
        if gen.exists() and not gen.is_dir():
            raise self._damaged(f"{CURRENT} is a file, not a generation folder")
        return gen

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
        data = self._manifest_data(gen)
        if data is None:
            return None
        if data.get("format_version") != FORMAT_VERSION:
            if self._told_format != gen.name:  # once, though a start reads the manifest more than once
                self._told_format = gen.name
                logger.info("The index in %s has an older format (%s, now %s); it will be rebuilt, reusing its "
                            "vectors.", self.folder, data.get("format_version"), FORMAT_VERSION)
            return None
        try:
            data["chunk_hashes"] = tuple(data["chunk_hashes"])
            return Manifest(**data)
        except (TypeError, KeyError) as exc:
            raise self._damaged(f"its manifest cannot be read ({type(exc).__name__})") from None

    def _manifest_data(self, gen: Path | None) -> dict | None:
        if gen is None:
            return None
        try:
            data = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return data
        except (OSError, ValueError) as exc:
            raise self._damaged(f"its manifest cannot be read ({type(exc).__name__})") from None

    def _damaged(self, why: str) -> IndexDamagedError:
        return IndexDamagedError(
            f"The index in {self.folder} is damaged: {why}. Run `advisor index` to rebuild it."
        )

    def load(self) -> LoadedIndex | None:
        """Load and verify the current index; None if there is none.

        Every data file is checked against the size and CRC-32 in the manifest, on the very bytes that are
        parsed. What that protects against: a generation is never seen half-written (it is written aside
        and switched to by one rename), so the check is for later damage: a truncated or edited file, a bad
        disk or copy. CRC-32 detects such damage (every burst of up to 32 bits, otherwise all but 1 in 4e9);
        it is no defence against someone who means harm, and neither was a cryptographic digest, since
        whoever can rewrite a file can rewrite the manifest beside it.

        Raises:
            IndexDamagedError: the files are missing, truncated or do not match the manifest.
        """
        # manifest and files from one generation, which no other process may prune meanwhile
        with self._reading() as gen:
            manifest = self._manifest_at(gen)
            if manifest is None:
                return None
            files = manifest.files
            for name in ("chunks.json", "vectors.npy", "index.faiss", "vector_hashes.npy"):
                if name not in files:
                    raise self._damaged(f"its manifest lists no {name}")
            for name, expected in files.items():
                if not isinstance(expected, list) or len(expected) != 2 or "/" in name or name.startswith("."):
                    raise self._damaged(f"its manifest lists {name!r} oddly")
                path = gen / name
                if not path.is_file():
                    raise self._damaged(f"{name} is missing")
                if path.stat().st_size != expected[0]:
                    raise self._damaged(f"{name} does not match its manifest (truncated or changed)")
            try:
                import faiss

                columns = json.loads(_read_verified(gen / "chunks.json", files["chunks.json"]))
                vectors = _load_npy_verified(gen / "vectors.npy", files["vectors.npy"])
                faiss_index = faiss.deserialize_index(
                    np.frombuffer(_read_verified(gen / "index.faiss", files["index.faiss"]), dtype=np.uint8))
                bm25_files = {name: entry for name, entry in files.items() if name.startswith(BM25_PREFIX)}
                self._check_files(gen, bm25_files)  # block by block: bm25s reads them itself
                lexical = LexicalIndex.load(gen, BM25_PREFIX) if bm25_files else None
                chunks = [Chunk(*row) for row in zip(*(columns[k] for k in _CHUNK_FIELDS), strict=True)]
                sentences, sentence_rows = _sentences_of(columns, len(chunks))
            except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged index
                mismatch = "does not match its manifest" in str(exc)
                raise self._damaged(str(exc) if mismatch else f"it cannot be read ({type(exc).__name__})") from None
        if faiss_index.ntotal != len(chunks) or len(chunks) != len(manifest.chunk_hashes) \
                or vectors.ndim != 2 or vectors.shape[1:] != (manifest.dim,) \
                or len(vectors) != 2 * len(chunks) + sum(len(s) for s in sentences) \
                or (lexical is not None and lexical.size != len(chunks)):
            raise self._damaged("its parts disagree on the number of chunks")
        return LoadedIndex(
            manifest=manifest, chunks=chunks, faiss_index=faiss_index, vectors=vectors,
            sentence_rows=sentence_rows, sentences=sentences, generation=gen.name, lexical=lexical,
        )

    def _reusable_vectors(self, model: str) -> dict[str, np.ndarray]:
        """Vectors of the current index by the content hash of their text, when it used the same model."""
        try:
            with self._reading() as gen:
                data = self._manifest_data(gen)
                if data is None or data.get("model") != model:
                    return {}
                if data.get("format_version") == 4:
                    return self._legacy_vectors(gen, data)
                if data.get("format_version") not in _REUSABLE_FORMATS or "vector_hashes.npy" not in data.get("files", {}):
                    return {}
                files = data["files"]
                self._check_files(gen, files, skip=("vectors.npy", "vector_hashes.npy"))
                hashes = _load_npy_verified(gen / "vector_hashes.npy", files["vector_hashes.npy"])
                vectors = _load_npy_verified(gen / "vectors.npy", files["vectors.npy"])
        except (IndexDamagedError, OSError, ValueError, TypeError, KeyError) as exc:
            logger.warning("Not reusing the old index: %s", exc)
            return {}
        if hashes.ndim != 2 or hashes.shape[1:] != (16,) or len(hashes) != len(vectors):
            logger.warning("Not reusing the old index in %s: its vectors and their hashes disagree.", self.folder)
            return {}
        text = hashes.tobytes().hex()
        return dict(zip((text[i:i + 32] for i in range(0, len(text), 32)), vectors))

    def _check_files(self, gen: Path, files: dict, skip: tuple[str, ...] = ()) -> None:
        """Raise ValueError unless every file listed has its recorded size and CRC-32 (those in `skip`: size only)."""
        for name, expected in files.items():
            path = gen / name
            if not path.is_file() or path.stat().st_size != expected[0] \
                    or (name not in skip and _file_crc(path) != expected[1]):
                raise ValueError(f"{name} is missing or does not match its manifest")

    def _legacy_vectors(self, gen: Path, data: dict) -> dict[str, np.ndarray]:
        """The vectors of a format-4 index (hashes in its manifest, blake2b digests), so an upgrade embeds nothing."""
        path = gen / "vectors.npy"
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(_BLOCK), b""):
                digest.update(block)
        if digest.hexdigest() != data["files"]["vectors.npy"]:
            raise ValueError("vectors.npy of the older index does not match its manifest")
        vectors = np.load(path, allow_pickle=False)
        if len(vectors) != len(data["vector_hashes"]):
            raise ValueError("the older index's vectors and their hashes disagree")
        logger.info("Reusing %d vectors of the older index format.", len(vectors))
        return dict(zip(data["vector_hashes"], vectors))

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
            dim = matrix.shape[1]
            loaded = self._write(chunks, matrix, hashes, sentences, sentence_rows, embedder.name, dim, corpus)
            return loaded, len(missing)

    def _write(self, chunks, matrix, hashes, sentences, sentence_rows, model, dim, corpus) -> LoadedIndex:
        import faiss

        gen_name = f"gen-{time.time_ns()}"
        tmp = self.folder / f".{gen_name}.tmp"
        tmp.mkdir(parents=True)
        try:
            columns = {k: [getattr(c, k) for c in chunks] for k in _CHUNK_FIELDS}
            columns["sentence_counts"] = [len(s) for s in sentences]
            columns["sentences"] = [x for s in sentences for x in s]
            # every file of the generation is made durable at once by _publish, before the switch
            (tmp / "chunks.json").write_bytes(json.dumps(columns, ensure_ascii=False).encode("utf-8"))
            np.save(tmp / "vectors.npy", matrix, allow_pickle=False)
            # raw 16-byte digests, one row each (not dtype "S16": numpy drops a digest's trailing zero bytes)
            np.save(tmp / "vector_hashes.npy",
                    np.frombuffer(bytes.fromhex("".join(hashes)), dtype=np.uint8).reshape(len(hashes), 16),
                    allow_pickle=False)
            faiss_index = make_faiss_index(matrix[: len(chunks)].reshape(len(chunks), dim))
            faiss.write_index(faiss_index, str(tmp / "index.faiss"))
            lexical = LexicalIndex([c.embed_text for c in chunks])
            lexical.save(tmp, BM25_PREFIX)
            manifest = Manifest(
                model=model, dim=dim, chunker_version=CHUNKER_VERSION,
                chunk_hashes=tuple(c.record_hash for c in chunks), created_at=time.time(), corpus=corpus,
                files={name: [(tmp / name).stat().st_size, _file_crc(tmp / name)] for name in _data_files(tmp)},
            )
            gen = self._publish(tmp, gen_name, manifest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._remove_old_generations(keep=gen.name)
        return LoadedIndex(manifest=manifest, chunks=list(chunks), faiss_index=faiss_index, vectors=matrix,
                           sentence_rows=list(sentence_rows), sentences=sentences, generation=gen.name,
                           lexical=lexical)

    def _publish(self, tmp: Path, gen_name: str, manifest: Manifest) -> Path:
        """Write the manifest last, then switch `current` to the finished generation in one rename."""
        for path in tmp.iterdir():  # every file the build wrote (bm25s's too): durable before the switch
            if path.is_file():
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_write(tmp / "manifest.json", manifest.to_json().encode("utf-8"))
        (tmp / READERS).touch()
        gen = self.folder / gen_name
        os.rename(tmp, gen)
        link_tmp = self.folder / f".{CURRENT}.{gen_name}"
        os.symlink(gen_name, link_tmp)
        os.replace(link_tmp, self.folder / CURRENT)  # the atomic switch
        return gen

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
                gen_name = f"gen-{time.time_ns()}"
                tmp = self.folder / f".{gen_name}.tmp"
                manifest = Manifest(**dict(loaded.manifest.__dict__, corpus=corpus, created_at=time.time()))
                tmp.mkdir()
                for name in manifest.files:
                    os.link(old / name, tmp / name)
                gen = self._publish(tmp, gen_name, manifest)
                self._remove_old_generations(keep=gen.name)
        except OSError as exc:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            logger.info("Could not record the corpus stamp in %s (%s); the next start reads the corpus again.",
                        self.folder, exc)
            return None
        return LoadedIndex(**dict(loaded.__dict__, manifest=manifest, generation=gen.name))

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
