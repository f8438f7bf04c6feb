"""The default store, for one host: SQLite in the data folder (WAL, thread-safe), user ids kept as salted hashes."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from bot.store import migrations
from bot.store.common import (ANSWER_COLUMNS, EVENT_KEEP_SECONDS, PRIVATE_THREAD, ReportQueries, StoreError,
                              UserHashing, answer_row, hash_user_ids_from_env, salt_from_env, to_record)
from retrieval.vocabulary import Answer

logger = logging.getLogger(__name__)

_HASHED = re.compile(r"[0-9a-f]{64}")


def _salt_for(path: Path) -> str:
    """ADVISOR_USER_SALT, else a random salt kept in a private file beside the database."""
    salt = salt_from_env()
    if salt:
        return salt
    salt_file = path.with_name(path.name + ".salt")
    try:
        return salt_file.read_text().strip()
    except FileNotFoundError:
        pass
    # Two processes starting on a fresh data folder must agree on one salt: write it whole to a private
    # temporary file, then link it into place (which fails if another process got there first).
    salt = secrets.token_hex(32)
    temp = salt_file.with_name(f"{salt_file.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(salt + "\n")
    try:
        os.link(temp, salt_file)
    except FileExistsError:
        salt = salt_file.read_text().strip()
    finally:
        temp.unlink()
    return salt


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only; SQLite gives its -wal and -shm files the same mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _make_private(path: Path) -> None:
    """Take group and other access away from a store (and its -wal, -shm) made before stores were private."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if file.stat().st_mode & 0o077:
                os.chmod(file, 0o600)
        except FileNotFoundError:
            pass
        except OSError as exc:  # another user's file: it still works, but say so
            logger.warning("Could not make %s private to this user (%s)", file, exc.strerror or exc)


def _identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _open_error(path: Path, exc: Exception) -> "StoreError":
    """One sentence naming the store file, why it cannot be opened and what to do."""
    why = getattr(exc, "strerror", None) or str(exc)
    # DatabaseError itself: not a database, or a malformed one; OperationalError: it cannot be opened or written
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return StoreError(f"The store {path} is damaged ({why}); move it aside (the bot starts a new one) or "
                          "restore it from a backup, or point ADVISOR_STORE at another file.")
    return StoreError(f"The store {path} cannot be opened for writing ({why}); make {path.parent} writable by "
                      "the user running the bot, or point --data-dir or ADVISOR_STORE at a writable folder.")


class SqliteSchema:
    """The migrations' view of a SQLite connection (inside the caller's transaction)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def execute(self, sql: str) -> None:
        self.db.execute(sql)

    def columns(self, table: str) -> set[str]:
        return {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}


class Store(UserHashing):
    """Questions, answers with their citations, and feedback, in one SQLite file (the default store).

    One connection guarded by a lock: writes are small and quick, and WAL lets readers of the file
    (reports, a second process) work while the bot writes. Several processes on one host share it.
    """

    shared = False  # replicas on other hosts cannot reach this file

    def __init__(self, path: Path | str, salt: str | None = None, hash_user_ids: bool | None = None):
        """Open (or create) the store, applying any migration it lacks.

        Args:
            path: the SQLite file; its folder is created.
            salt: the salt for user hashes (default: ADVISOR_USER_SALT, else a private file beside the store).
            hash_user_ids: False keeps raw platform user ids (default: ADVISOR_HASH_USER_IDS, which defaults to on).
        """
        self.path = Path(path)
        self.where = str(self.path)
        self.hash_user_ids = hash_user_ids_from_env() if hash_user_ids is None else hash_user_ids
        self._lock = threading.Lock()
        self._db = None
        self._write_error = ""  # why the last write failed, until one succeeds (for /healthz)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._salt = (salt or _salt_for(self.path)) if self.hash_user_ids else ""
            _create_private(self.path)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.row_factory = sqlite3.Row
            with self._lock:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA foreign_keys=ON")
            self.applied = self.migrate()  # the migrations this open applied (names)
            self._file = _identity(self.path)  # /healthz notices the file being deleted or replaced
            _make_private(self.path)
        except (sqlite3.Error, OSError) as exc:
            if self._db is not None:
                self._db.close()
            raise _open_error(self.path, exc) from None

    def migrate(self) -> list[str]:
        """Apply the numbered migrations this file lacks, in one transaction; returns their names.

        Also hashes the /ask thread keys that stores kept as "ask:<raw user id>" before they were hashed (data,
        not schema: it depends on the salt, so it is checked at every open).
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # one process migrates at a time
            try:
                schema = SqliteSchema(self._db)
                schema.execute(migrations.TRACKING)
                applied = {r[0] for r in self._db.execute("SELECT version FROM schema_migrations")}
                done = []
                for number, name, step in migrations.pending(applied):
                    step(schema)
                    self._db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (number, name, time.time()))
                    done.append(f"{number:03d}_{name}")
                if self.hash_user_ids:
                    self._hash_private_threads()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return done

    def _hash_private_threads(self) -> None:
        raw = self._db.execute("SELECT DISTINCT thread FROM answers WHERE substr(thread, 1, ?) = ?",
                               (len(PRIVATE_THREAD), PRIVATE_THREAD))
        for (thread,) in raw.fetchall():
            user = thread.removeprefix(PRIVATE_THREAD)
            if not _HASHED.fullmatch(user):
                self._db.execute("UPDATE answers SET thread = ? WHERE thread = ?", (self.private_thread(user), thread))

    @classmethod
    def from_settings(cls, settings):
        """The store the settings name: PostgreSQL when ADVISOR_DATABASE_URL is set, else this SQLite file."""
        from bot.store import open_store

        return open_store(settings)

    def save_answer(self, answer_id: str, question, answer: Answer, latency: float,
                    created: float | None = None) -> None:
        """Record one answered question (a bot.core.Question) and its answer; latency in seconds.

        `created` (Unix seconds, default now) is for imports and tests.
        """
        row = answer_row(self, answer_id, question, answer, latency, created)
        with self._writing():
            self._db.execute(f"INSERT OR REPLACE INTO answers ({ANSWER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                             row)

    def mark_delivered(self, answer_id: str, delivered: bool) -> None:
        """Record whether the reply carrying an answer reached the user."""
        with self._writing():
            self._db.execute("UPDATE answers SET delivered = ? WHERE id = ?", (int(delivered), answer_id))

    @contextlib.contextmanager
    def _writing(self):
        """The lock for one write; a write that fails is remembered until the next one succeeds (/healthz).

        Waiting too long for another process's lock is not a failing store (the health check itself tries that).
        """
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                if not getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                    self._write_error = str(exc)
                raise
            self._write_error = ""

    def answer_record(self, answer_id: str) -> dict | None:
        """Everything stored about one answer, as a dict (citations and context decoded), or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM answers WHERE id = ?", (answer_id,)).fetchone()
        return None if row is None else to_record(dict(row))

    def save_feedback(self, answer_id: str, helpful: bool, user: str, platform: str, reason: str = "",
                      created: float | None = None) -> bool:
        """Record (or update) one user's verdict on an answer. False when the answer is unknown."""
        user_hash = self.hash_user(user)
        with self._writing():
            known = self._db.execute("SELECT 1 FROM answers WHERE id = ?", (answer_id,)).fetchone()
            if not known:
                return False
            self._db.execute(
                "INSERT INTO feedback VALUES (?,?,?,?,?,?) ON CONFLICT(answer_id, user_hash) DO UPDATE SET "
                "created=excluded.created, helpful=excluded.helpful, platform=excluded.platform, "
                "reason=CASE WHEN excluded.reason != '' OR excluded.helpful != feedback.helpful "
                "THEN excluded.reason ELSE feedback.reason END",
                (answer_id, user_hash, time.time() if created is None else created, int(helpful), reason, platform),
            )
        return True

    def feedback(self, answer_id: str) -> list[dict]:
        """Every verdict on one answer: user_hash, helpful, reason, platform, created."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM feedback WHERE answer_id = ? ORDER BY created", (answer_id,))
            return [dict(r, helpful=bool(r["helpful"])) for r in rows.fetchall()]

    def claim_event(self, event_id: str, keep_seconds: float = EVENT_KEEP_SECONDS) -> bool:
        """True for the first process on this store to claim a platform event id; False for any later.

        Replicas sharing the store thus answer a retried Slack event once, whichever replica it reaches.
        Claims older than `keep_seconds` are forgotten (Slack retries for a few minutes).
        """
        now = time.time()
        with self._writing():
            claimed = self._db.execute("INSERT OR IGNORE INTO events VALUES (?, ?)", (event_id, now)).rowcount == 1
            if claimed and secrets.randbelow(200) == 0:  # now and then, not on every event
                self._db.execute("DELETE FROM events WHERE created < ?", (now - keep_seconds,))
        return claimed

    def thread_questions(self, platform: str, channel: str, thread: str, limit: int) -> tuple[str, ...]:
        """The last `limit` questions of one thread that the documents covered, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT question FROM answers WHERE platform = ? AND channel = ? AND thread = ? AND abstained = 0 "
                "ORDER BY created DESC LIMIT ?", (platform, channel, thread, limit)).fetchall()
        return tuple(r["question"] for r in reversed(rows))

    def answered_in(self, platform: str, channel: str | None, thread: str) -> bool:
        """Whether any question of this thread was answered (covered by the documents or not); channel None: a thread
        of that id in any channel (Discord's thread ids are unique on their own)."""
        sql = "SELECT 1 FROM answers WHERE platform = ? AND thread = ?" + (" AND channel = ?" if channel else "")
        params = (platform, thread, channel) if channel else (platform, thread)
        with self._lock:
            return self._db.execute(sql + " LIMIT 1", params).fetchone() is not None

    def channel_setting(self, platform: str, channel: str, name: str) -> str | None:
        """A switch set for one channel, or None when it was never set there."""
        with self._lock:
            row = self._db.execute("SELECT value FROM channel_settings WHERE platform = ? AND channel = ? "
                                   "AND name = ?", (platform, channel, name)).fetchone()
        return row["value"] if row is not None else None

    def set_channel_setting(self, platform: str, channel: str, name: str, value: str) -> None:
        with self._writing():
            self._db.execute("INSERT INTO channel_settings VALUES (?,?,?,?,?) ON CONFLICT(platform, channel, name) "
                             "DO UPDATE SET value=excluded.value, updated=excluded.updated",
                             (platform, channel, name, value, time.time()))
    def announce_corpus(self, fingerprint: str, documents: int, host: str) -> int:
        """Record a new corpus version (after `corpus add` or `remove`); returns its number."""
        with self._writing():
            return self._db.execute(
                "INSERT INTO corpus_version VALUES (1, 1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "version = corpus_version.version + 1, fingerprint = excluded.fingerprint, "
                "documents = excluded.documents, host = excluded.host, updated = excluded.updated RETURNING version",
                (fingerprint, documents, host, time.time())).fetchone()[0]

    def corpus_version(self) -> dict | None:
        """The last corpus version announced: version, fingerprint, documents, host, updated; None if none."""
        with self._lock:
            row = self._db.execute("SELECT * FROM corpus_version WHERE id = 1").fetchone()
        return None if row is None else dict(row)

    def count(self, table: str = "answers") -> int:
        if table not in ("answers", "feedback"):
            raise ValueError(table)
        with self._lock:
            return self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def healthy(self, timeout: float = 2.0) -> bool:
        """True when a write can happen now (for /healthz): a no-op write in a rolled-back transaction.

        False, with the reason logged, when the file is read-only, closed, locked longer than `timeout`, deleted
        or replaced since it was opened (writes would go to a file nobody reads), or the last write failed.
        """
        try:
            if _identity(self.path) != self._file:
                logger.warning("The store at %s was replaced since the bot opened it; restart the bot.", self.path)
                return False
        except FileNotFoundError:
            logger.warning("The store at %s was deleted under the running bot; restart it.", self.path)
            return False
        if self._write_error:
            logger.warning("The last write to the store at %s failed: %s", self.path, self._write_error)
            return False
        try:
            with self._lock:
                self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        self._db.execute("DELETE FROM answers WHERE 0")  # a read-only file fails here, not at BEGIN
                    finally:
                        self._db.execute("ROLLBACK")
                finally:
                    self._db.execute("PRAGMA busy_timeout=10000")
        except sqlite3.Error as exc:
            logger.warning("The store at %s cannot be written: %s", self.path, exc)
            return False
        return True


class StoreReader(ReportQueries):
    """Read-only queries over an existing store, for reports. Never creates or writes, never returns user ids.

    `since` is a Unix time; None means everything. Use as a context manager or call close().
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not self.path.exists():
            raise StoreError(f"no questions recorded yet at {self.path}; run the bot first "
                             "(or point --data-dir or ADVISOR_STORE at the store it writes).")
        if not self.path.is_file():
            raise StoreError(f"{self.path} is not a file; point --data-dir or ADVISOR_STORE at the bot's "
                             "advisor.sqlite3.")
        self._db = None
        try:
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
            self._db.row_factory = sqlite3.Row
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(f"{self.path} is not a readable advisor store ({exc}); point --data-dir or "
                             "ADVISOR_STORE at the advisor.sqlite3 the bot writes.") from None
        if not {"answers", "feedback"} <= tables:
            self.close()
            raise StoreError(f"{self.path} is a SQLite database but not an advisor store (it has no answers "
                             "and feedback tables); point --data-dir or ADVISOR_STORE at the bot's store.")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _rows(self, sql: str, *params) -> list[dict]:
        try:
            return [dict(r) for r in self._db.execute(sql, params).fetchall()]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} could not be read ({exc}); it may be damaged. "
                             "Restore it from a backup or point ADVISOR_STORE at another store.") from None

    def daily_counts(self, since: float | None = None) -> list[dict]:
        """Questions per UTC day, platform and outcome: day (YYYY-MM-DD), platform, abstained, n."""
        return self._rows(
            "SELECT date(created, 'unixepoch') AS day, platform, abstained, COUNT(*) AS n FROM answers "
            "WHERE created >= ? GROUP BY day, platform, abstained ORDER BY day, platform", self._since(since))

    def feedback_rows(self, since: float | None = None) -> list[dict]:
        """Verdicts given since then, newest first: answer_id, created, helpful, reason, platform, and the
        answer's question, asked (its time) and abstained."""
        return self._rows(
            "SELECT f.answer_id, f.created, f.helpful, f.reason, f.platform, a.question, a.created AS asked, "
            "a.abstained FROM feedback f JOIN answers a ON a.id = f.answer_id WHERE f.created >= ? "
            "ORDER BY f.created DESC, f.rowid DESC", self._since(since))

    def cited_passages(self, since: float | None = None, limit: int = 20) -> list[dict]:
        """The passages cited most often, by answers given since then: doc_id, title, section, chunk_id,
        quote, times (how many answers cited it)."""
        return self._rows(
            "SELECT json_extract(c.value, '$.doc_id') AS doc_id, MAX(json_extract(c.value, '$.title')) AS title, "
            "json_extract(c.value, '$.section') AS section, json_extract(c.value, '$.chunk_id') AS chunk_id, "
            "MIN(json_extract(c.value, '$.quote')) AS quote, COUNT(DISTINCT a.id) AS times "
            "FROM answers a, json_each(a.citations) c WHERE a.abstained = 0 AND a.created >= ? "
            "GROUP BY doc_id, section, chunk_id ORDER BY times DESC, title, section LIMIT ?",
            self._since(since), limit)

    def cited_passage_count(self, since: float | None = None) -> int:
        """How many distinct passages were cited since then."""
        return self._rows(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM answers a, json_each(a.citations) c "
            "WHERE a.abstained = 0 AND a.created >= ? GROUP BY json_extract(c.value, '$.doc_id'), "
            "json_extract(c.value, '$.section'), json_extract(c.value, '$.chunk_id'))", self._since(since))[0]["n"]
