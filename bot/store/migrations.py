"""The store's schema as numbered migrations, the same for SQLite and PostgreSQL, applied in order on start.

Each migration is a small function of a `Schema` (run SQL, list a table's columns); a store records the
numbers it applied in `schema_migrations`. Stores made before migrations were numbered already have some of
these tables and columns, so every step checks before it adds. SQL here is the dialect both databases speak
(DOUBLE PRECISION, not REAL, which PostgreSQL reads as single precision).
"""

from __future__ import annotations

from typing import Callable, Protocol


class Schema(Protocol):
    def execute(self, sql: str) -> None: ...

    def columns(self, table: str) -> set[str]: ...


MIGRATIONS: list[tuple[int, str, Callable[[Schema], None]]] = []

TRACKING = ("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied DOUBLE PRECISION NOT NULL)")


def migration(number: int):
    def register(step: Callable[[Schema], None]):
        assert number == len(MIGRATIONS) + 1, "migrations are numbered 1, 2, 3... in order"
        MIGRATIONS.append((number, step.__name__, step))
        return step

    return register


def latest() -> int:
    return len(MIGRATIONS)


@migration(1)
def answers_events_feedback(db: Schema) -> None:
    """The store as it first shipped: answers, handled event ids, feedback."""
    db.execute("""CREATE TABLE IF NOT EXISTS answers (
        id TEXT PRIMARY KEY,
        created DOUBLE PRECISION NOT NULL,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        thread TEXT NOT NULL,
        user_hash TEXT NOT NULL,
        question TEXT NOT NULL,
        context TEXT NOT NULL,
        answer TEXT NOT NULL,
        abstained INTEGER NOT NULL,
        citations TEXT NOT NULL,
        sentences TEXT NOT NULL,
        latency_ms DOUBLE PRECISION NOT NULL)""")  # context, citations, sentences: JSON lists
    db.execute("CREATE INDEX IF NOT EXISTS answers_created ON answers(created)")
    db.execute("CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL)")
    db.execute("""CREATE TABLE IF NOT EXISTS feedback (
        answer_id TEXT NOT NULL REFERENCES answers(id),
        user_hash TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        helpful INTEGER NOT NULL,
        reason TEXT NOT NULL,
        platform TEXT NOT NULL,
        PRIMARY KEY (answer_id, user_hash))""")


@migration(2)
def answers_written_by(db: Schema) -> None:
    """Which chat model wrote an answer ('' for the extractive one)."""
    if "written_by" not in db.columns("answers"):
        db.execute("ALTER TABLE answers ADD COLUMN written_by TEXT NOT NULL DEFAULT ''")


@migration(3)
def answers_delivered(db: Schema) -> None:
    """Whether the reply reached the user: 1, 0, or NULL where the platform does not say."""
    if "delivered" not in db.columns("answers"):
        db.execute("ALTER TABLE answers ADD COLUMN delivered INTEGER")


@migration(4)
def shared_settings_and_corpus_version(db: Schema) -> None:
    """What hosts sharing a database agree on: the user-id salt, and the corpus version they follow."""
    db.execute("CREATE TABLE IF NOT EXISTS store_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("""CREATE TABLE IF NOT EXISTS corpus_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        documents INTEGER NOT NULL,
        host TEXT NOT NULL,
        updated DOUBLE PRECISION NOT NULL)""")
    db.execute("CREATE INDEX IF NOT EXISTS events_created ON events(created)")


@migration(5)
def channel_settings(db: Schema) -> None:
    """Switches set per channel (`/ask follow-ups off`), and the look-up of a thread's answers they need."""
    db.execute("""CREATE TABLE IF NOT EXISTS channel_settings (
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        updated DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (platform, channel, name))""")
    db.execute("CREATE INDEX IF NOT EXISTS answers_thread ON answers(platform, channel, thread)")


def pending(applied: set[int]) -> list[tuple[int, str, Callable[[Schema], None]]]:
    """The migrations not applied yet, in order."""
    return [m for m in MIGRATIONS if m[0] not in applied]
