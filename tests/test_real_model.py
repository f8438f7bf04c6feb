"""End to end with the real all-MiniLM-L6-v2 model and a real FAISS index over the shipped corpus.

The model is loaded and the index built once per session (the `real_advisor` fixture); every test reuses them.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from bot.evaluation import run_eval
from retrieval.vocabulary import Question
from tests.conftest import ROOT, SHARED_EVAL
from tests.support import assert_well_formed

pytestmark = pytest.mark.model

ANSWERABLE = [
    "does a Series A startup hire ML PMs?",
    "is ML PM or AI PM better pay?",
    "what does an ML PM do day-to-day?",
    "can an AI PM move into an ML PM role?",
    "which role is more future-proof?",
]
OFF_TOPIC = [
    "how long do I boil pasta?",
    "what's the weather in SF this weekend?",
]


def ask(advisor, text: str):
    return advisor.answer(Question(text=text, platform="cli"))


def test_index_is_real_faiss_over_normalised_vectors(real_advisor, real_embedder):
    import faiss

    index = real_advisor.engine.retriever.index
    assert isinstance(index.faiss_index, faiss.Index)
    assert index.faiss_index.ntotal == len(index.chunks) > 50
    assert index.manifest.model == "all-MiniLM-L6-v2" and index.manifest.dim == real_embedder.dim == 384
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-3)


def test_series_a_question_is_answered_with_series_b_evidence(real_advisor):
    answer = ask(real_advisor, "does a Series A startup hire ML PMs?")
    assert not answer.abstained
    assert answer.citations
    assert any("Series B+" in c.quote for c in answer.citations), [c.quote for c in answer.citations]
    assert all(c.doc_id == "ai-pm-vs-ml-pm" for c in answer.citations if "Series B+" in c.quote)


def test_paraphrase_finds_the_same_evidence(real_advisor):
    result = real_advisor.engine.retriever.search("when do startups start hiring dedicated ML product managers?")
    assert any("True ML PMs emerge at Series B+" in h.chunk.text for h in result.hits[:3])


@pytest.mark.parametrize("question", OFF_TOPIC + ["xyzzy plugh frobnicate"])
def test_off_topic_questions_abstain_without_citations(real_advisor, question):
    answer = ask(real_advisor, question)
    assert answer.abstained
    assert answer.citations == () and answer.sentences == ()
    assert "don't cover" in answer.text
    assert "[1]" not in answer.text


def test_salary_conflict_cites_both_documents(real_advisor):
    answer = ask(real_advisor, "is ML PM or AI PM better pay?")
    assert not answer.abstained
    assert {c.doc_id for c in answer.citations} == {"ai-pm-vs-ml-pm", "ai-ml-data-pm-guide"}
    shown = answer.text + " ".join(c.quote for c in answer.citations)
    assert "$" in shown, "the figures themselves are shown"


@pytest.mark.parametrize("question", ANSWERABLE)
def test_every_answer_sentence_ends_with_an_existing_citation(real_advisor, question):
    answer = ask(real_advisor, question)
    assert not answer.abstained, question
    numbers = {c.number for c in answer.citations}
    # the text is a run of "<sentence> [n]", then maybe "See also [m], [k]." for passages cited without one
    body, _, see_also = answer.text.partition(" See also ")
    pieces = re.split(r"\s*\[(\d+)\]\s*", body)
    sentences, refs, tail = pieces[0::2], pieces[1::2], pieces[-1]
    assert tail == "", f"uncited text at the end: {tail!r}"
    assert all(s.strip() for s in sentences[:-1]), "every [n] follows a sentence"
    further = [int(n) for n in re.findall(r"\[(\d+)\]", see_also)]
    assert re.fullmatch(r"(\[\d+\](, )?)+\.", see_also) or not see_also, see_also
    assert sorted([int(n) for n in refs] + further) == sorted(numbers)
    assert len(answer.sentences) == len(refs)
    for sentence in answer.sentences:
        assert sentence.citation in numbers
        assert f"{sentence.text} [{sentence.citation}]" in answer.text
    assert_well_formed(answer, real_advisor)


def test_questions_are_checked_before_search(real_advisor):
    from bot.core import QuestionError

    with pytest.raises(QuestionError):
        ask(real_advisor, "   ")
    with pytest.raises(QuestionError):
        ask(real_advisor, "why? " * 2000)


@pytest.mark.skipif(not (SHARED_EVAL / "dev2.jsonl").is_file(), reason="no shared/eval/dev2.jsonl beside the repo")
def test_both_labelled_sets_hold_their_measured_figures(real_advisor, tmp_path):
    """dev + dev2 through advisor eval: the figures the README reports (in-sample), as floors."""
    both = tmp_path / "both.jsonl"
    both.write_text((SHARED_EVAL / "dev.jsonl").read_text() + (SHARED_EVAL / "dev2.jsonl").read_text())
    out = tmp_path / "results.jsonl"
    figures = run_eval(real_advisor, both, out)
    assert len(out.read_text().splitlines()) == 92
    print(figures)
    assert figures["hit@3"] >= 0.9, figures
    assert figures["answer_first"] >= 0.66, figures
    assert figures["answer_shows_evidence"] >= 0.88, figures
    assert figures["oos_abstain"] >= 0.68, figures
    assert figures["false_abstain"] <= 0.05, figures
    assert int(figures["conflict_shows_both"].split("/")[0]) >= 7, figures
    assert figures["shown_chars_median"] <= 1000, figures
    assert figures["leaning_sentences"] <= 0.05, figures


def test_a_third_follow_up_keeps_the_thread_topic(real_advisor):
    """'what about seed stage?' after 'and at Series B?' is still about hiring ML PMs at startups."""
    thread = ("does a Series A startup hire ML PMs?", "and at Series B?")
    answer = real_advisor.answer(Question(text="what about seed stage?", context=thread))
    assert not answer.abstained
    assert "CTO or a founding engineer" in answer.text
    alone = real_advisor.answer(Question(text="what about seed stage?", context=thread[-1:]))
    assert "CTO or a founding engineer" not in alone.text  # the last question alone loses the topic


def test_questions_never_tuned_on_are_answered_or_refused_well(real_advisor, tmp_path):
    """benchmarks/heldout*.jsonl: questions written apart from the labelled sets, never tuned on."""
    questions = tmp_path / "heldout.jsonl"
    questions.write_text("".join(p.read_text() for p in sorted((ROOT / "benchmarks").glob("heldout*.jsonl"))))
    figures = run_eval(real_advisor, questions, tmp_path / "results.jsonl")
    print(figures)
    # floors a little below the figures over all 290 (hit@3 0.847, answer_first 0.668, evidence 0.808, oos 0.672;
    # oos was 0.698 over the first 250 before the abstainer's re-fit on the question vectors in the corpus's word for
    # the role), not targets: heldout6 to heldout10 (192 questions by other hands from the two sources alone, many
    # long and chatty) are harder than the first 98
    assert figures["hit@3"] >= 0.8, figures
    assert figures["answer_first"] >= 0.62, figures
    assert figures["answer_shows_evidence"] >= 0.79, figures
    assert figures["oos_abstain"] >= 0.66, figures
    assert figures["false_abstain"] <= 0.05, figures
