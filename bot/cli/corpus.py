"""`advisor corpus add|list|remove`: manage the documents the advisor answers from."""

from __future__ import annotations

from pathlib import Path

from bot.cli.common import progress_bar, settings, warn


def register(sub, common) -> None:
    """Add this module's subcommands to the `advisor` parser (`common` holds the shared options)."""
    corpus = sub.add_parser("corpus", help="add, list or remove the documents answers come from")
    actions = corpus.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", parents=[common], help="add markdown, text, HTML or PDF files")
    add.add_argument("paths", nargs="+", metavar="PATH", help="files to add (.md, .txt, .html, .pdf)")
    add.add_argument("--id", default="", help="the document id (default: a slug of its title)")
    add.add_argument("--title", default="", help="the title citations show (default: the file's own)")
    add.add_argument("--replace", action="store_true",
                     help="overwrite a document with the same id or the same text instead of refusing")
    add.add_argument("--no-index", action="store_true",
                     help="only store the files; the next `advisor index` or question updates the index")
    add.set_defaults(func=cmd_add)

    lst = actions.add_parser("list", parents=[common], help="show the documents with their passage counts")
    lst.set_defaults(func=cmd_list)

    rm = actions.add_parser("remove", parents=[common], help="delete a document and update the index")
    rm.add_argument("ids", nargs="+", metavar="ID", help="document ids, as `advisor corpus list` shows them")
    rm.add_argument("--no-index", action="store_true", help="only delete the files; do not update the index")
    rm.set_defaults(func=cmd_remove)


def _change_and_reindex(args, change) -> int:
    """Run `change()` and the incremental rebuild under the index's writers' lock, so writers go one at a time."""
    from bot.core import Advisor

    advisor = Advisor.from_settings(settings(args))  # the model itself loads only if something needs embedding
    engine = advisor.engine
    with engine.store.locked():
        change(engine.corpus_dir)
        if args.no_index:
            print("The index was not updated; run `advisor index` (or ask a question) to update it.")
            return 0
        status = advisor.prepare(progress=progress_bar())
    warn(status.warnings)
    print(f"Index updated: {status.chunks} passages from {len(engine.documents)} documents "
          f"({status.embedded} texts newly embedded, the rest reused). Running bots switch to it by themselves.")
    from bot.corpus_follow import tell_other_hosts

    note = tell_other_hosts(settings(args), engine)  # hosts sharing ADVISOR_DATABASE_URL rebuild to it
    if note:
        print(note)
    return 0


def cmd_add(args) -> int:
    from retrieval.corpus_admin import CorpusChangeError, add_files

    def change(corpus_dir: Path) -> None:
        try:
            added, warnings = add_files(corpus_dir, [Path(p) for p in args.paths], doc_id=args.id,
                                        title=args.title, replace=args.replace)
        except CorpusChangeError as exc:
            warn(exc.warnings)
            raise
        warn(warnings)
        for entry in added:
            print(f"Added {entry.id} ({entry.title}): {entry.chunks} passages, stored as {entry.file}.")

    return _change_and_reindex(args, change)


def cmd_remove(args) -> int:
    from retrieval.corpus_admin import remove_document

    def change(corpus_dir: Path) -> None:
        for doc_id in dict.fromkeys(args.ids):
            entry = remove_document(corpus_dir, doc_id)
            print(f"Removed {entry.id} ({entry.title}): deleted {entry.file}.")

    return _change_and_reindex(args, change)


def cmd_list(args) -> int:
    from retrieval.corpus_admin import list_documents
    from retrieval.index_store import IndexStore

    where = settings(args)
    entries, warnings, chunks = list_documents(where.corpus_dir)
    warn(warnings)
    print(to_table(entries))
    print(f"{len(entries)} documents, {len(chunks)} passages in {where.corpus_dir}; "
          f"{index_state(IndexStore(where.index_dir), chunks)}.")
    return 0


def index_state(store, chunks) -> str:
    """Whether the index on disk was built from these chunks (and this chunker), read from its manifest alone."""
    from retrieval.index_store import IndexDamagedError

    try:
        manifest = store.read_manifest()
    except IndexDamagedError:
        return "the index is damaged: run `advisor index` to rebuild it"
    if manifest is None:
        return "no index yet (the first question or `advisor index` builds it)"
    if manifest.matches(manifest.model, chunks):
        return f"the index is up to date (model {manifest.model})"
    return "the index is out of date: run `advisor index`"


def to_table(entries, width: int = 48) -> str:
    """A plain-text table: id, title (shortened), passages, file."""
    rows = [("ID", "TITLE", "PASSAGES", "FILE")]
    for e in entries:
        title = e.title if len(e.title) <= width else e.title[: width - 1].rstrip() + "…"
        rows.append((e.id, title, str(e.chunks), e.file))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]), r[3]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
