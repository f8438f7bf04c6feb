"""The answer and feedback store: SQLite (WAL, thread-safe), user ids kept only as salted hashes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from retrieval.answer import Answer, AnswerSentence, Citation

logger = logging.getLogger(__name__)

SALT_ENV = "ADVISOR_USER_SALT"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    platform TEXT NOT NULL,
    channel TEXT NOT NULL,
    thread TEXT NOT NULL,
    user_hash TEXT NOT NULL,
    question TEXT NOT NULL,
    context TEXT NOT NULL,        -- JSON list of earlier questions used as context
    answer TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    citations TEXT NOT NULL,      -- JSON list of citations
    sentences TEXT NOT NULL,      -- JSON list of {text, citation}
    latency_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_created ON answers(created);
CREATE TABLE IF NOT EXISTS feedback (
    answer_id TEXT NOT NULL REFERENCES answers(id),
    user_hash TEXT NOT NULL,
    created REAL NOT NULL,
    helpful INTEGER NOT NULL,
    reason TEXT NOT NULL,
    platform TEXT NOT NULL,
    PRIMARY KEY (answer_id, user_hash)
);
"""


def _salt_for(path: Path) -> str:
    """ADVISOR_USER_SALT, else a random salt kept in a private file beside the database."""
    salt = os.environ.get(SALT_ENV, "").strip()
    if salt:
        return salt
    salt_file = path.with_name(path.name + ".salt")
    try:
        return salt_file.read_text().strip()
    except FileNotFoundError:
        pass
    salt = secrets.token_hex(32)
    fd = os.open(salt_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(salt + "\n")
    return salt


class Store:
    """Questions, answers with their citations, and feedback, in one SQLite file.

    One connection guarded by a lock: writes are small and quick, and WAL lets readers of the file
    (reports, a second process) work while the bot writes.
    """

    def __init__(self, path: Path | str, salt: str | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._salt = salt or _salt_for(self.path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)

    @classmethod
    def from_settings(cls, settings) -> "Store":
        return cls(settings.store_path)

    def hash_user(self, user: str) -> str:
        """A salted SHA-256 of a platform user id: stable per user, not reversible without the salt."""
        return hashlib.sha256(f"{self._salt}:{user}".encode()).hexdigest()

    def save_answer(self, answer_id: str, question, answer: Answer, latency: float) -> None:
        """Record one answered question (a bot.core.Question) and its answer; latency in seconds."""
        row = (
            answer_id, time.time(), question.platform, question.channel, question.thread,
            self.hash_user(question.user), question.text, json.dumps(list(question.context), ensure_ascii=False),
            answer.text, int(answer.abstained),
            json.dumps([c.__dict__ for c in answer.citations], ensure_ascii=False),
            json.dumps([s.__dict__ for s in answer.sentences], ensure_ascii=False),
            round(latency * 1000, 3),
        )
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)

    def get_answer(self, answer_id: str) -> Answer | None:
        """The stored answer, rebuilt (without the search hits), or None."""
        record = self.answer_record(answer_id)
        if record is None:
            return None
        return Answer(
            question=record["question"], text=record["answer"], abstained=record["abstained"],
            citations=tuple(Citation(**c) for c in record["citations"]),
            sentences=tuple(AnswerSentence(**s) for s in record["sentences"]),
        )

    def answer_record(self, answer_id: str) -> dict | None:
        """Everything stored about one answer, as a dict (citations and context decoded), or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM answers WHERE id = ?", (answer_id,)).fetchone()
        if row is None:
            return None
        record = dict(row)
        record["abstained"] = bool(record["abstained"])
        for key in ("context", "citations", "sentences"):
            record[key] = json.loads(record[key])
        return record

    def save_feedback(self, answer_id: str, helpful: bool, user: str, platform: str, reason: str = "") -> bool:
        """Record (or update) one user's verdict on an answer. False when the answer is unknown."""
        user_hash = self.hash_user(user)
        with self._lock:
            known = self._db.execute("SELECT 1 FROM answers WHERE id = ?", (answer_id,)).fetchone()
            if not known:
                return False
            self._db.execute(
                "INSERT INTO feedback VALUES (?,?,?,?,?,?) ON CONFLICT(answer_id, user_hash) DO UPDATE SET "
                "created=excluded.created, helpful=excluded.helpful, platform=excluded.platform, "
                "reason=CASE WHEN excluded.reason != '' OR excluded.helpful != feedback.helpful "
                "THEN excluded.reason ELSE feedback.reason END",
                (answer_id, user_hash, time.time(), int(helpful), reason, platform),
            )
        return True

    def feedback(self, answer_id: str) -> list[dict]:
        """Every verdict on one answer: user_hash, helpful, reason, platform, created."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM feedback WHERE answer_id = ? ORDER BY created", (answer_id,))
            return [dict(r, helpful=bool(r["helpful"])) for r in rows.fetchall()]

    def count(self, table: str = "answers") -> int:
        if table not in ("answers", "feedback"):
            raise ValueError(table)
        with self._lock:
            return self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
