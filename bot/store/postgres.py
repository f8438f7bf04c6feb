"""The shared store for several hosts: PostgreSQL through psycopg 3 and its connection pool (ADVISOR_DATABASE_URL)."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from bot.store import migrations
from bot.store.common import (ANSWER_COLUMNS, EVENT_KEEP_SECONDS, ReportQueries, StoreError, UserHashing, answer_row,
                              hash_user_ids_from_env, salt_from_env, to_record)
from retrieval.vocabulary import Answer

logger = logging.getLogger(__name__)

CONNECT_SECONDS = 5  # to open a connection, or to wait for one from the pool
PAUSE_SECONDS = 5.0  # after the database could not be reached, fail at once for this long (then try again)
MIGRATION_LOCK = 7_406_114  # pg_advisory_xact_lock key: one host migrates at a time
_UNREACHABLE = (psycopg.OperationalError, PoolTimeout)


def describe(url: str) -> str:
    """The URL without its password, for messages and logs: postgresql://user@host:5432/db."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the database in ADVISOR_DATABASE_URL"
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def failure(exc: BaseException, url: str) -> str:
    """Why an operation failed, on one line, with the URL's password (raw or decoded) taken out."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for secret in {_password(url), unquote(_password(url))} - {""}:
        text = text.replace(secret, "[redacted]")
    return text.replace(url, describe(url))


class PostgresSchema:
    """The migrations' view of a PostgreSQL connection (inside the caller's transaction)."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)

    def columns(self, table: str) -> set[str]:
        rows = self.conn.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                 "current_schema() AND table_name = %s", (table,)).fetchall()
        return {r[0] for r in rows}


class PostgresStore(UserHashing):
    """The store in PostgreSQL, shared by every host: answers, feedback, event claims, thread memory, the salt.

    Each call takes a pooled connection for one short transaction. When the database cannot be reached the
    call raises StoreError after at most CONNECT_SECONDS, and for PAUSE_SECONDS after that calls fail at once
    (questions are still answered; /healthz reports the store failing, and tries the database every time).
    """

    shared = True
    closed = False

    def __init__(self, url: str, salt: str | None = None, hash_user_ids: bool | None = None, pool_size: int = 10):
        """Connect, apply any migration the database lacks, and agree on the user-id salt.

        Args:
            url: postgresql://user:password@host:port/database (the password never reaches a message or log).
            salt: the salt for user hashes (default: ADVISOR_USER_SALT, else one kept in the database for every host).
            hash_user_ids: False keeps raw platform user ids (default: ADVISOR_HASH_USER_IDS, on).
            pool_size: most connections held at once.
        """
        self.url, self.where = url, describe(url)
        self.hash_user_ids = hash_user_ids_from_env() if hash_user_ids is None else hash_user_ids
        self._paused_until = 0.0
        self._outage = ""  # why the database could not be reached, until it can
        self._write_error = ""  # why the last write the database refused failed, until one succeeds (for /healthz)
        self._state = threading.Lock()
        self._options = {"connect_timeout": CONNECT_SECONDS, "application_name": "advisor",
                         "tcp_user_timeout": CONNECT_SECONDS * 2000, "options": "-c statement_timeout=15000"}
        try:  # one connection first: a refusal says why (the pool would only time out)
            with psycopg.connect(url, **self._options) as conn:
                self.applied = self._apply_migrations(conn)  # the migrations this open applied (names)
                self._salt = (salt or salt_from_env() or self._shared_salt(conn)) if self.hash_user_ids else ""
        except psycopg.Error as exc:
            raise self._error(exc) from None
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs=self._options, open=False,
                                    timeout=CONNECT_SECONDS, check=ConnectionPool.check_connection,
                                    name="advisor-store")
        self._pool.open()

    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(f"The database {self.where} cannot be used ({failure(exc, self.url)}); check "
                          "ADVISOR_DATABASE_URL, that PostgreSQL is running and reachable from this host, and that "
                          "the user may connect and create tables.")

    @classmethod
    def from_settings(cls, settings) -> "PostgresStore":
        return cls(settings.database_url)

    # -- schema -------------------------------------------------------------------------------

    @staticmethod
    def _apply_migrations(conn: psycopg.Connection) -> list[str]:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))  # hosts starting together wait
            schema = PostgresSchema(conn)
            schema.execute(migrations.TRACKING)
            applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            done = []
            for number, name, step in migrations.pending(applied):
                step(schema)
                conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s)", (number, name, time.time()))
                done.append(f"{number:03d}_{name}")
                logger.info("Applied migration %03d_%s", number, name)
        return done

    def migrate(self) -> list[str]:
        """Apply the numbered migrations the database lacks (done at every start too); returns their names."""
        with self._connection() as conn:
            return self._apply_migrations(conn)

    @staticmethod
    def _shared_salt(conn: psycopg.Connection) -> str:
        """The salt every host uses: the first host to start stores a random one, the others read it."""
        with conn.transaction():
            conn.execute("INSERT INTO store_settings VALUES ('user_salt', %s) ON CONFLICT (key) DO NOTHING",
                         (secrets.token_hex(32),))
            return conn.execute("SELECT value FROM store_settings WHERE key = 'user_salt'").fetchone()[0]

    # -- connections --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self, write: bool = True):
        """A pooled connection for one transaction; an unreachable database is a StoreError, and remembered."""
        if time.monotonic() < self._paused_until:
            raise StoreError(f"The database {self.where} could not be reached a moment ago "
                             f"({self._outage or 'no reason given'}); trying again in a few seconds.")
        try:
            with self._pool.connection() as conn:
                yield conn
        except _UNREACHABLE as exc:
            self._unreachable(exc)
            raise self._error(exc) from None
        except psycopg.Error as exc:
            if write:
                self._write_error = failure(exc, self.url)
            raise
        self._outage = ""
        if write:
            self._write_error = ""

    def _unreachable(self, exc: BaseException) -> None:
        with self._state:
            self._outage = failure(exc, self.url)
            self._paused_until = time.monotonic() + PAUSE_SECONDS
        logger.warning("The database %s cannot be reached: %s", self.where, self._outage)

    # -- answers and feedback -----------------------------------------------------------------

    def save_answer(self, answer_id: str, question, answer: Answer, latency: float,
                    created: float | None = None) -> None:
        """Record one answered question (a bot.core.Question) and its answer; latency in seconds."""
        row = answer_row(self, answer_id, question, answer, latency, created)
        updates = ", ".join(f"{c} = excluded.{c}" for c in ANSWER_COLUMNS.split(", ")[1:])
        with self._connection() as conn:
            conn.execute(f"INSERT INTO answers ({ANSWER_COLUMNS}) VALUES ({', '.join(['%s'] * 14)}) "
                         f"ON CONFLICT (id) DO UPDATE SET {updates}", row)

    def mark_delivered(self, answer_id: str, delivered: bool) -> None:
        """Record whether the reply carrying an answer reached the user."""
        with self._connection() as conn:
            conn.execute("UPDATE answers SET delivered = %s WHERE id = %s", (int(delivered), answer_id))

    def answer_record(self, answer_id: str) -> dict | None:
        """Everything stored about one answer, as a dict (citations and context decoded), or None."""
        with self._connection(write=False) as conn:
            row = conn.cursor(row_factory=dict_row).execute("SELECT * FROM answers WHERE id = %s",
                                                            (answer_id,)).fetchone()
        return None if row is None else to_record(row)

    def save_feedback(self, answer_id: str, helpful: bool, user: str, platform: str, reason: str = "",
                      created: float | None = None) -> bool:
        """Record (or update) one user's verdict on an answer. False when the answer is unknown."""
        values = (answer_id, self.hash_user(user), time.time() if created is None else created, int(helpful),
                  reason, platform)
        try:
            with self._connection() as conn:
                conn.execute(
                    "INSERT INTO feedback VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (answer_id, user_hash) DO "
                    "UPDATE SET created = excluded.created, helpful = excluded.helpful, platform = excluded.platform, "
                    "reason = CASE WHEN excluded.reason <> '' OR excluded.helpful <> feedback.helpful "
                    "THEN excluded.reason ELSE feedback.reason END", values)
        except psycopg.errors.ForeignKeyViolation:  # no such answer (the statement checked, atomically)
            self._write_error = ""
            return False
        return True

    def feedback(self, answer_id: str) -> list[dict]:
        """Every verdict on one answer: user_hash, helpful, reason, platform, created."""
        with self._connection(write=False) as conn:
            rows = conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM feedback WHERE answer_id = %s ORDER BY created", (answer_id,)).fetchall()
        return [dict(r, helpful=bool(r["helpful"])) for r in rows]

    # -- what replicas share ------------------------------------------------------------------

    def claim_event(self, event_id: str, keep_seconds: float = EVENT_KEEP_SECONDS) -> bool:
        """True for the first process on any host to claim a platform event id; False for any later.

        One statement decides: the insert that finds the id already there returns no row.
        """
        now = time.time()
        with self._connection() as conn:
            claimed = conn.execute("INSERT INTO events VALUES (%s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
                                   (event_id, now)).fetchone() is not None
            if claimed and secrets.randbelow(200) == 0:  # now and then, not on every event
                conn.execute("DELETE FROM events WHERE created < %s", (now - keep_seconds,))
        return claimed

    def thread_questions(self, platform: str, channel: str, thread: str, limit: int) -> tuple[str, ...]:
        """The last `limit` questions of one thread that the documents covered, oldest first."""
        with self._connection(write=False) as conn:
            rows = conn.execute(
                "SELECT question FROM answers WHERE platform = %s AND channel = %s AND thread = %s AND abstained = 0 "
                "ORDER BY created DESC LIMIT %s", (platform, channel, thread, limit)).fetchall()
        return tuple(r[0] for r in reversed(rows))

    def answered_in(self, platform: str, channel: str | None, thread: str) -> bool:
        """Whether any question of this thread was answered (covered by the documents or not); channel None: a thread
        of that id in any channel (Discord's thread ids are unique on their own)."""
        sql = "SELECT 1 FROM answers WHERE platform = %s AND thread = %s" + (" AND channel = %s" if channel else "")
        params = (platform, thread, channel) if channel else (platform, thread)
        with self._connection(write=False) as conn:
            return conn.execute(sql + " LIMIT 1", params).fetchone() is not None

    def channel_setting(self, platform: str, channel: str, name: str) -> str | None:
        """A switch set for one channel, or None when it was never set there."""
        with self._connection(write=False) as conn:
            row = conn.execute("SELECT value FROM channel_settings WHERE platform = %s AND channel = %s AND name = %s",
                               (platform, channel, name)).fetchone()
        return row[0] if row is not None else None

    def set_channel_setting(self, platform: str, channel: str, name: str, value: str) -> None:
        with self._connection() as conn:
            conn.execute("INSERT INTO channel_settings VALUES (%s, %s, %s, %s, %s) ON CONFLICT (platform, channel, name) "
                         "DO UPDATE SET value = excluded.value, updated = excluded.updated",
                         (platform, channel, name, value, time.time()))

    def announce_corpus(self, fingerprint: str, documents: int, host: str) -> int:
        """Record a new corpus version (after `corpus add` or `remove`); returns its number."""
        with self._connection() as conn:
            return conn.execute(
                "INSERT INTO corpus_version VALUES (1, 1, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                "version = corpus_version.version + 1, fingerprint = excluded.fingerprint, "
                "documents = excluded.documents, host = excluded.host, updated = excluded.updated RETURNING version",
                (fingerprint, documents, host, time.time())).fetchone()[0]

    def corpus_version(self) -> dict | None:
        """The last corpus version announced: version, fingerprint, documents, host, updated; None if none."""
        with self._connection(write=False) as conn:
            return conn.cursor(row_factory=dict_row).execute("SELECT * FROM corpus_version WHERE id = 1").fetchone()

    def count(self, table: str = "answers") -> int:
        if table not in ("answers", "feedback"):
            raise ValueError(table)
        with self._connection(write=False) as conn:
            return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    # -- health -------------------------------------------------------------------------------

    def healthy(self, timeout: float = 2.0) -> bool:
        """True when a write can happen now (for /healthz): a no-op write in a rolled-back transaction.

        False, with the reason logged, when the database cannot be reached within `timeout`, refuses writes
        (a read-only standby), or the last write failed. Always tries the database, paused or not.
        """
        try:
            with self._pool.connection(timeout=timeout) as conn:
                with conn.transaction(force_rollback=True):
                    conn.execute("DELETE FROM answers WHERE false")
        except _UNREACHABLE as exc:
            self._unreachable(exc)
            return False
        except psycopg.Error as exc:
            logger.warning("The database %s cannot be written: %s", self.where, failure(exc, self.url))
            return False
        with self._state:
            self._paused_until, self._outage = 0.0, ""
            if self._write_error:
                logger.warning("The last write to the database %s failed: %s", self.where, self._write_error)
                return False
        return True

    def close(self) -> None:
        self.closed = True
        self._pool.close()


class PostgresReader(ReportQueries):
    """Read-only queries over the shared database, for reports: the same methods as the SQLite StoreReader.

    Never creates or writes (a read-only session), never returns user ids. `since` is a Unix time; None means all.
    """

    _param = "%s"

    def __init__(self, url: str):
        self.url, self.where = url, describe(url)
        try:
            self._conn = psycopg.connect(url, connect_timeout=CONNECT_SECONDS, autocommit=True,
                                         application_name="advisor-report", row_factory=dict_row)
        except psycopg.Error as exc:
            raise StoreError(f"The database {self.where} cannot be reached ({failure(exc, url)}); check "
                             "ADVISOR_DATABASE_URL and that PostgreSQL is running and reachable from here.") from None
        self._conn.execute("SET default_transaction_read_only = on")
        found = self._conn.execute("SELECT to_regclass('answers') IS NOT NULL AND to_regclass('feedback') IS NOT "
                                   "NULL AS ready").fetchone()["ready"]
        if not found:
            self.close()
            raise StoreError(f"no questions recorded yet in {self.where} (it has no advisor tables); run the bot "
                             "with this ADVISOR_DATABASE_URL first, or `advisor store migrate`.")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _rows(self, sql: str, *params) -> list[dict]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"{self.where} could not be read ({failure(exc, self.url)}); check that the database "
                             "is up and that ADVISOR_DATABASE_URL points at the bot's.") from None

    def daily_counts(self, since: float | None = None) -> list[dict]:
        """Questions per UTC day, platform and outcome: day (YYYY-MM-DD), platform, abstained, n."""
        return self._rows(
            "SELECT to_char(to_timestamp(created) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, platform, abstained, "
            "COUNT(*) AS n FROM answers WHERE created >= %s GROUP BY 1, 2, 3 ORDER BY 1, platform COLLATE \"C\"",
            self._since(since))

    def feedback_rows(self, since: float | None = None) -> list[dict]:
        """Verdicts given since then, newest first: answer_id, created, helpful, reason, platform, and the
        answer's question, asked (its time) and abstained."""
        return self._rows(
            "SELECT f.answer_id, f.created, f.helpful, f.reason, f.platform, a.question, a.created AS asked, "
            "a.abstained FROM feedback f JOIN answers a ON a.id = f.answer_id WHERE f.created >= %s "
            "ORDER BY f.created DESC, f.ctid DESC", self._since(since))  # ctid: the later write first, as rowid

    _CITED = ("FROM answers a, jsonb_array_elements(a.citations::jsonb) c WHERE a.abstained = 0 AND a.created >= %s "
              "GROUP BY c->>'doc_id', c->>'section', c->>'chunk_id'")

    def cited_passages(self, since: float | None = None, limit: int = 20) -> list[dict]:
        """The passages cited most often, by answers given since then: doc_id, title, section, chunk_id,
        quote, times (how many answers cited it)."""
        return self._rows(
            "SELECT c->>'doc_id' AS doc_id, MAX((c->>'title') COLLATE \"C\") AS title, c->>'section' AS section, "
            "c->>'chunk_id' AS chunk_id, MIN((c->>'quote') COLLATE \"C\") AS quote, COUNT(DISTINCT a.id) AS times "
            f"{self._CITED} ORDER BY times DESC, MAX((c->>'title') COLLATE \"C\"), (c->>'section') COLLATE \"C\" "
            "LIMIT %s", self._since(since), limit)

    def cited_passage_count(self, since: float | None = None) -> int:
        """How many distinct passages were cited since then."""
        return self._rows(f"SELECT COUNT(*) AS n FROM (SELECT 1 {self._CITED}) passages",
                          self._since(since))[0]["n"]
