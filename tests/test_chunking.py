"""Structure-aware chunking: question and title sections, FAQ nesting, table rows with headers, lists, sizes."""

from __future__ import annotations

import pytest

from retrieval.chunking import MAX_CHUNK_CHARS, MERGED_SHORT_CHARS, chunk_document, split_sentences
from retrieval.documents import Document, clean_text, load_corpus
from tests.conftest import SHIPPED_CORPUS

SALARY_ROW = "Salary 2026 (US senior): AI PM $280-420k, ML PM $260-380k, Data PM $230-340k"
SIZE_SLACK = 500  # "about MAX_CHUNK_CHARS": a little room for joining


@pytest.fixture(scope="module")
def shipped_chunks():
    documents, _ = load_corpus(SHIPPED_CORPUS)
    return [c for d in documents for c in chunk_document(d)]


def doc(text: str, title: str = "User Notes", doc_id: str = "user-notes") -> Document:
    return Document(id=doc_id, title=title, text=clean_text(text), path=f"{doc_id}.md")


def sections_of(text: str) -> dict[str, str]:
    """Each passage's text -> its section, for a user document's text."""
    return {c.text: c.section for c in chunk_document(doc(text))}


def chunk_with(chunks, needle: str):
    found = [c for c in chunks if needle in c.text]
    assert found, f"no chunk holds {needle!r}"
    return found[0]


# --- the shipped corpus -------------------------------------------------------------------------

def test_question_heading_becomes_the_section(shipped_chunks):
    chunk = chunk_with(shipped_chunks, "True ML PMs emerge at Series B+")
    assert chunk.section == "Do startups actually hire ML PMs, or is it just AI PM?"
    assert chunk.doc_id == "ai-pm-vs-ml-pm"


@pytest.mark.parametrize("needle, question", [
    ("Taking online courses isn’t enough", "Can an AI PM transition to an ML PM role?"),
    ("AI PMs risk becoming obsolete", "Which role is more future-proof?"),
    ("The technical bar is lower than ML PM", "Is AI PM a real technical role?"),
])
def test_faq_questions_are_nested_under_faq(shipped_chunks, needle, question):
    section = chunk_with(shipped_chunks, needle).section
    assert section.startswith("FAQ")
    assert section.endswith(question)


def test_headings_are_not_chunks_of_their_own(shipped_chunks):
    texts = {c.text for c in shipped_chunks}
    assert "FAQ" not in texts
    assert "Do startups actually hire ML PMs, or is it just AI PM?" not in texts


def test_salary_table_row_is_one_chunk_with_header_labels(shipped_chunks):
    rows = [c for c in shipped_chunks if c.text.startswith("Salary 2026")]
    assert [c.text for c in rows] == [SALARY_ROW]
    assert rows[0].doc_id == "ai-ml-data-pm-guide"


def test_every_table_row_keeps_its_labels(shipped_chunks):
    rows = [c.text for c in shipped_chunks if c.doc_id == "ai-ml-data-pm-guide" and "Data PM $" in c.text]
    assert rows == [SALARY_ROW]
    hiring = chunk_with(shipped_chunks, "Hiring market").text
    assert "AI PM Very hot" in hiring and "Data PM Steady, growing" in hiring
    assert not any("|" in c.text for c in shipped_chunks)


def test_promotional_lines_never_reach_a_chunk(shipped_chunks):
    for chunk in shipped_chunks:
        assert "Related:" not in chunk.text and "Get the full" not in chunk.text
        assert "Amazon Kindle" not in chunk.text


def test_chunks_are_small_unless_one_sentence(shipped_chunks):
    for chunk in shipped_chunks:
        assert len(chunk.text) <= SIZE_SLACK or len(split_sentences(chunk.text)) == 1, chunk.text


def test_key_evidence_survives_chunking(shipped_chunks):
    for sentence in (
        "Salaries reflect the gap: ML PMs at L5 at FAANG start at $280K TC, while AI PMs average $250K.",
        "AI PM pays slightly more on average, primarily because of equity-rich AI-native startups.",
        "Taking online courses isn’t enough; you need documented impact on model KPIs.",
        "The signal isn’t the company stage — it’s whether the company trains its own models.",
    ):
        chunk_with(shipped_chunks, sentence)


def test_chunk_ids_are_unique_and_name_their_document(shipped_chunks):
    ids = [c.id for c in shipped_chunks]
    assert len(ids) == len(set(ids))
    assert all(c.id.startswith(f"{c.doc_id}#") for c in shipped_chunks)
    assert all(c.text.strip() for c in shipped_chunks)


def test_chunking_is_deterministic():
    documents, _ = load_corpus(SHIPPED_CORPUS)
    first = [c.content_hash for d in documents for c in chunk_document(d)]
    second = [c.content_hash for d in documents for c in chunk_document(d)]
    assert first == second


# --- user documents -------------------------------------------------------------------------------

def test_markdown_headings_become_sections():
    sections = sections_of(
        "# Interview Notes\n\nSome opening words about the loop.\n\n## Technical Rounds\n\n"
        "Expect an ML fundamentals round.\n\n### What do they ask?\n\nPrecision, recall and AUC.\n\n"
        "## Pay\n\nL5 total compensation is high."
    )
    assert sections["Some opening words about the loop."] == "Interview Notes"
    assert sections["Expect an ML fundamentals round."] == "Technical Rounds"
    assert sections["Precision, recall and AUC."] == "Technical Rounds › What do they ask?"
    assert sections["L5 total compensation is high."] == "Pay"
    assert not any(text.startswith("#") for text in sections)


def test_section_is_part_of_the_embedded_text():
    (chunk,) = [c for c in chunk_document(doc("## Pay Bands\n\nL5 total compensation is high.")) if "L5" in c.text]
    assert chunk.section == "Pay Bands"
    assert "Pay Bands" in chunk.embed_text and "L5 total compensation is high." in chunk.embed_text


def test_table_with_separator_row():
    chunks = chunk_document(doc(
        "Pay by role in 2026:\n\n| Role | Base | Equity |\n|---|:---:|---|\n"
        "| ML PM | $200k | $80k |\n| AI PM | $190k | $120k |\n\nAfter the table comes prose."
    ))
    texts = [c.text for c in chunks]
    assert "ML PM: Base $200k, Equity $80k" in texts
    assert "AI PM: Base $190k, Equity $120k" in texts
    assert not any("---" in t or "|" in t for t in texts)
    assert not any(t.startswith("Role") for t in texts), "the header row is a label, not a chunk"


def test_each_chunk_knows_what_kind_of_block_it_comes_from():
    chunks = chunk_document(doc(
        "A paragraph of prose sits before the table and is long enough to stand on its own here.\n\n"
        "| Role | Base |\n|---|---|\n| ML PM | $200k |\n\nAsk the hiring manager:\n- Who owns the eval set?"
    ))
    assert [(c.text[:12], c.kind) for c in chunks] == [
        ("A paragraph ", "paragraph"), ("ML PM: $200k", "table"), ("Ask the hiri", "list")]


def test_two_column_table_rows_read_as_label_and_value():
    chunks = chunk_document(doc("| Profile | Best fit |\n| --- | --- |\n| Statistics background | ML PM |\n"))
    assert [c.text for c in chunks] == ["Statistics background: ML PM"]


def test_list_is_grouped_with_its_intro_line():
    chunks = chunk_document(doc(
        "Some context about interviews comes first.\n\nAsk the hiring manager:\n"
        "- How often is the model retrained?\n- Who owns the eval set?\n- What is the latency budget?"
    ))
    (listing,) = [c for c in chunks if "retrained" in c.text]
    assert listing.text.startswith("Ask the hiring manager:")
    assert "Who owns the eval set?" in listing.text and "What is the latency budget?" in listing.text


def test_long_list_is_split_and_every_piece_keeps_the_intro():
    items = "\n".join(f"- Item number {n} explains one more thing a PM should check before launch." for n in range(20))
    chunks = chunk_document(doc(f"Before launch, check:\n{items}"))
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.text.startswith("Before launch, check:")
        assert len(chunk.text) <= SIZE_SLACK
    joined = "\n".join(c.text for c in chunks)
    assert all(f"Item number {n} " in joined for n in range(20))


def test_long_paragraph_is_split_on_sentences_without_losing_any():
    sentences = [f"Sentence {n} says something useful about ML PM hiring at large companies." for n in range(15)]
    paragraph = " ".join(sentences)
    chunks = chunk_document(doc(paragraph))
    assert len(chunks) > 1
    assert all(len(c.text) <= MAX_CHUNK_CHARS for c in chunks)
    assert " ".join(c.text for c in chunks) == paragraph


def test_single_long_sentence_stays_whole():
    sentence = "An ML PM " + ", ".join(f"owns concern number {n}" for n in range(60)) + "."
    assert len(sentence) > 2 * MAX_CHUNK_CHARS
    chunks = chunk_document(doc(sentence))
    assert [c.text for c in chunks] == [sentence]


def test_split_sentences_keeps_abbreviations_together():
    text = "Tradeoffs like precision vs. recall matter, e.g. for search. The ML PM decides. Really?"
    assert split_sentences(text) == [
        "Tradeoffs like precision vs. recall matter, e.g. for search.", "The ML PM decides.", "Really?",
    ]


def test_runs_of_short_lines_are_merged_each_on_its_own_line_up_to_a_limit():
    lines = ["They decide what good looks like.", "They sign off on data collection.",
             "They negotiate labeling budget.", "FAANG: hires across all three at scale.",
             "Healthcare: cautious about AI features."]
    chunks = chunk_document(doc("\n".join(lines)))
    assert [c.text for c in chunks] == ["\n".join(lines)]  # 5 short lines, 186 characters: one passage
    many = [f"Line {i}: a short labelled line that says one thing about hiring." for i in range(12)]
    chunks = chunk_document(doc("\n".join(many)))
    assert len(chunks) > 1 and all(len(c.text) < MERGED_SHORT_CHARS for c in chunks)
    assert [line for c in chunks for line in c.text.split("\n")] == many  # every line kept, in order


def test_a_long_paragraph_is_not_merged_with_its_short_neighbours():
    long = "This paragraph is long enough to stand as a passage of its own, " * 4 + "and it ends here."
    chunks = chunk_document(doc(f"A short line.\n{long}\nAnother short line."))
    assert [c.text for c in chunks] == ["A short line.", long, "Another short line."]


def test_line_of_only_a_closing_quote_does_not_crash():
    chunks = chunk_document(doc("He said the model retrains weekly.\n”\nThat matters for ML PMs."))
    assert any("retrains weekly" in c.text for c in chunks)


def test_long_intro_before_a_list_does_not_make_oversized_chunks():
    intro = "This sentence explains the context of the checklist in some detail. " * 8 + "Watch for:"
    chunks = chunk_document(doc(f"{intro}\n- stale eval sets\n- silent model regressions"))
    for chunk in chunks:
        assert len(chunk.text) <= SIZE_SLACK or len(split_sentences(chunk.text)) == 1


def test_a_line_wholly_in_bold_heads_the_text_after_it():
    sections = sections_of(
        "## Office hours\n\nQuestions I get most often.\n\n**What does a data platform PM own?**\n\n"
        "The internal systems that let a company collect and use data.\n\n**How to find a mentor**\n\n"
        "Ask for one conversation, not a commitment.\n\n**Good:**\n\n- ask for a specific hour"
    )
    assert sections["The internal systems that let a company collect and use data."] == \
        "Office hours › What does a data platform PM own?"
    assert sections["Ask for one conversation, not a commitment."] == "Office hours › How to find a mentor"
    assert not any("**What does" in text or "**How to" in text for text in sections)
    # a bold lead-in that its list goes on from stays with the list
    assert any(text.startswith("**Good:**") for text in sections)


def test_a_line_that_introduces_a_table_captions_its_rows_and_is_no_passage_of_its_own():
    by_text = sections_of(
        "## Resumes\n\nDifferent PM roles reward different evidence. A rough guide:\n\n"
        "| Role type | Emphasize |\n|---|---|\n| Growth PM | Experiments, funnel metrics |\n"
        "| Platform PM | Adoption by internal teams |\n\nMost insurtech PM roles sit in one of these:\n\n"
        "| Area | What you own | Key metrics |\n|---|---|---|\n| Claims | The claims flow | Cycle time |"
    )
    assert by_text["Different PM roles reward different evidence."] == "Resumes"
    assert by_text["Growth PM: Experiments, funnel metrics"] == "Resumes › A rough guide › Role type / Emphasize"
    assert by_text["Platform PM: Adoption by internal teams"] == "Resumes › A rough guide › Role type / Emphasize"
    assert by_text["Claims: What you own The claims flow, Key metrics Cycle time"] == \
        "Resumes › Most insurtech PM roles sit in one of these"
    assert not any(t.endswith(":") for t in by_text)


def test_a_short_label_before_a_list_is_read_with_its_items():
    chunks = chunk_document(doc(
        "## Analytics PM\n\nI learned to let go of the details.\n\nMetrics I track now\n\n"
        "- Number of experiments run per quarter.\n- Time from experiment end to decision."
    ))
    texts = [c.text for c in chunks]
    assert "Metrics I track now\n- Number of experiments run per quarter.\n- Time from experiment end to decision." \
        in texts
    assert "Metrics I track now" not in texts
