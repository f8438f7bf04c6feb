"""Suggested questions drawn from the corpus: its section headings that are questions, for prompts and autocomplete."""

from __future__ import annotations

import logging
import re
import threading

logger = logging.getLogger(__name__)

SECTION_SEPARATOR = " › "  # how the chunker joins a section title and the question under it
MAX_QUESTION_CHARS = 100  # Discord's limit on a choice; the chunker's headings are no longer anyway
_QUOTES = "\"”’)"


def questions_of(sections) -> list[str]:
    """The headings of `sections` ("FAQ › Is AI PM a real technical role?") that are questions, each once,
    in the order given."""
    seen: dict[str, str] = {}
    for section in sections:
        for part in (section or "").split(SECTION_SEPARATOR):
            part = " ".join(part.split())
            if part.rstrip(_QUOTES).endswith("?") and 8 <= len(part) <= MAX_QUESTION_CHARS:
                seen.setdefault(part.casefold(), part)
    return list(seen.values())


def _spread(by_document: list[list[str]]) -> list[str]:
    """One question from each document in turn, so that the first few cover the whole corpus."""
    spread, depth = [], max((len(q) for q in by_document), default=0)
    for i in range(depth):
        spread += [questions[i] for questions in by_document if i < len(questions)]
    return spread


class SectionQuestions:
    """The corpus's section questions for an advisor, recomputed when the index it answers from changes.

    Works with any advisor: one without an engine (a test double) simply has no section questions.
    """

    def __init__(self, advisor):
        self.advisor = advisor
        self._lock = threading.Lock()
        self._generation: object = None
        self._questions: list[str] = []

    def all(self) -> list[str]:
        """Every section question, spread across documents. Blocking on the first call: call it from a worker
        thread (it reads the loaded index, and notices a newer one)."""
        engine = getattr(self.advisor, "engine", None)
        if engine is None:
            return []
        try:
            retriever = engine.retriever  # also starts loading a newer index generation, if there is one
            generation = engine.generation
            with self._lock:
                if generation == self._generation:
                    return list(self._questions)
            by_document: dict[str, list[str]] = {}
            for chunk in retriever.index.chunks:
                by_document.setdefault(chunk.doc_id, []).append(chunk.section)
            questions = _spread([questions_of(sections) for sections in by_document.values()])
        except Exception:  # suggestions are a nicety: never let them stop an answer
            logger.exception("Could not read the section questions of the corpus")
            return []
        with self._lock:
            self._generation, self._questions = generation, questions
        return list(questions)

    def first(self, count: int) -> list[str]:
        return self.all()[:count]

    def matching(self, typed: str, count: int = 25) -> list[str]:
        """Up to `count` questions for what the user has typed so far: those with all its words first, then those
        with any; every question when nothing is typed."""
        questions = self.all()
        words = [w for w in re.findall(r"\w+", (typed or "").casefold()) if len(w) > 1]
        if not words:
            return questions[:count]

        def score(question: str) -> tuple[int, int]:
            text = question.casefold()
            found = sum(w in text for w in words)
            return (found == len(words), found)

        ranked = sorted((q for q in questions if score(q)[1]), key=lambda q: score(q), reverse=True)
        return ranked[:count]
