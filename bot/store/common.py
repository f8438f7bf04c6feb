"""What both stores share: the error type, user-id hashing, and answers to and from their stored rows."""

from __future__ import annotations

import hashlib
import json
import time

from bot.variables import value
from retrieval.errors import AdvisorError
from retrieval.vocabulary import Answer, AnswerSentence, Citation

SALT_ENV = "ADVISOR_USER_SALT"
HASH_ENV = "ADVISOR_HASH_USER_IDS"
PRIVATE_THREAD = "ask:"  # thread key prefix of a user's private /ask conversation in a channel
EVENT_KEEP_SECONDS = 3600.0  # Slack retries for a few minutes; claims older than this are forgotten

ANSWER_COLUMNS = ("id, created, platform, channel, thread, user_hash, question, context, answer, abstained, "
                  "citations, sentences, latency_ms, written_by")


class StoreError(AdvisorError):
    """The store is missing, unreadable, unreachable or not an advisor store; the message says what to do."""


def hash_user_ids_from_env() -> bool:
    """ADVISOR_HASH_USER_IDS: hash user ids (the default, also when unset) unless it is 0/false/no/off."""
    return value(HASH_ENV)


def salt_from_env() -> str:
    """ADVISOR_USER_SALT, or "" (each store then keeps a salt of its own)."""
    return value(SALT_ENV)


class UserHashing:
    """Salted SHA-256 of platform user ids; both stores mix this in (`hash_user_ids` and `_salt` set by them)."""

    hash_user_ids: bool = True
    _salt: str = ""

    def hash_user(self, user: str) -> str:
        """A salted SHA-256 of a platform user id (stable per user, not reversible without the salt).

        With hashing turned off (ADVISOR_HASH_USER_IDS=0) the raw id is kept instead.
        """
        if not self.hash_user_ids:
            return user
        return hashlib.sha256(f"{self._salt}:{user}".encode()).hexdigest()

    def private_thread(self, user: str) -> str:
        """The conversation key of one user's private questions (/ask), without the raw user id in it."""
        return PRIVATE_THREAD + self.hash_user(user)

    def get_answer(self, answer_id: str) -> Answer | None:
        """The stored answer, rebuilt (without the search hits), or None."""
        record = self.answer_record(answer_id)
        if record is None:
            return None
        return to_answer(record)


def answer_row(hashing: UserHashing, answer_id: str, question, answer: Answer, latency: float,
               created: float | None) -> tuple:
    """The values of ANSWER_COLUMNS for one answered question (a bot.core.Question); latency in seconds."""
    return (
        answer_id, time.time() if created is None else created,
        question.platform, question.channel, question.thread,
        hashing.hash_user(question.user), question.text, json.dumps(list(question.context), ensure_ascii=False),
        answer.text, int(answer.abstained),
        json.dumps([c.__dict__ for c in answer.citations], ensure_ascii=False),
        json.dumps([s.__dict__ for s in answer.sentences], ensure_ascii=False),
        round(latency * 1000, 3), answer.written_by,
    )


def to_record(row: dict) -> dict:
    """A stored answer row as a dict with its flags as booleans and its JSON columns decoded."""
    record = dict(row)
    record["abstained"] = bool(record["abstained"])
    for key in ("context", "citations", "sentences"):
        record[key] = json.loads(record[key])
    return record


def to_answer(record: dict) -> Answer:
    return Answer(
        question=record["question"], text=record["answer"], abstained=record["abstained"],
        citations=tuple(Citation(**c) for c in record["citations"]),
        sentences=tuple(AnswerSentence(**s) for s in record["sentences"]),
        written_by=record.get("written_by") or "",
    )


class ReportQueries:
    """The report's queries that read alike in both databases (placeholders aside), and the context manager.

    A reader sets `_param` ("?" or "%s") and gives `_rows(sql, *params)` and `close()`.
    """

    _param = "?"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _since(since: float | None) -> float:
        return float("-inf") if since is None else float(since)

    def first_created(self) -> float | None:
        """When the first question was recorded, or None for an empty store."""
        return self._rows("SELECT MIN(created) AS t FROM answers")[0]["t"]

    def asker_count(self, since: float | None = None) -> int:
        """How many distinct people asked (a count only: who asked is never returned)."""
        return self._rows(f"SELECT COUNT(DISTINCT user_hash) AS n FROM answers WHERE created >= {self._param}",
                          self._since(since))[0]["n"]

    def not_covered(self, since: float | None = None) -> list[dict]:
        """Questions the corpus did not cover, newest first: created, platform, question."""
        return self._rows("SELECT created, platform, question FROM answers WHERE abstained = 1 AND created >= "
                          f"{self._param} ORDER BY created DESC", self._since(since))
