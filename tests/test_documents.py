"""Reading a corpus: front-matter headers, ids, cleaning, and files that must be skipped with a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.documents import CorpusError, clean_text, is_promotional, load_corpus, read_document, split_header
from tests.conftest import SHIPPED_CORPUS

GOOD_TEXT = "Hiring managers look for ML PMs who own model metrics.\nThey also expect evaluation skills.\n"


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_front_matter_header_sets_metadata_and_is_not_part_of_the_text(tmp_path):
    path = write(tmp_path, "some-file.md", (
        "---\nid: career-guide\ntitle: \"A Career Guide\"\nauthor: Jane Doe\norigin: 001_abc.txt\n---\n"
        + GOOD_TEXT
    ))
    doc = read_document(path)
    assert (doc.id, doc.title, doc.author, doc.origin) == ("career-guide", "A Career Guide", "Jane Doe", "001_abc.txt")
    assert doc.text.startswith("Hiring managers look for ML PMs")
    assert "author:" not in doc.text and "---" not in doc.text


def test_id_and_title_come_from_the_file_name_without_a_header(tmp_path):
    doc = read_document(write(tmp_path, "My_Career Notes.txt", GOOD_TEXT))
    assert doc.id == "my-career-notes"
    assert doc.title == "My career notes"
    assert doc.origin == "My_Career Notes.txt"
    assert doc.author == ""


def test_title_comes_from_the_first_markdown_heading(tmp_path):
    doc = read_document(write(tmp_path, "notes.md", "# Breaking into ML PM\n\n" + GOOD_TEXT))
    assert doc.id == "notes"
    assert doc.title == "Breaking into ML PM"


def test_header_without_a_closing_line_is_kept_as_text():
    meta, body = split_header("---\nid: x\nno closing line")
    assert meta == {}
    assert body.startswith("---\nid: x")


def test_crlf_and_bom_are_handled(tmp_path):
    raw = "\ufeff---\r\nid: crlf-doc\r\ntitle: CRLF\r\n---\r\nLine one.\r\nLine two.\r\n"
    doc = read_document(write(tmp_path, "crlf.txt", raw.encode("utf-8")))
    assert doc.id == "crlf-doc" and doc.title == "CRLF"
    assert "\r" not in doc.text and doc.text == "Line one.\nLine two."


@pytest.mark.parametrize("line", [
    "> 📖 Related: columbia-to-openai-pm-2026",
    "Related: pinterest-pm-onsite-timeline",
    "Get the full PM Interview Prep System →",
    "See also: our portfolio guide",
    "The book is also available on Amazon Kindle.",
])
def test_promotional_lines_are_recognised(line):
    assert is_promotional(line)


@pytest.mark.parametrize("line", [
    "True ML PMs emerge at Series B+, when model iteration cycles require dedicated ownership.",
    "| ML PM -> AI PM | Statistical thinking transfers; prompt engineering needs learning |",
    "AI PM to ML PM: build statistical depth. Take ML coursework.",
])
def test_ordinary_lines_are_not_promotional(line):
    assert not is_promotional(line)


def test_content_lines_mentioning_sign_up_are_kept():
    text = "Track how many users sign up each week; the PM owns that metric.\nAsk to subscribe to model alerts."
    assert clean_text(text) == text


def test_promotional_lines_are_removed_from_loaded_documents(tmp_path):
    write(tmp_path, "doc.txt", (
        "The ML PM owns model quality.\n> 📖 Related: some-other-article\nThey sign off on data campaigns.\n"
        "Ready to build a real interview prep system?\nGet the full PM Interview Prep System →\n"
    ))
    (doc,), warnings = load_corpus(tmp_path)
    assert warnings == []
    assert "Related" not in doc.text and "Get the full" not in doc.text
    assert "The ML PM owns model quality." in doc.text and "They sign off on data campaigns." in doc.text


def test_shipped_corpus_loads_cleanly():
    documents, warnings = load_corpus(SHIPPED_CORPUS)
    assert warnings == []
    assert {d.id for d in documents} == {"ai-pm-vs-ml-pm", "ai-ml-data-pm-guide"}
    for doc in documents:
        assert "Related:" not in doc.text and "Get the full" not in doc.text
        assert doc.title and doc.origin.endswith(".txt")


@pytest.mark.parametrize("name, content, why", [
    ("image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
    ("latin1.txt", "Caf\u00e9 au lait for the ML PM team.\n".encode("latin-1"), "UTF-8"),
    ("empty.txt", b"", "no text"),
    ("blank.md", b"  \n\t\n   \n", "no text"),
    ("only-promo.txt", "Get the full PM Interview Prep System \u2192\n".encode(), "no text"),
])
def test_unreadable_file_is_skipped_with_a_warning_naming_it(tmp_path, name, content, why):
    write(tmp_path, "good.txt", GOOD_TEXT)
    write(tmp_path, name, content)
    documents, warnings = load_corpus(tmp_path)
    assert [d.id for d in documents] == ["good"]
    assert len(warnings) == 1
    assert name in warnings[0] and why in warnings[0]


def test_all_bad_files_are_reported_and_the_rest_loads(tmp_path):
    write(tmp_path, "a.txt", GOOD_TEXT)
    write(tmp_path, "sub/b.md", "# B\n\nAnother readable document about PM interviews.\n")
    write(tmp_path, "bin.txt", b"\x00\x01\x02binary")
    write(tmp_path, "bad.md", b"\xff\xfe\xfa not utf8")
    write(tmp_path, "empty.md", b"")
    write(tmp_path, "ignored.pdf", b"%PDF-1.4 not a supported suffix")
    write(tmp_path, ".hidden.md", GOOD_TEXT)
    documents, warnings = load_corpus(tmp_path)
    assert sorted(d.id for d in documents) == ["a", "b"]
    assert len(warnings) == 4
    assert "ignored.pdf" in warnings[-1] and "advisor corpus add" in warnings[-1]
    for name in ("bin.txt", "bad.md", "empty.md"):
        assert sum(name in w for w in warnings) == 1


def test_duplicate_ids_are_skipped_with_a_warning(tmp_path):
    write(tmp_path, "one.txt", "---\nid: same\n---\nFirst document text.\n")
    write(tmp_path, "two.txt", "---\nid: same\n---\nSecond document text.\n")
    documents, warnings = load_corpus(tmp_path)
    assert len(documents) == 1
    assert len(warnings) == 1 and "two.txt" in warnings[0] and "same" in warnings[0]


def test_missing_folder_is_a_corpus_error_that_says_what_to_do(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(CorpusError) as err:
        load_corpus(missing)
    message = str(err.value)
    assert str(missing) in message and "does not exist" in message and "--corpus" in message


def test_empty_folder_is_a_corpus_error_that_says_what_to_do(tmp_path):
    with pytest.raises(CorpusError) as err:
        load_corpus(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and ".md or .txt" in message and "--corpus" in message


def test_folder_with_only_unreadable_files_is_a_corpus_error(tmp_path):
    write(tmp_path, "bin.md", b"\x00\x00\x00")
    with pytest.raises(CorpusError, match="no readable"):
        load_corpus(tmp_path)


def test_an_oversized_file_is_skipped_without_being_read(tmp_path, monkeypatch):
    """The size comes from stat: a multi-gigabyte file dropped into the corpus is never read into memory."""
    import retrieval.documents as documents

    write(tmp_path, "good.txt", GOOD_TEXT)
    big = write(tmp_path, "dump.txt", GOOD_TEXT)
    with big.open("r+b") as f:
        f.truncate(documents.MAX_DOCUMENT_BYTES + 1)  # sparse: no disk space used
    real_read_bytes = Path.read_bytes

    def read_bytes(path):
        assert path != big, "the oversized file was read"
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    read = documents.read_corpus(tmp_path)
    assert [d.id for d in read.documents] == ["good"]
    assert len(read.warnings) == 1 and "dump.txt" in read.warnings[0] and "larger than 20 MB" in read.warnings[0]
    assert documents.files_unchanged(tmp_path, list(read.files), read.stamped_ns + documents.RACY_NS + 1)
    with pytest.raises(ValueError, match="dump.txt is larger than 20 MB"):
        read_document(big)
