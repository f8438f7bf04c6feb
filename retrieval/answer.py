"""Extractive answers: the best sentences of the retrieved passages, each cited, or a plain "not covered"."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retrieval.index_store import LoadedIndex
from retrieval.search import Hit, SearchResult

MAX_SENTENCES = 3
MAX_QUOTE_CHARS = 300
MAX_ANSWER_SENTENCE_CHARS = 240
CITE_MARGIN = 0.2  # a runner-up passage is cited when its score is this close to the best
OTHER_SOURCE_MARGIN = 0.2  # a second document is heard when its best passage is this close


@dataclass(frozen=True)
class Citation:
    """A numbered source passage: which document, which section, the quoted words."""

    number: int
    doc_id: str
    title: str
    section: str
    quote: str
    chunk_id: str = ""

    @property
    def where(self) -> str:
        """"Title › Section", or just the title when the section adds nothing."""
        return self.title if not self.section or self.section == self.title else f"{self.title} › {self.section}"


@dataclass(frozen=True)
class AnswerSentence:
    text: str
    citation: int  # the number of the citation that backs it


@dataclass(frozen=True)
class Answer:
    """What the user is shown: a short answer, its citations, or an abstention."""

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    abstained: bool = False
    sentences: tuple[AnswerSentence, ...] = ()
    hits: tuple[Hit, ...] = field(default=(), compare=False, repr=False)
    written_by: str = ""  # the model that wrote the text from the cited passages; "" for extractive answers

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "abstained": self.abstained,
            "text": self.text,
            "sentences": [{"text": s.text, "citation": s.citation} for s in self.sentences],
            "citations": [c.__dict__ for c in self.citations],
            "written_by": self.written_by,
        }


def not_covered(question: str, titles: list[str], hits: tuple = ()) -> Answer:
    """The plain abstention: nothing invented, and where the user could look instead."""
    known = "; ".join(titles[:5]) + (f" and {len(titles) - 5} more" if len(titles) > 5 else "")
    text = (
        "The documents I know don't cover this, so I won't guess. "
        f"They are about: {known}. Try rephrasing, or add a document that covers it."
    )
    return Answer(question=question, text=text, abstained=True, hits=tuple(hits))


def _join(sentences: list[str]) -> str:
    """Sentences as one line of prose for the short answer; list items ("- x") read "intro: x; y; z"."""
    text = ""
    for sentence in sentences:
        if sentence.startswith("- "):
            item = sentence[2:].strip()
            text = f"{text} {item}" if not text or text.endswith(":") else f"{text.rstrip('.')}; {item}"
        else:
            text = f"{text} {sentence}" if text else sentence
    return text.strip()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _quote(sentences: list[str], centre: int, limit: int = MAX_QUOTE_CHARS) -> str:
    """The sentence that answers, widened with neighbours while it stays short enough to read."""
    lo = hi = centre
    while True:
        grown = False
        for candidate in (hi + 1, lo - 1):
            if 0 <= candidate < len(sentences):
                a, b = min(lo, candidate), max(hi, candidate)
                if len(" ".join(sentences[a:b + 1])) <= limit:
                    lo, hi, grown = a, b, True
                    break
        if not grown:
            break
    text = _clip(" ".join(sentences[lo:hi + 1]), limit)  # verbatim: a quote is the passage's own words
    prefix = "… " if lo > 0 else ""
    suffix = " …" if hi < len(sentences) - 1 else ""
    return f"{prefix}{text}{suffix}"


def _answer_sentence(sentences: list[str], sims: np.ndarray) -> tuple[int, str]:
    """The sentence closest to the question, made to stand alone: a list intro ("the loop includes:")
    carries its items, an item carries its intro, a fragment its neighbour."""
    best = int(np.argmax(sims)) if len(sims) else 0
    text = sentences[best]
    if text.endswith(":") and best + 1 < len(sentences):
        items = []
        for following in sentences[best + 1:]:
            if not following.startswith("- ") and items:
                break
            items.append(following)
            if len(_join([text, *items])) > MAX_ANSWER_SENTENCE_CHARS or not following.startswith("- "):
                break
        text = _join([text, *items])
    elif text.startswith("- ") and best > 0:
        intro = next((s for s in reversed(sentences[:best]) if not s.startswith("- ")), "")
        text = f"{intro.rstrip(':')}: {text[2:].strip()}" if intro else text[2:].strip()
    elif len(text) < 60 and best > 0:
        text = f"{sentences[best - 1]} {text}"
    return best, _clip(text, MAX_ANSWER_SENTENCE_CHARS)


def _select(hits: list[Hit]) -> list[Hit]:
    """The hits worth citing: the best, close runners-up, and another document's view if it weighs in."""
    top = hits[0].score
    chosen = [h for h in hits[:MAX_SENTENCES] if h.score >= top - CITE_MARGIN]
    if len({h.chunk.doc_id for h in chosen}) == 1:
        other = next((h for h in hits if h.chunk.doc_id != hits[0].chunk.doc_id
                      and h.score >= top - OTHER_SOURCE_MARGIN), None)
        if other is not None:
            chosen = chosen[: MAX_SENTENCES - 1] + [other]
    return chosen


def compose(question: str, result: SearchResult, index: LoadedIndex) -> Answer:
    """Cite one to three of the best passages, each with the sentence of it that answers best."""
    if not result.hits:
        return not_covered(question, sorted({c.doc_title for c in index.chunks}))
    citations: list[Citation] = []
    sentences: list[AnswerSentence] = []
    for hit in _select(result.hits):
        start, end = index.sentence_rows[hit.position]
        chunk_sentences = index.sentences[hit.position]
        sims = index.vectors[start:end] @ result.query_vector if end > start else np.zeros(0)
        centre, text = _answer_sentence(chunk_sentences, sims)
        number = len(citations) + 1
        citations.append(Citation(
            number=number, doc_id=hit.chunk.doc_id, title=hit.chunk.doc_title, section=hit.chunk.section,
            quote=_quote(chunk_sentences, centre), chunk_id=hit.chunk.id,
        ))
        sentences.append(AnswerSentence(text=text, citation=number))
    multi = len({c.doc_id for c in citations}) > 1
    parts = []
    for s in sentences:
        cite = citations[s.citation - 1]
        lead = f"“{short_title(cite.title)}”: " if multi else ""
        parts.append(f"{lead}{s.text} [{s.citation}]")
    return Answer(
        question=question, text=" ".join(parts), citations=tuple(citations),
        sentences=tuple(sentences), hits=tuple(result.hits),
    )


def short_title(title: str) -> str:
    """"AI PM vs ML PM: what the titles really mean" -> "AI PM vs ML PM", for attributions."""
    return title.split(":")[0].strip() if len(title) > 40 else title
