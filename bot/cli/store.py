"""`advisor store migrate`: bring the store (SQLite, or PostgreSQL with ADVISOR_DATABASE_URL) to the latest schema."""

from __future__ import annotations


def cmd_migrate(args) -> int:
    """Apply the numbered migrations the store lacks (a bot does the same at start) and say what was done."""
    from bot.cli.common import settings
    from bot.store import migrations, open_store

    store = open_store(settings(args))  # opening applies what is missing, under a lock other hosts wait on
    try:
        applied = store.applied + store.migrate()
    finally:
        store.close()
    if applied:
        print(f"Applied {len(applied)} migration{'s' if len(applied) != 1 else ''} to {store.where}: "
              f"{', '.join(applied)}.")
    else:
        print(f"{store.where} is up to date (schema version {migrations.latest()}).")
    return 0


def register(sub, common) -> None:
    """Add `advisor store ...` to the `advisor` parser (`common` holds the shared options)."""
    store = sub.add_parser("store", help="manage the answer store (SQLite, or the shared PostgreSQL database)")
    actions = store.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    migrate = actions.add_parser(
        "migrate", parents=[common], help="apply the schema migrations the store lacks (bots also do at start)",
        description="Bring the store named by ADVISOR_DATABASE_URL (or the SQLite file in the data folder) to the "
                    "latest schema. Safe to run at any time, also while bots run, from any host.")
    migrate.set_defaults(func=cmd_migrate)
