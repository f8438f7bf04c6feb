"""The platform-neutral core: a Question goes in, an Answer with citations comes out."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from bot.llm import AnswerWriter
from bot.settings import Settings
from retrieval.calibration import Calibration
from retrieval.embedding import load_embedder
from retrieval.engine import Engine, IndexStatus, QuestionError, check_question
from retrieval.vocabulary import Answer, Question

__all__ = ["Advisor", "QuestionError", "check_question", "to_valid_text"]  # the vocabulary: retrieval.vocabulary

logger = logging.getLogger(__name__)


def to_valid_text(text: str) -> str:
    """`text` with every code point that is not valid Unicode text replaced by U+FFFD.

    Lone surrogates come from undecodable bytes (Python reads a command line's invalid UTF-8 that way) or from
    JSON escapes such as "\\ud800"; tokenizers, SQLite and terminals refuse them. A valid pair is kept as its
    character.
    """
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class Advisor:
    """Answers questions from one corpus. Synchronous and CPU-bound: adapters call it in a worker thread."""

    def __init__(self, engine: Engine, writer: AnswerWriter | None = None):
        self.engine = engine
        self.writer = writer  # writes the short answer with a chat model when ADVISOR_LLM_URL is set

    @classmethod
    def from_settings(cls, settings: Settings, embedder=None) -> "Advisor":
        embedder = embedder or load_embedder(settings.model)
        writer = AnswerWriter.from_settings(settings)
        if writer is not None:
            logger.info("answers are written by %s at %s from the retrieved passages", writer.model,
                        urlsplit(writer.endpoint).hostname)  # never userinfo or key
        calibration = Calibration.for_model(embedder.name, settings.data_dir)
        engine = Engine(settings.corpus_dir, settings.index_dir, embedder, calibration=calibration,
                        check_seconds=settings.index_check_seconds, query_threads=settings.query_threads)
        return cls(engine, writer)

    def prepare(self, force: bool = False, progress=None) -> IndexStatus:
        """Load (or build) the index now rather than on the first question."""
        return self.engine.ensure_index(force=force, progress=progress)

    def documents(self) -> list[tuple[str, str]]:
        """(id, title) of every document the advisor knows."""
        self.engine.retriever  # noqa: B018 - loads the index and document list on first use
        return [(d.id, d.title) for d in self.engine.documents]

    def answer(self, question: Question) -> Answer:
        """Answer a question; a follow-up in a thread is read with the thread's last questions.

        Raises:
            QuestionError: the question is empty or too long (its message is for the user).
        """
        # the engine gets valid text only: a lone surrogate would crash the tokenizer
        context = tuple(to_valid_text(c) for c in question.context)
        answer = self.engine.answer(to_valid_text(question.text), context=context)
        if self.writer is not None:
            answer = self.writer.write(answer)  # not-covered answers pass through; any failure falls back
        return answer
