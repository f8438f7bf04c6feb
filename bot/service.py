"""The chat service every adapter shares: guards, follow-up memory, worker pool, store."""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, replace

from bot import messages
from bot.core import to_valid_text
from bot.guards import Busy, BoundedDict, DuplicateFilter, Limits, RateLimiter, WorkerPool
from bot.logs import ANSWERS
from bot.store import Store
from retrieval.engine import QuestionError, check_question
from retrieval.vocabulary import Answer, Question, ReplyStatus

__all__ = ["ChatService", "DeliveryError", "Limits", "Reply", "ReplyStatus", "Store"]

logger = logging.getLogger(__name__)
answers_log = logging.getLogger(ANSWERS)


@dataclass(frozen=True)
class Reply:
    """What the service makes of a question; adapters render it and send nothing for "duplicate"."""

    status: ReplyStatus
    message: str  # user-facing text when status != "answered" (one polite sentence saying what to do)
    answer: Answer | None = None
    answer_id: str = ""  # stable id of the stored answer, for feedback buttons and "share"


class DeliveryError(Exception):
    """A reply could not be sent to the user; the message says why in one line (no user content)."""


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _log_question(platform: str, reply: Reply, seconds: float, delivered: bool | None = None) -> None:
    """One record per question handled, for log collectors (JSON fields) and people (the message).

    Never the question's text (user content: the store keeps it, behind the answer_id), never a user or
    channel id, never a token: platform, outcome, time taken, which passages were cited, and whether the
    reply reached the user (None when the adapter does not say).
    """
    answer = reply.answer
    fields = {
        "event": "question",
        "platform": platform,
        "status": reply.status,
        "latency_ms": round(seconds * 1000, 1),  # from the service receiving it to the reply (queue included)
        "answer_id": reply.answer_id,
        "abstained": answer.abstained if answer is not None else None,
        "citations": [{"doc_id": c.doc_id, "chunk_id": c.chunk_id} for c in answer.citations] if answer else [],
        "written_by": getattr(answer, "written_by", "") if answer else "",  # the chat model, "" when extractive
        "delivered": delivered,
    }
    undelivered = ", not delivered" if delivered is False else ""
    if reply.status == ReplyStatus.ANSWERED:
        message = (f"Answered on {platform} in {fields['latency_ms']:.0f} ms (abstained={answer.abstained}, "
                   f"{len(answer.citations)} citations, answer {reply.answer_id}{undelivered})")
    else:
        message = f"Question on {platform} not answered: {reply.status} ({fields['latency_ms']:.0f} ms{undelivered})"
    answers_log.info(message, extra=fields)


class ChatService:
    """Answers questions from any platform, applying the guards shared by all of them.

    Args:
        advisor: anything with `answer(Question) -> Answer` and `documents() -> [(id, title)]`.
        store: where answers and feedback are kept; None keeps answers in memory only.
        limits: rate, duplicate window, worker pool and memory sizes.
    """

    def __init__(self, advisor, store: Store | None = None, limits: Limits | None = None):
        self.advisor = advisor
        self.store = store
        self.limits = limits or Limits()
        self.rate = RateLimiter(self.limits.per_minute, self.limits.burst)
        self.duplicates = DuplicateFilter(self.limits.duplicate_seconds)
        self.pool = WorkerPool(self.limits.workers, self.limits.queue)
        self._threads: BoundedDict = BoundedDict(self.limits.threads)  # (platform, channel, thread) -> deque
        self._answers: BoundedDict = BoundedDict(self.limits.answers)  # answer_id -> Answer

    @classmethod
    def from_settings(cls, settings) -> "ChatService":
        """The advisor with its index loaded (skipped files logged as warnings), and the answer store."""
        from bot.core import Advisor

        store = Store.from_settings(settings)  # a store that cannot be opened fails before the slow model load
        try:
            advisor = Advisor.from_settings(settings)
            for warning in advisor.prepare().warnings:
                logger.warning("%s", warning)
        except BaseException:
            store.close()
            raise
        service = cls(advisor, store)
        if store.shared:  # other hosts' `corpus add` reaches this one through the store
            from bot.corpus_follow import CorpusFollower

            service.corpus_follower = CorpusFollower(store, advisor.engine).start()
        return service

    def ready(self) -> bool:
        """True once the advisor's index and documents are loaded."""
        engine = getattr(self.advisor, "engine", None)
        return bool(getattr(engine, "documents", None)) if engine is not None else True

    def health(self) -> dict:
        """What /healthz reports: the index is loaded, and the store can start a write transaction.

        Returns:
            {"status": "ok" | "failing", "failed": [names], "checks": {name: {"ok": bool, ...}}}.
            Blocking (the store check may wait for SQLite's lock): call it from a worker thread.
        """
        engine = getattr(self.advisor, "engine", None)
        documents = len(getattr(engine, "documents", None) or ())
        checks = {"index": {"ok": self.ready(), "documents": documents}}
        if self.store is None:
            checks["store"] = {"ok": True, "detail": "no store: answers are kept in memory only"}
        else:
            try:
                writable = bool(self.store.healthy())
            except Exception:
                logger.exception("The store health check failed")
                writable = False
            checks["store"] = {"ok": writable} if writable else {
                "ok": False, "detail": "cannot start a write transaction on the store; the log says why"}
        failed = [name for name, check in checks.items() if not check["ok"]]
        return {"status": "failing" if failed else "ok", "failed": failed, "checks": checks}

    def context_for(self, platform: str, channel: str, thread: str) -> tuple[str, ...]:
        """Earlier questions answered in this conversation, oldest first (empty if none remembered).

        A thread this process does not remember (after a restart, or answered by another replica on the
        same store) is read back from the store.
        """
        remembered = tuple(self._threads.touch((platform, channel, thread), ()))
        if remembered or not thread or self.store is None:
            return remembered
        try:
            return self.store.thread_questions(platform, channel, thread, self.limits.context_depth)
        except Exception:
            logger.exception("Could not read the earlier questions of thread %s", thread)
            return ()

    def private_thread(self, user: str) -> str:
        """The conversation key of one user's /ask questions in a channel; no raw user id reaches the store."""
        return self.store.private_thread(user) if self.store is not None else f"ask:{user}"

    def _remember(self, question: Question) -> None:
        key = (question.platform, question.channel, question.thread)
        earlier = self._threads.touch(key) or deque(maxlen=max(1, self.limits.context_depth))
        earlier.append(question.text)
        self._threads.put(key, earlier)

    async def ask(self, question: Question, deliver=None) -> Reply:
        """Answer one question, or say politely why not. Never raises; logs one record per question.

        Args:
            deliver: the adapter's `async deliver(reply)` that sends the reply (never called for a duplicate,
                which gets nothing); when given, the record (log line and store) says whether the reply got to the
                user. It raises when it did not: DeliveryError for a known refusal (logged as one line).
        """
        started = time.perf_counter()
        try:
            reply = await self._ask(question)
        except Exception:
            logger.exception("Handling a question failed (%s, channel %s)", question.platform, question.channel)
            reply = Reply(ReplyStatus.ERROR, messages.ERROR)
        seconds = time.perf_counter() - started
        delivered = None
        if deliver is not None and reply.status != ReplyStatus.DUPLICATE:
            delivered = await self._deliver(deliver, reply, question.platform)
        _log_question(question.platform, reply, seconds, delivered)
        return reply

    async def _deliver(self, deliver, reply: Reply, platform: str) -> bool:
        try:
            await deliver(reply)
            delivered = True
        except DeliveryError as exc:
            logger.error("Could not deliver the reply (%s, answer %s) on %s: %s", reply.status,
                         reply.answer_id or "-", platform, exc)
            delivered = False
        except Exception:
            logger.exception("Could not deliver the reply (%s, answer %s) on %s", reply.status,
                             reply.answer_id or "-", platform)
            delivered = False
        if reply.answer_id and self.store is not None:
            try:
                self.store.mark_delivered(reply.answer_id, delivered)
            except Exception:
                logger.exception("Could not record whether answer %s was delivered", reply.answer_id)
        return delivered

    async def _ask(self, question: Question) -> Reply:
        question = replace(question, text=to_valid_text(question.text))
        try:
            text = check_question(question.text, self.limits.max_chars)
        except QuestionError as exc:
            return Reply(ReplyStatus.EMPTY if not (question.text or "").strip() else ReplyStatus.TOO_LONG, str(exc))
        question = replace(question, text=text)
        user_key = (question.platform, question.user)
        dup_key = (question.platform, question.channel, question.thread, question.user, _normalise(text))
        if not self.duplicates.first(dup_key):
            logger.info("Duplicate question from the same place ignored (%s %s)", question.platform, question.channel)
            return Reply(ReplyStatus.DUPLICATE, "")
        wait = self.rate.take(user_key)
        if wait:
            self.duplicates.forget(dup_key)
            return Reply(ReplyStatus.RATE_LIMITED, messages.rate_limited(wait))
        if not question.context:
            question = replace(question, context=self.context_for(question.platform, question.channel,
                                                                   question.thread))
        started = time.perf_counter()
        try:
            answer = await self.pool.run(self.advisor.answer, question)
        except Busy as exc:
            logger.warning("Over capacity, question turned away: %s", exc)
            self.duplicates.forget(dup_key)
            self.rate.give_back(user_key)
            return Reply(ReplyStatus.BUSY, messages.BUSY)
        except QuestionError as exc:  # the advisor's own checks (stricter limit)
            return Reply(ReplyStatus.TOO_LONG, str(exc))
        except Exception:
            logger.exception("Answering failed (%s, channel %s)", question.platform, question.channel)
            self.duplicates.forget(dup_key)
            self.rate.give_back(user_key)
            return Reply(ReplyStatus.ERROR, messages.ERROR)
        latency = time.perf_counter() - started
        answer_id = uuid.uuid4().hex
        self._answers.put(answer_id, answer)
        if not answer.abstained:  # a question the documents did not cover is no context for the next one
            self._remember(question)
        if self.store is not None:
            try:
                self.store.save_answer(answer_id, question, answer, latency)
            except Exception:  # the user still gets the answer; the log says what was not kept
                logger.exception("Could not store answer %s", answer_id)
        return Reply(ReplyStatus.ANSWERED, "", answer, answer_id)

    async def feedback(self, answer_id: str, helpful: bool, user: str, platform: str, reason: str = "") -> bool:
        """Record a verdict on an answer. False when the answer is unknown (or could not be stored)."""
        reason = to_valid_text(reason or "").strip()[:2000]
        if self.store is None:
            known = answer_id in self._answers
            logger.info("Feedback on %s: helpful=%s (no store, not kept)", answer_id, helpful)
            return known
        try:
            return self.store.save_feedback(answer_id, helpful, user, platform, reason)
        except Exception:
            logger.exception("Could not store feedback on %s", answer_id)
            return False

    def get_answer(self, answer_id: str) -> Answer | None:
        """An earlier answer, from memory or the store (for "Share in channel")."""
        answer = self._answers.touch(answer_id)
        if answer is None and self.store is not None and answer_id:
            try:
                answer = self.store.get_answer(answer_id)
            except Exception:
                logger.exception("Could not read answer %s", answer_id)
        return answer

    def help_text(self) -> str:
        """What the advisor answers, which documents it knows, how answers are cited and shared."""
        try:
            titles = [title for _, title in self.advisor.documents()]
        except Exception:
            logger.exception("Could not list the documents")
            titles = []
        known = "\n".join(f"• {t}" for t in titles) or "• (no documents loaded)"
        return (
            "I answer questions about product-management careers (AI, ML and data PM roles, hiring, "
            "levels) from the documents below, and quote the passages I rely on: [1], [2] point to "
            "the cited passages under each answer. If the documents don't cover a question I say so "
            "rather than guess.\n"
            f"Documents I know ({len(titles)}):\n{known}\n"
            "Ask a follow-up in the same thread (e.g. \"and at Series B?\") and I read it with the "
            "earlier question. In Slack and Discord, an answer only you can see has a \"Share in channel\" "
            "button, and the helpful / not helpful buttons under each answer tell us how I did."
        )
