"""Turning HTML, PDF, markdown and text files into corpus documents, and refusing those with no text."""

from __future__ import annotations

from pathlib import Path

import pytest
from pypdf import PdfReader

from retrieval.chunking import chunk_document
from retrieval.convert import ConversionError, convert_file, document_id, reflow, to_stored_text
from retrieval.documents import read_document
from tests.support import ARTICLE, NAV_ONLY, NEGOTIATION_LINES, make_pdf

FIXTURES = Path(__file__).parent / "fixtures" / "documents"
BOILERPLATE = ("Home", "Log in", "cookies", "Popular posts", "bootcamp", "All rights reserved", "Privacy",
               "Subscribe", "dataLayer", "7 min read")


# --- HTML -----------------------------------------------------------------------------------------

def test_html_keeps_the_article_as_markdown_and_drops_the_boilerplate():
    doc = convert_file(ARTICLE)
    assert doc.format == "html" and doc.suffix == ".md"
    assert "## Why internal transfers work" in doc.text  # headings survive for the chunker
    assert "- Run one customer interview a week." in doc.text
    assert "| Shadowing | 6-9 months |" in doc.text
    for junk in BOILERPLATE:
        assert junk not in doc.text, junk


def test_html_title_and_author_come_from_the_page_without_the_site_name():
    doc = convert_file(ARTICLE)
    assert doc.title == "Breaking into product management from engineering"
    assert doc.author == "Dana Whitfield"
    assert doc.origin == ARTICLE.name


def test_html_headings_become_chunk_sections(tmp_path):
    doc = convert_file(ARTICLE)
    stored = tmp_path / "article.md"
    stored.write_text(to_stored_text("article", doc, "2026-11-22"), encoding="utf-8")
    chunks = chunk_document(read_document(stored))
    sections = {c.section for c in chunks}
    assert "What interviewers look for" in sections
    table_rows = [c.text for c in chunks if "Shadowing" in c.text]
    assert table_rows and "6-9 months" in table_rows[0]


def test_html_paragraphs_wholly_in_bold_head_the_answers_after_them(tmp_path):
    """An FAQ page whose questions are <p><strong>...</strong></p>, as many are, not <h2>."""
    page = tmp_path / "faq.html"
    page.write_text(
        "<html><head><title>Data platform PM Q&amp;A</title></head><body><article>"
        "<h1>So You Want to Be a Data Platform PM?</h1>"
        "<p>I run office hours for PMs considering data platform roles. These are the questions I get most "
        "often, with my answers, collected over several years of conversations with people like you.</p>"
        "<p><strong>What does a data platform PM own?</strong></p>"
        "<p>The internal systems that let a company collect, store, process, govern, and use data: event "
        "tracking and ingestion, the warehouse, transformation tooling and the data catalog.</p>"
        "<p><strong>Do I need to be technical?</strong></p>"
        "<p>More than for most PM roles. You should be comfortable reading SQL and talking about schemas with "
        "the engineers who build the pipelines you own.</p></article></body></html>", encoding="utf-8")
    stored = tmp_path / "faq.md"
    stored.write_text(to_stored_text("faq", convert_file(page), "2026-12-02"), encoding="utf-8")
    by_text = {c.text: c.section for c in chunk_document(read_document(stored))}
    (owns,) = [t for t in by_text if t.startswith("The internal systems")]
    assert by_text[owns].endswith("What does a data platform PM own?")
    (technical,) = [t for t in by_text if t.startswith("More than for most PM roles")]
    assert by_text[technical].endswith("Do I need to be technical?")
    assert not any("**" in t for t in by_text)


def test_html_with_only_navigation_is_refused_saying_why():
    with pytest.raises(ConversionError, match="navigation-only.html has no main text"):
        convert_file(NAV_ONLY)


def test_binary_file_named_html_is_refused(tmp_path):
    path = tmp_path / "photo.html"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(ConversionError, match="photo.html looks binary"):
        convert_file(path)


def test_html_is_recognised_by_its_content_when_the_suffix_is_unknown(tmp_path):
    path = tmp_path / "saved-page"
    path.write_bytes(ARTICLE.read_bytes())
    assert convert_file(path).format == "html"


# --- PDF ------------------------------------------------------------------------------------------

def test_pdf_text_is_extracted_and_wrapped_lines_are_joined(tmp_path):
    path = make_pdf(tmp_path / "negotiation.pdf", [NEGOTIATION_LINES], title="Salary negotiation for PMs",
                    author="Sam Lee")
    doc = convert_file(path)
    assert doc.format == "pdf" and doc.suffix == ".txt"
    assert doc.title == "Salary negotiation for PMs" and doc.author == "Sam Lee"
    assert "A higher level moves every band of the offer, while" in doc.text
    assert doc.text.split("\n")[0] == "Salary negotiation for product managers"  # heading line kept apart


def test_pdf_without_a_title_uses_its_first_line(tmp_path):
    path = make_pdf(tmp_path / "scan_0042.pdf", [NEGOTIATION_LINES])
    assert convert_file(path).title == "Salary negotiation for product managers"


def test_pdf_pages_are_all_read(tmp_path):
    path = make_pdf(tmp_path / "two.pdf", [NEGOTIATION_LINES, ["Page two says equity vests over four years."]])
    assert "equity vests over four years" in convert_file(path).text


def test_pdf_without_a_text_layer_is_refused_saying_why(tmp_path):
    path = make_pdf(tmp_path / "scanned.pdf", [[], []])
    assert len(PdfReader(path).pages) == 2  # a valid PDF, only without text
    with pytest.raises(ConversionError, match=r"scanned.pdf has no text layer \(a scanned PDF\?\); run it through OCR"):
        convert_file(path)


def test_damaged_pdf_is_refused(tmp_path):
    path = tmp_path / "broken.pdf"
    good = make_pdf(tmp_path / "good.pdf", [NEGOTIATION_LINES]).read_bytes()
    path.write_bytes(good[:200])
    with pytest.raises(ConversionError, match="broken.pdf is not a readable PDF"):
        convert_file(path)


def test_password_protected_pdf_is_refused(tmp_path):
    path = make_pdf(tmp_path / "locked.pdf", [NEGOTIATION_LINES], password="secret")
    with pytest.raises(ConversionError, match="locked.pdf is password-protected"):
        convert_file(path)


def test_reflow_keeps_sentences_and_list_items_on_their_own_lines():
    text = "Intro line\nThe first sentence ends here.\nNext sentence, which is\nwrapped in two.\n- item one\n- item two"
    assert reflow(text).split("\n") == [
        "Intro line", "The first sentence ends here.", "Next sentence, which is wrapped in two.",
        "- item one", "- item two",
    ]


# --- markdown, text and the stored form -----------------------------------------------------------

def test_markdown_keeps_its_own_front_matter(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("---\nid: my-notes\ntitle: My notes\nauthor: Ann\norigin: https://example.com/notes\n---\n"
                    "# Heading\nSome text about PM interviews.\n", encoding="utf-8")
    doc = convert_file(path)
    assert (doc.id, doc.title, doc.author, doc.origin, doc.format) == (
        "my-notes", "My notes", "Ann", "https://example.com/notes", "markdown")
    assert document_id(doc, path) == "my-notes"


def test_a_header_id_equal_to_the_file_name_is_still_the_documents_own(tmp_path):
    path = tmp_path / "foo.md"
    path.write_text("---\nid: foo\ntitle: Bar Baz\n---\nSome text about PM interviews.\n", encoding="utf-8")
    doc = convert_file(path)
    assert doc.id == "foo" and document_id(doc, path) == "foo"


def test_text_without_header_gets_an_id_from_its_title_and_its_file_name_as_origin(tmp_path):
    path = tmp_path / "download (3).txt"
    path.write_text("# Ten questions PM interviewers ask\nWhy this company? Why now?\n", encoding="utf-8")
    doc = convert_file(path)
    assert document_id(doc, path) == "ten-questions-pm-interviewers-ask"
    assert doc.origin == path.name and str(path.parent) not in doc.origin


def test_long_titles_make_ids_cut_at_a_word():
    doc = convert_file(ARTICLE)
    long = type(doc)(**{**doc.__dict__, "title": "A " + "very " * 30 + "long title"})
    slug = document_id(long, ARTICLE)
    assert len(slug) <= 60 and not slug.endswith("-") and slug.endswith("very")


@pytest.mark.parametrize("name, content, why", [
    ("latin1.txt", "Caf\u00e9 au lait.\n".encode("latin-1"), "not UTF-8"),
    ("empty.md", b"", "has no text"),
    ("data.docx", b"PK\x03\x04 zip bytes", "not a supported type"),
])
def test_unreadable_text_files_are_refused_naming_them(tmp_path, name, content, why):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConversionError, match=why) as info:
        convert_file(path)
    assert name in str(info.value)


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(ConversionError, match="does not exist"):
        convert_file(tmp_path / "nope.pdf")
    with pytest.raises(ConversionError, match="is a folder"):
        convert_file(tmp_path)


def test_stored_text_reads_back_with_the_same_metadata_and_text(tmp_path):
    doc = convert_file(ARTICLE)
    path = tmp_path / "x.md"
    path.write_text(to_stored_text("career-switch", doc, "2026-11-22"), encoding="utf-8")
    back = read_document(path)
    assert (back.id, back.title, back.author, back.origin) == ("career-switch", doc.title, doc.author, doc.origin)
    assert back.text == doc.text
