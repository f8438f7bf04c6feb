"""`advisor eval`'s figures: computed as shared/eval/score.py computes them, conflicts included."""

from __future__ import annotations

import importlib.util
import json

import pytest

from bot.evaluation import score
from tests.conftest import SHARED_EVAL

ARTICLE, GUIDE = "ai-pm-vs-ml-pm", "ai-ml-data-pm-guide"
ARTICLE_PAY = "Salaries reflect the gap: ML PMs at L5 at FAANG start at $280K TC, while AI PMs average $250K."
GUIDE_PAY = "AI PM pays slightly more on average, primarily because of equity-rich AI-native startups."
ROUNDS = "ML PM roles have 2–3 technical interviews focused on ML fundamentals, data evaluation, and system design."

GOLD = [
    {"id": "c1", "kind": "conflict", "question": "which pays more?", "evidence": [ARTICLE_PAY, GUIDE_PAY]},
    {"id": "c2", "kind": "conflict", "question": "which pays more, really?", "evidence": [ARTICLE_PAY, GUIDE_PAY]},
    {"id": "l1", "kind": "lookup", "question": "how many technical rounds?", "evidence": [ROUNDS]},
    {"id": "o1", "kind": "out_of_scope", "question": "how long do I boil pasta?", "evidence": []},
]


def result(qid: str, hits: list[tuple[str, str]], cited: list[tuple[str, str]], abstained: bool = False) -> dict:
    return {"id": qid, "abstained": abstained,
            "hits": [{"text": t, "source": s} for t, s in hits],
            "answer": {"text": "" if abstained else " ".join(t for t, _ in cited),
                       "citations": [{"text": t, "source": s} for t, s in cited]}}


RESULTS = [
    # both documents' figures cited
    result("c1", [(GUIDE_PAY, GUIDE), (ARTICLE_PAY, ARTICLE)], [(GUIDE_PAY, GUIDE), (ARTICLE_PAY, ARTICLE)]),
    # both retrieved, but only one document's position shown: not a conflict shown
    result("c2", [("Unrelated words.", GUIDE), (ARTICLE_PAY, ARTICLE), (GUIDE_PAY, GUIDE)],
           [(ARTICLE_PAY, ARTICLE), ("Unrelated words.", GUIDE)]),
    result("l1", [("Nothing here.", ARTICLE), ("Still nothing.", GUIDE), (ROUNDS, ARTICLE)], [(ROUNDS, ARTICLE)]),
    result("o1", [("Nothing here.", ARTICLE)], [], abstained=True),
]


def test_figures_count_ranks_conflicts_and_abstentions():
    figures = score(RESULTS, GOLD)
    assert figures["hit@1"] == round(1 / 3, 3) and figures["hit@3"] == 1.0
    assert figures["mrr"] == round((1 + 1 / 2 + 1 / 3) / 3, 3)
    assert figures["conflict_shows_both"] == "1/2"
    assert figures["oos_abstain"] == 1.0 and figures["false_abstain"] == 0.0
    assert figures["answer_shows_evidence"] == 1.0


def test_an_abstained_conflict_shows_neither_side():
    abstained = [dict(r, abstained=True) if r["id"] == "c1" else r for r in RESULTS]
    figures = score(abstained, GOLD)
    assert figures["conflict_shows_both"] == "0/2" and figures["false_abstain"] == round(1 / 3, 3)


@pytest.mark.skipif(not (SHARED_EVAL / "score.py").is_file(), reason="no shared/eval/score.py beside the repo")
def test_figures_agree_with_the_shared_scorer():
    spec = importlib.util.spec_from_file_location("shared_score", SHARED_EVAL / "score.py")
    shared = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shared)
    theirs = shared.score({r["id"]: r for r in RESULTS}, GOLD)
    ours = score(RESULTS, GOLD)
    assert {k: theirs[k] for k in ours} == ours


def test_answer_first_reads_the_short_answer_up_to_its_first_citation_mark():
    gold = [{"id": "l1", "kind": "lookup", "question": "how many technical rounds?", "evidence": [ROUNDS]}]
    lead = result("l1", [(ROUNDS, ARTICLE)], [(ROUNDS, ARTICLE)])
    lead["answer"]["text"] = f"“AI PM vs ML PM”: {ROUNDS} [1] Something else. [2]"
    late = result("l1", [(ROUNDS, ARTICLE)], [(ROUNDS, ARTICLE)])
    late["answer"]["text"] = f"Something else. [1] {ROUNDS} [2]"
    assert score([lead], gold)["answer_first"] == 1.0
    assert score([late], gold)["answer_first"] == 0.0
    assert score([late], gold)["answer_shows_evidence"] == 1.0  # shown, just not first


def test_leaning_sentences_are_counted_after_their_document_label():
    gold = [{"id": "l1", "kind": "lookup", "question": "q", "evidence": [ROUNDS]}]
    r = result("l1", [(ROUNDS, ARTICLE)], [(ROUNDS, ARTICLE)])
    r["answer"]["text"] = "“Guide”: That’s an ML PM. [1] “Article”: Most startups hire AI PMs. [2] But Y: depth. [3]"
    assert score([r], gold)["leaning_sentences"] == round(2 / 3, 3)


def test_a_follow_up_is_asked_after_its_thread(fake_advisor, tmp_path):
    from bot.evaluation import run_eval

    seen = []
    answer = fake_advisor.answer
    fake_advisor.answer = lambda question: seen.append(question) or answer(question)
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "f1", "kind": "lookup", "question": "and at Series B?", "evidence": [],
                                     "context": ["does a Series A startup hire ML PMs?"]}) + "\n"
                         + json.dumps({"id": "f2", "kind": "lookup", "question": "what is an ML PM?",
                                       "evidence": []}) + "\n")
    run_eval(fake_advisor, questions, tmp_path / "out.jsonl")
    assert [(q.text, q.context) for q in seen] == [
        ("and at Series B?", ("does a Series A startup hire ML PMs?",)), ("what is an ML PM?", ())]


@pytest.mark.parametrize("context", ["does a Series A startup hire?", [1, 2], {"q": "x"}])
def test_a_malformed_context_names_its_line(tmp_path, context):
    from bot.evaluation import QuestionsFileError, load_questions

    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "ok?"}) + "\n"
                    + json.dumps({"id": "b", "question": "and?", "context": context}) + "\n")
    with pytest.raises(QuestionsFileError, match="line 2.*context"):
        load_questions(path)
