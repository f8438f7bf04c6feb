"""`advisor corpus add|list|remove`: storing converted documents, refusals, and incremental index updates."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings
from retrieval.chunking import chunk_document
from retrieval.corpus_admin import CorpusChangeError, add_file, add_files, list_documents, remove_document
from retrieval.documents import load_corpus, read_document
from retrieval.index_store import IndexStore
from tests.commands import assert_one_line_error, run
from tests.support import ARTICLE, NAV_ONLY, NEGOTIATION_LINES, make_pdf

ARTICLE_ID = "breaking-into-product-management-from-engineering"
SHIPPED_IDS = ["ai-ml-data-pm-guide", "ai-pm-vs-ml-pm"]


@pytest.fixture
def pdf(tmp_path) -> Path:
    return make_pdf(tmp_path / "negotiation.pdf", [NEGOTIATION_LINES], title="Salary negotiation for PMs")


def corpus_cmd(capsys, action, corpus_dir, data_dir, *rest):
    return run(capsys, "corpus", action, *rest, "--corpus", corpus_dir, "--data-dir", data_dir)


def index_of(corpus_dir: Path, data_dir: Path) -> IndexStore:
    return IndexStore(Settings(corpus_dir=corpus_dir, data_dir=data_dir).index_dir)


# --- the library ----------------------------------------------------------------------------------

def test_added_html_is_stored_with_front_matter_and_origin(corpus_dir):
    entry = add_file(corpus_dir, ARTICLE)
    assert entry.id == ARTICLE_ID and entry.file == f"{ARTICLE_ID}.md"
    stored = (corpus_dir / entry.file).read_text(encoding="utf-8")
    assert stored.startswith(f"---\nid: {ARTICLE_ID}\ntitle: Breaking into product management from engineering\n")
    assert f"origin: {ARTICLE.name}\n" in stored and "format: html\n" in stored
    doc = read_document(corpus_dir / entry.file)
    assert entry.chunks == len(chunk_document(doc)) > 0
    assert not [p for p in corpus_dir.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_added_pdf_is_stored_as_text_and_loads_with_the_corpus(corpus_dir, pdf):
    entry = add_file(corpus_dir, pdf)
    assert entry.file == "salary-negotiation-for-pms.txt"
    documents, warnings = load_corpus(corpus_dir)
    assert warnings == []
    assert sorted(d.id for d in documents) == sorted(SHIPPED_IDS + ["salary-negotiation-for-pms"])


def test_duplicate_id_is_refused_unless_replace(corpus_dir, tmp_path):
    add_file(corpus_dir, ARTICLE)
    edited = tmp_path / "article-v2.html"
    edited.write_text(ARTICLE.read_text(encoding="utf-8").replace("six to nine months", "a year"), encoding="utf-8")
    with pytest.raises(CorpusChangeError, match=f"the id '{ARTICLE_ID}' is already used .* pass --replace"):
        add_file(corpus_dir, edited)
    add_file(corpus_dir, edited, replace=True)
    files = [p.name for p in corpus_dir.iterdir() if p.name.startswith("breaking")]
    assert files == [f"{ARTICLE_ID}.md"]
    assert "a year shadowing" in (corpus_dir / files[0]).read_text(encoding="utf-8")


def test_same_text_under_another_name_is_refused_unless_replace(corpus_dir, tmp_path):
    copy = tmp_path / "copy.txt"
    copy.write_text((corpus_dir / "ai-pm-vs-ml-pm.txt").read_text(encoding="utf-8").replace(
        "id: ai-pm-vs-ml-pm", "id: another-id"), encoding="utf-8")
    with pytest.raises(CorpusChangeError, match="its text is already in the corpus as 'ai-pm-vs-ml-pm'"):
        add_file(corpus_dir, copy)
    add_file(corpus_dir, copy, replace=True)
    assert sorted(d.id for d in load_corpus(corpus_dir)[0]) == ["ai-ml-data-pm-guide", "another-id"]


def test_explicit_id_and_title(corpus_dir, pdf):
    entry = add_file(corpus_dir, pdf, doc_id="negotiation", title="  How to  negotiate ")
    doc = read_document(corpus_dir / entry.file)
    assert (doc.id, doc.title) == ("negotiation", "How to negotiate")


def test_malformed_id_is_refused_with_a_suggestion(corpus_dir, pdf):
    with pytest.raises(CorpusChangeError, match="should be lowercase letters, digits and hyphens, such as 'my-doc'"):
        add_files(corpus_dir, [pdf], doc_id="My Doc")


def test_a_broken_file_in_a_batch_is_skipped_by_name_and_the_rest_added(corpus_dir, pdf, tmp_path):
    scanned = make_pdf(tmp_path / "scanned.pdf", [[]])
    added, warnings = add_files(corpus_dir, [ARTICLE, scanned, NAV_ONLY, pdf])
    assert [e.id for e in added] == [ARTICLE_ID, "salary-negotiation-for-pms"]
    assert len(warnings) == 2
    assert "scanned.pdf" in warnings[0] and "no text layer" in warnings[0]
    assert "navigation-only.html" in warnings[1] and "no main text" in warnings[1]


def test_a_batch_where_nothing_can_be_added_is_refused_with_each_reason(corpus_dir, tmp_path):
    scanned = make_pdf(tmp_path / "scanned.pdf", [[]])
    with pytest.raises(CorpusChangeError, match="none of the 2 files could be added") as info:
        add_files(corpus_dir, [scanned, NAV_ONLY])
    assert len(info.value.warnings) == 2


def test_the_same_file_twice_in_one_batch_is_added_once(corpus_dir):
    added, warnings = add_files(corpus_dir, [ARTICLE, ARTICLE])
    assert len(added) == 1 and "already used" in warnings[0]


def test_add_to_a_new_folder_creates_it(tmp_path):
    entry = add_file(tmp_path / "new-corpus", ARTICLE)
    assert (tmp_path / "new-corpus" / entry.file).is_file()


def test_remove_deletes_the_file(corpus_dir):
    entry = remove_document(corpus_dir, "ai-pm-vs-ml-pm")
    assert entry.file == "ai-pm-vs-ml-pm.txt" and not (corpus_dir / "ai-pm-vs-ml-pm.txt").exists()


def test_remove_of_an_unknown_id_names_the_ids_that_exist(corpus_dir):
    with pytest.raises(CorpusChangeError) as info:
        remove_document(corpus_dir, "ai-pm-vs-ml")
    message = str(info.value)
    assert "No document has the id 'ai-pm-vs-ml'" in message and "did you mean 'ai-pm-vs-ml-pm'" in message
    assert "ai-ml-data-pm-guide, ai-pm-vs-ml-pm" in message


def test_the_last_document_cannot_be_removed(corpus_dir):
    remove_document(corpus_dir, "ai-pm-vs-ml-pm")
    with pytest.raises(CorpusChangeError, match="is the only document"):
        remove_document(corpus_dir, "ai-ml-data-pm-guide")
    assert (corpus_dir / "ai-ml-data-pm-guide.txt").exists()


def test_list_counts_chunks_per_document(corpus_dir):
    entries, warnings, _ = list_documents(corpus_dir)
    assert [e.id for e in entries] == SHIPPED_IDS and warnings == []
    for entry in entries:
        assert entry.chunks == len(chunk_document(read_document(corpus_dir / entry.file)))


# --- the command ----------------------------------------------------------------------------------

def test_cli_add_stores_the_files_and_updates_the_index_incrementally(capsys, fake_model, corpus_dir, data_dir, pdf):
    code, out, err = run(capsys, "index", "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0
    full = fake_model[-1].texts_embedded
    code, out, err = corpus_cmd(capsys, "add", corpus_dir, data_dir, ARTICLE, pdf)
    assert code == 0, err
    assert f"Added {ARTICLE_ID} (Breaking into product management from engineering)" in out
    assert "Added salary-negotiation-for-pms" in out and "Index updated" in out and "from 4 documents" in out
    assert 0 < fake_model[-1].texts_embedded < full / 5  # only the new documents' texts were embedded
    loaded = index_of(corpus_dir, data_dir).load()
    assert {c.doc_id for c in loaded.chunks} == set(SHIPPED_IDS) | {ARTICLE_ID, "salary-negotiation-for-pms"}


def test_cli_add_then_ask_cites_the_new_document(capsys, fake_model, corpus_dir, data_dir):
    assert corpus_cmd(capsys, "add", corpus_dir, data_dir, ARTICLE)[0] == 0
    code, out, _ = run(capsys, "ask", "how long do engineers shadow a product manager before an internal transfer?",
                       "--json", "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0 and ARTICLE_ID in out
    assert fake_model[-1].texts_embedded == 1  # the index the add wrote is reused: only the question is embedded


def test_cli_add_no_index_only_stores(capsys, fake_model, corpus_dir, data_dir):
    code, out, _ = corpus_cmd(capsys, "add", corpus_dir, data_dir, ARTICLE, "--no-index")
    assert code == 0 and "was not updated" in out
    assert (corpus_dir / f"{ARTICLE_ID}.md").exists()
    assert index_of(corpus_dir, data_dir).read_manifest() is None


@pytest.mark.parametrize("make_source, needles", [
    (lambda tmp: make_pdf(tmp / "scanned.pdf", [[]]), ("scanned.pdf has no text layer", "OCR")),
    (lambda tmp: NAV_ONLY, ("navigation-only.html has no main text",)),
    (lambda tmp: tmp / "missing.pdf", ("missing.pdf does not exist",)),
    (lambda tmp: (tmp / "broken.pdf").write_bytes(b"%PDF-1.4\n%garbage") and tmp / "broken.pdf",
     ("broken.pdf is not a readable PDF",)),
    (lambda tmp: (tmp / "slides.pptx").write_bytes(b"PK\x03\x04") and tmp / "slides.pptx",
     ("slides.pptx is not a supported type", ".md, .txt, .html or .pdf")),
])
def test_cli_add_refusals_are_one_line_and_change_nothing(capsys, fake_model, corpus_dir, data_dir, tmp_path,
                                                         make_source, needles):
    before = sorted(p.name for p in corpus_dir.iterdir())
    code, out, err = corpus_cmd(capsys, "add", corpus_dir, data_dir, make_source(tmp_path))
    assert_one_line_error(code, out, err, *needles)
    assert sorted(p.name for p in corpus_dir.iterdir()) == before


def test_cli_add_duplicate_is_refused_then_replaced(capsys, fake_model, corpus_dir, data_dir):
    assert corpus_cmd(capsys, "add", corpus_dir, data_dir, ARTICLE, "--no-index")[0] == 0
    code, out, err = corpus_cmd(capsys, "add", corpus_dir, data_dir, ARTICLE, "--no-index")
    assert_one_line_error(code, out, err, f"the id '{ARTICLE_ID}' is already used", "--replace")
    code, out, err = corpus_cmd(capsys, "add", corpus_dir, data_dir, ARTICLE, "--no-index", "--replace")
    assert code == 0 and f"Added {ARTICLE_ID}" in out


def test_cli_add_batch_warns_about_the_broken_file_and_adds_the_rest(capsys, fake_model, corpus_dir, data_dir):
    code, out, err = corpus_cmd(capsys, "add", corpus_dir, data_dir, ARTICLE, NAV_ONLY, "--no-index")
    assert code == 0 and f"Added {ARTICLE_ID}" in out
    assert err.strip().startswith("warning: Skipped") and "navigation-only.html" in err


def test_cli_add_batch_with_nothing_addable_warns_each_then_fails(capsys, fake_model, corpus_dir, data_dir, tmp_path):
    code, out, err = corpus_cmd(capsys, "add", corpus_dir, data_dir, NAV_ONLY, tmp_path / "missing.pdf")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 3 and "Traceback" not in err
    assert "navigation-only.html" in lines[0] and "missing.pdf" in lines[1]
    assert lines[2].startswith("advisor: Nothing was added")


def test_cli_remove_updates_the_index_without_the_model(capsys, fake_model, corpus_dir, data_dir):
    assert run(capsys, "index", "--corpus", corpus_dir, "--data-dir", data_dir)[0] == 0
    code, out, err = corpus_cmd(capsys, "remove", corpus_dir, data_dir, "ai-pm-vs-ml-pm")
    assert code == 0, err
    assert "Removed ai-pm-vs-ml-pm" in out and "from 1 documents (0 texts newly embedded" in out
    assert fake_model[-1].calls == 0  # nothing to embed: the model is never asked
    loaded = index_of(corpus_dir, data_dir).load()
    assert {c.doc_id for c in loaded.chunks} == {"ai-ml-data-pm-guide"}


def test_cli_remove_unknown_id_exits_2_naming_the_ids(capsys, fake_model, corpus_dir, data_dir):
    code, out, err = corpus_cmd(capsys, "remove", corpus_dir, data_dir, "nope")
    assert_one_line_error(code, out, err, "No document has the id 'nope'", "ai-ml-data-pm-guide, ai-pm-vs-ml-pm")


def test_cli_remove_last_document_exits_2(capsys, fake_model, corpus_dir, data_dir):
    assert corpus_cmd(capsys, "remove", corpus_dir, data_dir, "ai-pm-vs-ml-pm", "--no-index")[0] == 0
    code, out, err = corpus_cmd(capsys, "remove", corpus_dir, data_dir, "ai-ml-data-pm-guide")
    assert_one_line_error(code, out, err, "is the only document")


def test_cli_list_shows_a_table_without_loading_a_model(capsys, fake_model, corpus_dir, data_dir):
    code, out, err = corpus_cmd(capsys, "list", corpus_dir, data_dir)
    assert code == 0 and err == "" and fake_model == []
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "TITLE", "PASSAGES", "FILE"]
    guide = next(line for line in lines if line.startswith("ai-ml-data-pm-guide "))
    expected = len(chunk_document(read_document(corpus_dir / "ai-ml-data-pm-guide.txt")))
    assert guide.split()[-2:] == [str(expected), "ai-ml-data-pm-guide.txt"]
    assert "no index yet" in lines[-1]


def test_cli_list_says_whether_the_index_is_current(capsys, fake_model, corpus_dir, data_dir):
    run(capsys, "index", "--corpus", corpus_dir, "--data-dir", data_dir)
    assert "the index is up to date" in corpus_cmd(capsys, "list", corpus_dir, data_dir)[1]
    corpus_cmd(capsys, "add", corpus_dir, data_dir, ARTICLE, "--no-index")
    out = corpus_cmd(capsys, "list", corpus_dir, data_dir)[1]
    assert ARTICLE_ID in out and "out of date: run `advisor index`" in out


def test_cli_list_warns_about_unreadable_and_unconverted_files(capsys, fake_model, corpus_dir, data_dir, pdf):
    (corpus_dir / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (corpus_dir / pdf.name).write_bytes(pdf.read_bytes())
    code, out, err = corpus_cmd(capsys, "list", corpus_dir, data_dir)
    assert code == 0 and "2 documents" in out
    assert "image.md looks binary" in err and "negotiation.pdf" in err and "advisor corpus add" in err


def test_cli_list_of_a_missing_folder_exits_2(capsys, fake_model, tmp_path, data_dir):
    code, out, err = corpus_cmd(capsys, "list", tmp_path / "nowhere", data_dir)
    assert_one_line_error(code, out, err, "does not exist")


def test_added_documents_are_readable_by_the_bot_user_not_private_to_whoever_added_them(corpus_dir):
    entry = add_file(corpus_dir, ARTICLE)
    assert (corpus_dir / entry.file).stat().st_mode & 0o777 == 0o644
