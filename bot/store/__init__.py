"""The answer store: SQLite in the data folder (one host), or PostgreSQL for several hosts (ADVISOR_DATABASE_URL).

Both implementations offer the same methods (save_answer, get_answer, answer_record, mark_delivered,
save_feedback, feedback, claim_event, thread_questions, announce_corpus, corpus_version, count, healthy,
migrate, close) and apply the same numbered migrations (bot/store/migrations.py); `shared` says whether
other hosts can reach the store. `Store` and `StoreReader` are the SQLite ones (the default); `open_store`
and `open_reader` pick the one the settings name.
"""

from __future__ import annotations

from bot.store.common import (HASH_ENV, PRIVATE_THREAD, SALT_ENV, StoreError, hash_user_ids_from_env)
from bot.store.sqlite import Store, StoreReader, _salt_for

__all__ = ["HASH_ENV", "PRIVATE_THREAD", "SALT_ENV", "Store", "StoreError", "StoreReader", "hash_user_ids_from_env",
           "open_reader", "open_store", "_salt_for"]


def open_store(settings):
    """The store the settings name: PostgreSQL at `settings.database_url` when set, else the SQLite file."""
    if getattr(settings, "database_url", ""):
        from bot.store.postgres import PostgresStore

        return PostgresStore(settings.database_url)
    return Store(settings.store_path)


def open_reader(settings):
    """A read-only reader for reports over the store the settings name (never creates it)."""
    if getattr(settings, "database_url", ""):
        from bot.store.postgres import PostgresReader

        return PostgresReader(settings.database_url)
    return StoreReader(settings.store_path)
