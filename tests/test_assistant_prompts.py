"""Suggested questions from the corpus's section headings: which headings count, spread, matching, and refresh."""

from __future__ import annotations

from bot.assistant_prompts import SectionQuestions, questions_of
from bot.core import Advisor
from retrieval.engine import Engine
from retrieval.fake_embedder import HashingEmbedder

NEW_DOCUMENT = """# Moving into ML product management

## Do ML PMs need a PhD?
No. Most ML PMs hired in 2026 hold no PhD; hiring managers ask for shipped ML products instead.
"""


def test_only_headings_that_are_questions_count_once_each():
    sections = ["AI PM vs ML PM: what the titles really mean", "FAQ › Is AI PM a real technical role?",
                "Which role is more future-proof?", "FAQ › Is AI PM a real technical role?",
                "QUICK FACTS", "Guide › Profile / Best fit", "?", "Why?"]
    assert questions_of(sections) == ["Is AI PM a real technical role?", "Which role is more future-proof?"]


def test_the_shipped_corpus_gives_its_faq_and_question_headings(fake_advisor):
    questions = SectionQuestions(fake_advisor).all()
    assert "Do startups actually hire ML PMs, or is it just AI PM?" in questions
    assert "Is AI PM a real technical role?" in questions
    assert all(q.endswith("?") and len(q) <= 100 for q in questions)
    assert len(questions) == len(set(questions))


def test_typed_words_pick_the_questions_that_have_them(fake_advisor):
    questions = SectionQuestions(fake_advisor)
    assert questions.matching("startups hire")[0] == "Do startups actually hire ML PMs, or is it just AI PM?"
    assert questions.matching("future proof") == ["Which role is more future-proof?"]
    assert questions.matching("zzzz") == []
    assert questions.matching("", count=3) == questions.all()[:3]


def test_the_questions_follow_the_index_when_documents_change(corpus_dir, tmp_path):
    engine = Engine(corpus_dir, tmp_path / "index", HashingEmbedder(), check_seconds=0)
    engine.ensure_index()
    questions = SectionQuestions(Advisor(engine))
    before = questions.all()
    assert "Do ML PMs need a PhD?" not in before
    (corpus_dir / "ml-pm-phd.md").write_text(NEW_DOCUMENT)
    engine.ensure_index()  # what `advisor index` does; a running bot picks the new generation up the same way
    after = questions.all()
    assert "Do ML PMs need a PhD?" in after and set(before) < set(after)


def test_an_advisor_without_an_index_suggests_nothing():
    class Plain:
        def answer(self, question):
            raise AssertionError("not asked")

    assert SectionQuestions(Plain()).all() == []
