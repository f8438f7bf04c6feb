"""Extractive answers: the best sentences of the retrieved passages, each cited, or a plain "not covered"."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retrieval.index_store import LoadedIndex
from retrieval.search import Hit, SearchResult

MAX_SENTENCES = 3
MAX_QUOTE_CHARS = 300
SENTENCE_MARGIN = 0.12  # a further sentence must score within this of the best one
OTHER_SOURCE_MARGIN = 0.2  # a second document is heard when its best sentence is this close


@dataclass(frozen=True)
class Citation:
    """A numbered source passage: which document, which section, the quoted words."""

    number: int
    doc_id: str
    title: str
    section: str
    quote: str
    chunk_id: str = ""


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

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "abstained": self.abstained,
            "text": self.text,
            "sentences": [{"text": s.text, "citation": s.citation} for s in self.sentences],
            "citations": [c.__dict__ for c in self.citations],
        }


def not_covered(question: str, titles: list[str]) -> Answer:
    """The plain abstention: nothing invented, and where the user could look instead."""
    known = "; ".join(titles[:5]) + (f" and {len(titles) - 5} more" if len(titles) > 5 else "")
    text = (
        "The documents I know don't cover this, so I won't guess. "
        f"They are about: {known}. Try rephrasing, or add a document that covers it."
    )
    return Answer(question=question, text=text, abstained=True)


def _quote(sentences: list[str], centre: int, limit: int = MAX_QUOTE_CHARS) -> str:
    """The sentence that answers, widened with neighbours while it stays short enough to read."""
    lo = hi = centre
    text = sentences[centre]
    while True:
        grown = False
        for candidate in (hi + 1, lo - 1):
            if 0 <= candidate < len(sentences):
                a, b = min(lo, candidate), max(hi, candidate)
                wider = " ".join(sentences[a:b + 1])
                if len(wider) <= limit:
                    lo, hi, text, grown = a, b, wider, True
                    break
        if not grown:
            break
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0] + "…"
    prefix = "… " if lo > 0 else ""
    suffix = " …" if hi < len(sentences) - 1 else ""
    return f"{prefix}{text}{suffix}"


@dataclass
class _Candidate:
    hit: Hit
    index: int  # sentence index within the chunk
    sentence: str
    score: float


def _candidates(result: SearchResult, index: LoadedIndex, hits: list[Hit]) -> list[_Candidate]:
    qv = result.query_vector
    out = []
    for hit in hits:
        start, end = index.sentence_rows[hit.position]
        sentences = index.sentences[hit.position]
        sims = index.vectors[start:end] @ qv if end > start else np.zeros(0)
        for i, (sentence, sim) in enumerate(zip(sentences, sims)):
            out.append(_Candidate(hit, i, sentence, 0.5 * float(sim) + hit.score))
    out.sort(key=lambda c: -c.score)
    return out


def compose(question: str, result: SearchResult, index: LoadedIndex) -> Answer:
    """Pick one to three sentences from the hits, from more than one document when they weigh in."""
    cands = _candidates(result, index, result.hits)
    if not cands:
        return not_covered(question, sorted({c.doc_title for c in index.chunks}))
    best = cands[0].score
    chosen: list[_Candidate] = [cands[0]]
    docs = {cands[0].hit.chunk.doc_id}
    # another document's view, if it is close: conflicts and comparisons need both sides
    other = next((c for c in cands if c.hit.chunk.doc_id not in docs and c.score >= best - OTHER_SOURCE_MARGIN), None)
    if other:
        chosen.append(other)
        docs.add(other.hit.chunk.doc_id)
    for c in cands[1:]:
        if len(chosen) >= MAX_SENTENCES or c.score < best - SENTENCE_MARGIN:
            break
        if all(c.hit.position != x.hit.position for x in chosen):
            chosen.append(c)
    chosen.sort(key=lambda c: -c.score)

    citations: list[Citation] = []
    sentences: list[AnswerSentence] = []
    for c in chosen:
        chunk = c.hit.chunk
        number = len(citations) + 1
        all_sentences = index.sentences[c.hit.position]
        citations.append(Citation(
            number=number, doc_id=chunk.doc_id, title=chunk.doc_title, section=chunk.section,
            quote=_quote(all_sentences, c.index), chunk_id=chunk.id,
        ))
        sentences.append(AnswerSentence(text=c.sentence, citation=number))
    multi = len({c.doc_id for c in citations}) > 1
    parts = []
    for s in sentences:
        cite = citations[s.citation - 1]
        lead = f"{cite.title} says: " if multi else ""
        parts.append(f"{lead}{s.text} [{s.citation}]")
    return Answer(
        question=question, text=" ".join(parts), citations=tuple(citations),
        sentences=tuple(sentences), hits=tuple(result.hits),
    )
