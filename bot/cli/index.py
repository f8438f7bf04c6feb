"""`advisor index`: rebuild the index now (unchanged passages are not embedded again)."""

from __future__ import annotations


def register(sub, common) -> None:
    """Add `index` to the `advisor` parser (`common` holds the shared options)."""
    index = sub.add_parser("index", parents=[common], help="rebuild the index now")
    index.set_defaults(func=cmd_index)


def cmd_index(args) -> int:
    from bot.cli.common import progress_bar, settings, warn
    from bot.core import Advisor

    advisor = Advisor.from_settings(settings(args))
    status = advisor.prepare(force=True, progress=progress_bar())
    warn(status.warnings)
    print(f"Indexed {status.chunks} passages from {len(advisor.engine.documents)} documents "
          f"({status.embedded} newly embedded, the rest reused) into {advisor.engine.store.folder}.")
    from bot.corpus_follow import tell_other_hosts

    note = tell_other_hosts(settings(args), advisor.engine)  # hosts sharing ADVISOR_DATABASE_URL rebuild to it
    if note:
        print(note)
    return 0
