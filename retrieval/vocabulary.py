"""The types both layers speak: a Question in, an Answer with its Citations out, and the ReplyStatus of a reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only a type hint here: the vocabulary imports nothing of the retrieval machinery
    from retrieval.search import Hit

__all__ = ["Answer", "AnswerSentence", "Citation", "Question", "ReplyStatus"]


@dataclass(frozen=True)
class Question:
    """A question as any platform delivers it: no Slack or Discord type in here."""

    text: str
    user: str = ""  # platform user id, raw; the store keeps only a salted hash
    platform: str = "cli"  # cli | console | slack | discord
    channel: str = ""
    thread: str = ""  # the conversation the question belongs to; "" outside threads
    context: tuple[str, ...] = field(default=())  # earlier questions of the same thread, oldest first


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
    """One sentence of the short answer and the citation that backs it."""

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
    suggestions: tuple[str, ...] = ()  # when not covered: the nearest headings the documents do cover

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "abstained": self.abstained,
            "text": self.text,
            "sentences": [{"text": s.text, "citation": s.citation} for s in self.sentences],
            "citations": [c.__dict__ for c in self.citations],
            "written_by": self.written_by,
            "suggestions": list(self.suggestions),
        }


class ReplyStatus(str, Enum):
    """What the chat service made of a question. The values are what logs and JSON records show."""

    ANSWERED = "answered"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    RATE_LIMITED = "rate_limited"
    BUSY = "busy"
    DUPLICATE = "duplicate"  # the same question from the same place moments ago: nothing is sent
    ERROR = "error"

    def __str__(self) -> str:  # "answered", not "ReplyStatus.ANSWERED", in f-strings and %s
        return self.value
