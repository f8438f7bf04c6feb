"""The on-disk index: round trip, staleness, incremental rebuilds, damage detection and crash safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from retrieval.chunking import CHUNKER_VERSION, chunk_document, content_hash
from retrieval.documents import load_corpus
from retrieval.engine import Engine
from retrieval.embedded_texts import window_texts
from retrieval.generations import CURRENT, READERS
from retrieval.index_store import IndexDamagedError, IndexStore
from retrieval.manifest import FORMAT_VERSION
from tests.conftest import SHIPPED_CORPUS
from retrieval.fake_embedder import HashingEmbedder

# The shipped corpus's chunks as each CHUNKER_VERSION makes them. A start trusts unchanged corpus files to give
# the chunks it gave before as long as CHUNKER_VERSION is the same, so an edit to documents.py or chunking.py
# that changes any chunk must bump it (and add its line here); an edit that changes none (a comment) need not.
SHIPPED_CHUNKS = {"7": "df5b7252d83614d8f41af9d0b53e2145", "8": "df5b7252d83614d8f41af9d0b53e2145", "9": "df5b7252d83614d8f41af9d0b53e2145"}

GUIDE = "ai-ml-data-pm-guide.txt"
EDITED_SENTENCE = "Compensation gaps narrow at junior levels and widen sharply at senior levels."


def read_chunks(corpus_dir: Path):
    documents, _ = load_corpus(corpus_dir)
    return [c for d in documents for c in chunk_document(d)]


def edit_corpus(corpus_dir: Path) -> None:
    """Change one sentence of one document (one chunk, one sentence of it)."""
    path = corpus_dir / GUIDE
    text = path.read_text(encoding="utf-8")
    assert EDITED_SENTENCE in text
    path.write_text(text.replace(EDITED_SENTENCE, "Compensation gaps are small for juniors and large for seniors."),
                    encoding="utf-8")


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry of an index folder: file bytes, symlink targets."""
    out: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if rel == ".lock":
            continue
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out


class FailingEmbedder(HashingEmbedder):
    """Embeds the first `good_calls` batches, then raises: a crash in the middle of a build."""

    def __init__(self, good_calls: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.good_calls = good_calls

    def embed(self, texts, progress=False):
        if self.calls >= self.good_calls:
            self.calls += 1
            raise RuntimeError("embedder crashed mid-build")
        return super().embed(texts, progress)


@pytest.fixture
def store(tmp_path) -> IndexStore:
    return IndexStore(tmp_path / "index")


@pytest.fixture
def built(store, corpus_dir, fake_embedder):
    """A store holding an index of the shipped corpus."""
    chunks = read_chunks(corpus_dir)
    loaded, embedded = store.build(chunks, fake_embedder)
    return chunks, loaded, embedded


def current_generation(store: IndexStore) -> Path:
    return store.current_generation()


# --- round trip -----------------------------------------------------------------------------------

def test_the_chunker_version_names_the_chunks_it_makes():
    chunks = [c for d in load_corpus(SHIPPED_CORPUS)[0] for c in chunk_document(d)]
    digest = content_hash("".join(c.record_hash for c in chunks))
    assert SHIPPED_CHUNKS.get(CHUNKER_VERSION) == digest, (
        f"the chunks changed: bump CHUNKER_VERSION in retrieval/chunking.py and add it here with {digest}")


def test_round_trip_keeps_chunks_vectors_and_faiss(store, built, fake_embedder):
    chunks, written, embedded = built
    assert embedded == fake_embedder.texts_embedded > len(chunks)  # chunks and their sentences

    loaded = store.load()
    assert loaded.chunks == chunks
    assert np.array_equal(loaded.vectors, written.vectors)
    assert loaded.vectors.dtype == np.float32 and loaded.vectors.shape[1] == fake_embedder.dim
    assert loaded.faiss_index.ntotal == len(chunks)
    assert loaded.sentences == written.sentences
    assert loaded.sentence_rows == written.sentence_rows
    assert loaded.generation == written.generation

    manifest = loaded.manifest
    assert (manifest.model, manifest.dim) == (fake_embedder.name, 256)
    assert manifest.chunk_hashes == tuple(c.record_hash for c in chunks)
    gen = store.current_generation()
    assert {"chunks.json", "vectors.npy", "vector_hashes.npy", "index.faiss", "bm25.meta.json"} <= set(manifest.files)
    on_disk = {p.name for p in gen.iterdir()} - {"manifest.json", READERS}
    assert set(manifest.files) == on_disk, "every data file of the generation is covered by the manifest"
    assert all(manifest.files[name][0] == (gen / name).stat().st_size for name in on_disk)


def test_loaded_faiss_index_finds_each_chunk_by_its_own_vector(store, built):
    loaded = store.load()
    queries = loaded.chunk_vectors()[:10]
    scores, ids = loaded.faiss_index.search(np.ascontiguousarray(queries), 1)
    assert list(ids[:, 0]) == list(range(10))
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)


def test_sentence_vectors_are_the_embeddings_of_the_sentences(store, built, fake_embedder):
    loaded = store.load()
    position = next(i for i, s in enumerate(loaded.sentences) if len(s) >= 2)
    start, end = loaded.sentence_rows[position]
    assert end - start == len(loaded.sentences[position])
    expected = HashingEmbedder().embed(loaded.sentences[position])
    assert np.allclose(loaded.vectors[start:end], expected)


def test_a_table_rows_window_is_the_row_not_the_rows_beside_it(store, built, fake_embedder):
    chunks, loaded, _ = built
    windows = window_texts(chunks)
    row = next(i for i, c in enumerate(chunks) if c.text.startswith("Technical depth:"))
    assert chunks[row].kind == "table" and chunks[row - 1].kind == chunks[row + 1].kind == "table"
    assert windows[row] == "\n".join(t for t in (chunks[row].section, chunks[row].text) if t)
    assert chunks[row + 1].text not in windows[row] and chunks[row - 1].text not in windows[row]
    prose = next(i for i, c in enumerate(chunks) if c.kind == "paragraph" and i > 0
                 and chunks[i - 1].doc_id == c.doc_id == chunks[i + 1].doc_id)
    assert chunks[prose - 1].text in windows[prose] and chunks[prose + 1].text in windows[prose]
    assert np.allclose(loaded.window_vectors()[row], fake_embedder.embed([windows[row]])[0])
    assert [c.kind for c in store.load().chunks] == [c.kind for c in chunks], "kinds survive the round trip"


def test_no_index_loads_as_none(store):
    assert store.load() is None
    assert store.read_manifest() is None


def test_current_is_a_symlink_swapped_to_the_new_generation(store, built, fake_embedder, corpus_dir):
    link = store.folder / CURRENT
    assert link.is_symlink()
    first = os.readlink(link)
    assert (store.folder / first / "manifest.json").is_file()

    edit_corpus(corpus_dir)
    store.build(read_chunks(corpus_dir), fake_embedder)
    second = os.readlink(link)
    assert second != first
    generations = [p.name for p in store.folder.iterdir() if "gen-" in p.name]
    assert generations == [second], "old generations and temp folders are cleaned up"


# --- staleness and incremental builds -------------------------------------------------------------

def test_manifest_goes_stale_when_a_corpus_file_changes(store, built, corpus_dir, fake_embedder):
    chunks, _, _ = built
    manifest = store.read_manifest()
    assert manifest.matches(fake_embedder.name, chunks)
    assert not manifest.matches("another-model", chunks)
    edit_corpus(corpus_dir)
    assert not manifest.matches(fake_embedder.name, read_chunks(corpus_dir))


def test_unchanged_corpus_embeds_nothing(store, built, fake_embedder):
    chunks, _, _ = built
    before = fake_embedder.texts_embedded
    _, embedded = store.build(chunks, fake_embedder)
    assert embedded == 0
    assert fake_embedder.texts_embedded == before


def test_editing_one_document_re_embeds_only_what_changed(store, built, corpus_dir, fake_embedder):
    _, _, first = built
    before = fake_embedder.texts_embedded
    edit_corpus(corpus_dir)
    chunks = read_chunks(corpus_dir)
    loaded, embedded = store.build(chunks, fake_embedder)
    delta = fake_embedder.texts_embedded - before
    assert delta == embedded
    assert 0 < delta <= 8, "the edited chunk, its context and its edited sentence, not the whole corpus"
    assert delta < first / 20
    assert any("Compensation gaps are small" in c.text for c in loaded.chunks)
    # reused vectors are exactly what a full build would compute
    fresh, _ = IndexStore(store.folder.parent / "fresh").build(chunks, HashingEmbedder())
    assert np.allclose(loaded.vectors, fresh.vectors)


def test_changing_the_model_re_embeds_everything(store, built, corpus_dir):
    chunks, _, first = built
    other = HashingEmbedder(name="another-fake-model")
    loaded, embedded = store.build(chunks, other)
    assert embedded == first == other.texts_embedded
    assert store.read_manifest().model == "another-fake-model"


def test_engine_rebuilds_when_the_corpus_changes(corpus_dir, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    status = Engine(corpus_dir, index_dir, fake_embedder).ensure_index()
    assert status.rebuilt and status.embedded > 0 and status.chunks > 0

    before = fake_embedder.texts_embedded
    again = Engine(corpus_dir, index_dir, fake_embedder).ensure_index()
    assert not again.rebuilt and again.embedded == 0
    assert fake_embedder.texts_embedded == before

    edit_corpus(corpus_dir)
    engine = Engine(corpus_dir, index_dir, fake_embedder)
    edited = engine.ensure_index()
    assert edited.rebuilt and 0 < edited.embedded <= 8
    assert any("Compensation gaps are small" in c.text for c in engine.retriever.index.chunks)
    assert not any(EDITED_SENTENCE in c.text for c in engine.retriever.index.chunks)


def test_engine_rebuilds_fully_for_another_model(corpus_dir, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    first = Engine(corpus_dir, index_dir, fake_embedder).ensure_index()
    other = HashingEmbedder(name="another-fake-model")
    status = Engine(corpus_dir, index_dir, other).ensure_index()
    assert status.rebuilt and status.embedded == first.embedded


# --- damage ---------------------------------------------------------------------------------------

def _truncate_faiss(gen: Path) -> None:
    path = gen / "index.faiss"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage_manifest(gen: Path) -> None:
    (gen / "manifest.json").write_text("{not json at all", encoding="utf-8")


def _delete_vectors(gen: Path) -> None:
    (gen / "vectors.npy").unlink()


def _truncate_chunks(gen: Path) -> None:
    path = gen / "chunks.json"
    path.write_bytes(path.read_bytes()[:100])


def _manifest_missing_keys(gen: Path) -> None:
    # same format version (an older format is rebuilt, not reported), but fields are missing
    (gen / "manifest.json").write_text(json.dumps({"format_version": FORMAT_VERSION, "model": "x"}), encoding="utf-8")


def _delete_generation(gen: Path) -> None:
    for path in gen.iterdir():
        path.unlink()
    gen.rmdir()


CORRUPTIONS = [_truncate_faiss, _garbage_manifest, _delete_vectors, _truncate_chunks, _manifest_missing_keys,
               _delete_generation]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.strip("_"))
def test_damaged_index_is_reported_and_left_alone(store, built, corrupt):
    corrupt(current_generation(store))
    before = snapshot(store.folder)
    with pytest.raises(IndexDamagedError) as err:
        store.load()
    message = str(err.value)
    assert "advisor index" in message and str(store.folder) in message
    assert snapshot(store.folder) == before, "a damaged index is never deleted or rewritten by load()"


def test_current_replaced_by_a_file_is_a_damaged_index(store, built, fake_embedder):
    chunks, _, first = built
    (store.folder / CURRENT).unlink()
    (store.folder / CURRENT).write_text("gen-0\n")  # a copy that did not keep the link, say
    before = snapshot(store.folder)
    with pytest.raises(IndexDamagedError, match="current is a file, not a generation folder.*advisor index"):
        store.load()
    assert snapshot(store.folder) == before
    loaded, embedded = store.build(chunks, fake_embedder)  # `advisor index` repairs it
    assert embedded == first and store.load().chunks == chunks


@pytest.mark.parametrize("corrupt", [_truncate_faiss, _garbage_manifest, _delete_vectors],
                         ids=lambda f: f.__name__.strip("_"))
def test_engine_reports_a_damaged_index_instead_of_answering(corpus_dir, tmp_path, fake_embedder, corrupt):
    index_dir = tmp_path / "index"
    Engine(corpus_dir, index_dir, fake_embedder).ensure_index()
    corrupt(IndexStore(index_dir).current_generation())
    before = snapshot(index_dir)
    with pytest.raises(IndexDamagedError, match="advisor index"):
        Engine(corpus_dir, index_dir, fake_embedder).ensure_index()
    assert snapshot(index_dir) == before


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.strip("_"))
def test_rebuilding_after_damage_works(store, built, fake_embedder, corrupt):
    chunks, _, first = built
    damaged = current_generation(store)
    corrupt(damaged)
    loaded, embedded = store.build(chunks, fake_embedder)
    assert embedded == first, "nothing is reused from a damaged index"
    assert store.load().chunks == chunks == loaded.chunks
    assert not damaged.exists()


def test_forced_engine_rebuild_repairs_a_damaged_index(corpus_dir, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    Engine(corpus_dir, index_dir, fake_embedder).ensure_index()
    _truncate_faiss(IndexStore(index_dir).current_generation())
    status = Engine(corpus_dir, index_dir, fake_embedder).ensure_index(force=True)
    assert status.rebuilt
    assert Engine(corpus_dir, index_dir, fake_embedder).ensure_index().rebuilt is False


# --- crashes --------------------------------------------------------------------------------------

def test_crash_while_embedding_keeps_the_previous_index(store, built):
    chunks, _, _ = built
    before = snapshot(store.folder)
    link_before = os.readlink(store.folder / CURRENT)
    crashing = FailingEmbedder(good_calls=1, name="another-fake-model")  # full re-embed: many batches
    with pytest.raises(RuntimeError, match="mid-build"):
        store.build(chunks, crashing, batch_size=16)
    assert crashing.calls == 2, "the crash happened on the second batch"
    assert os.readlink(store.folder / CURRENT) == link_before
    assert snapshot(store.folder) == before
    loaded = store.load()
    assert loaded.chunks == chunks and loaded.manifest.model == HashingEmbedder().name


def test_crash_while_writing_keeps_the_previous_index_and_no_temp_folder(store, built, fake_embedder, monkeypatch,
                                                                          corpus_dir):
    import faiss

    before = snapshot(store.folder)

    def broken_write(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", broken_write)
    edit_corpus(corpus_dir)
    with pytest.raises(OSError):
        store.build(read_chunks(corpus_dir), fake_embedder)
    assert snapshot(store.folder) == before
    assert not [p for p in store.folder.iterdir() if p.name.startswith(".gen-")]
    assert store.load() is not None


def test_build_after_a_crash_succeeds(store, built, fake_embedder):
    chunks, _, _ = built
    with pytest.raises(RuntimeError):
        store.build(chunks, FailingEmbedder(good_calls=0, name="another-fake-model"))
    loaded, embedded = store.build(chunks, HashingEmbedder(name="another-fake-model"))
    assert embedded > 0 and store.load().manifest.model == "another-fake-model"


# --- format 5: checksums on every file, saved BM25, vector hashes out of the manifest ----------------

def _flip_a_byte_of_vectors(gen: Path) -> None:
    """Same size, one byte different: only a checksum can tell."""
    path = gen / "vectors.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40
    path.write_bytes(bytes(data))


def _truncate_bm25(gen: Path) -> None:
    path = gen / "bm25.data.npy"
    path.write_bytes(path.read_bytes()[:-8])


def _garbage_bm25_vocabulary(gen: Path) -> None:
    path = gen / "bm25.vocab.json"
    path.write_bytes(b"x" * path.stat().st_size)


@pytest.mark.parametrize("corrupt", [_flip_a_byte_of_vectors, _truncate_bm25, _garbage_bm25_vocabulary],
                         ids=lambda f: f.__name__.strip("_"))
def test_damage_that_keeps_sizes_or_hits_bm25_is_reported(store, built, fake_embedder, corrupt):
    chunks, _, first = built
    corrupt(current_generation(store))
    before = snapshot(store.folder)
    with pytest.raises(IndexDamagedError, match="advisor index"):
        store.load()
    assert snapshot(store.folder) == before
    loaded, embedded = store.build(chunks, fake_embedder)
    assert embedded == first, "nothing is reused from a damaged index"
    assert store.load().chunks == chunks


def test_saved_bm25_scores_exactly_as_a_fresh_one(store, built):
    from retrieval.lexical import LexicalIndex

    loaded = store.load()
    fresh = LexicalIndex([c.embed_text for c in loaded.chunks])
    assert loaded.lexical is not None and loaded.lexical.vocabulary == fresh.vocabulary
    for query in ("does a Series A startup hire ML PMs?", "salary of a senior AI PM", "pasta recipes"):
        assert np.array_equal(loaded.lexical.scores(query), fresh.scores(query))
        assert loaded.lexical.coverage(query) == fresh.coverage(query)


def test_the_retriever_takes_the_saved_bm25_only_when_built_from_the_same_texts(store, built, monkeypatch):
    from retrieval import lexical
    from retrieval.search import HybridRetriever

    loaded = store.load()
    texts = [c.embed_text for c in loaded.chunks]
    assert loaded.lexical.built_from(texts)
    assert not loaded.lexical.built_from(texts[:-1] + ["a different last passage"])
    monkeypatch.setattr(lexical, "tokenize", lambda text: pytest.fail("the saved index was not used"))
    assert HybridRetriever(loaded, HashingEmbedder()).lexical is loaded.lexical
    monkeypatch.undo()
    monkeypatch.setattr(lexical, "code_version", lambda: "tokenising code changed since")
    assert not loaded.lexical.built_from(texts)
    rebuilt = HybridRetriever(loaded, HashingEmbedder()).lexical
    assert rebuilt is not loaded.lexical and rebuilt.size == len(texts), "other tokenising code: rebuilt"


def test_a_question_is_embedded_in_the_corpus_words_for_the_role(store, built):
    from retrieval.search import HybridRetriever

    class Recording(HashingEmbedder):
        asked: list[str] = []

        def embed(self, texts, **kwargs):
            self.asked.extend(texts)
            return super().embed(texts, **kwargs)

    embedder = Recording()
    retriever = HybridRetriever(store.load(), embedder)  # the shipped documents write "PM", "ML PMs"
    retriever.search("do AI product managers make less money than ML product managers?")
    assert embedder.asked == ["do AI PMs make less money than ML PMs?"]


def test_the_manifest_stays_small(store, built):
    manifest = current_generation(store) / "manifest.json"
    data = json.loads(manifest.read_text())
    assert "vector_hashes" not in data
    vectors = (current_generation(store) / "vectors.npy").stat().st_size
    assert manifest.stat().st_size < vectors / 10


def test_an_index_of_another_format_is_rebuilt_reusing_its_vectors(store, built, caplog):
    import logging

    chunks, loaded, _ = built
    gen = store.current_generation()
    manifest = json.loads((gen / "manifest.json").read_text())
    (gen / "manifest.json").write_text(json.dumps(dict(manifest, format_version=FORMAT_VERSION - 1)), encoding="utf-8")
    embedder = HashingEmbedder()
    with caplog.at_level(logging.INFO, logger="retrieval.index_store"):
        assert store.read_manifest() is None
        rebuilt, embedded = store.build(chunks, embedder)
    assert embedded == 0 == embedder.texts_embedded, "every text of this build was in the other format's index"
    assert caplog.text.count(f"has another format ({FORMAT_VERSION - 1}, now {FORMAT_VERSION})") == 1
    assert np.array_equal(rebuilt.vectors, loaded.vectors)


def test_tokenising_from_several_threads_at_once_gives_the_same_words():
    """Worker threads answer at the same time: stemming and synonym expansion must not share state."""
    from concurrent.futures import ThreadPoolExecutor

    from retrieval.lexical import expand, tokenize

    texts = [f"Senior ML PMs negotiating salaries and compensation at companies, round {i}" for i in range(400)]
    expected = [expand(tokenize(t)) for t in texts]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda t: expand(tokenize(t)), texts)) == expected


def test_everyday_words_for_pay_reach_the_salary_passages():
    """"make more money" shares no word with "Salaries reflect the gap" or "AI PM pays ..."; its synonyms do."""
    from retrieval.lexical import LexicalIndex

    texts = ["Salaries reflect the gap: ML PMs at L5 start at $280K TC.", "AI PM pays slightly more on average.",
             "ML PMs own the model and its metrics."]
    scores = LexicalIndex(texts).scores("do AI PMs make more money than ML PMs?")
    assert scores[0] > scores[2] and scores[1] > scores[2]

