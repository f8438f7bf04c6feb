"""Adding, listing and removing corpus documents: stored atomically, refused with a reason when they clash."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from retrieval.chunking import Chunk, chunk_document
from retrieval.convert import ConversionError, convert_file, document_id, to_stored_text
from retrieval.documents import CorpusError, Document, load_corpus, read_document, slugify
from retrieval.errors import AdvisorError

logger = logging.getLogger(__name__)


class CorpusChangeError(AdvisorError):
    """A change to the corpus was refused; the message says why and what to do instead."""

    def __init__(self, message: str, warnings: Sequence[str] = ()):
        super().__init__(message)
        self.warnings = tuple(warnings)  # one per file that was skipped, for the caller to show first


@dataclass(frozen=True)
class Entry:
    """One document as `advisor corpus list` shows it."""

    id: str
    title: str
    chunks: int
    file: str  # relative to the corpus folder


def _text_key(text: str) -> str:
    """Equal for texts that differ only in spacing: "this content is already in the corpus"."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def _entry(doc: Document, folder: Path, chunks: int | None = None) -> Entry:
    path = Path(doc.path)
    try:
        name = str(path.relative_to(folder))
    except ValueError:
        name = str(path)
    return Entry(doc.id, doc.title, len(chunk_document(doc)) if chunks is None else chunks, name)


def _existing(folder: Path) -> list[Document]:
    """The readable documents of a folder, first of each id; unlike load_corpus, an empty folder is fine."""
    try:
        return load_corpus(folder)[0]
    except CorpusError:  # missing, empty or nothing readable: unreadable files are warned about elsewhere
        return []


def list_documents(folder: Path) -> tuple[list[Entry], list[str], list[Chunk]]:
    """Every document with its chunk count (chunking is cheap: no model needed), the load warnings, and
    the chunks themselves in index order (to compare with an index's manifest).

    Raises:
        CorpusError: the folder is missing or has no readable document.
    """
    folder = Path(folder)
    documents, warnings = load_corpus(folder)
    per_document = [chunk_document(d) for d in documents]
    entries = sorted((_entry(d, folder, len(c)) for d, c in zip(documents, per_document)), key=lambda e: e.id)
    return entries, warnings, [c for chunks in per_document for c in chunks]


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old content or the new, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it private; a bot running as another user must read the corpus
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _free_name(folder: Path, stem: str, suffix: str, mine: set[Path]) -> Path:
    target = folder / f"{stem}{suffix}"
    n = 2
    while target.exists() and target.resolve() not in mine:
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target


def add_file(folder: Path, source: Path, *, doc_id: str = "", title: str = "", replace: bool = False,
             existing: list[Document] | None = None) -> Entry:
    """Convert one file and store it in the corpus folder.

    Args:
        existing: the corpus's documents, updated in place (so a batch sees the files added before it).
        replace: overwrite a document with the same id, or one with the same text, instead of refusing.

    Raises:
        ConversionError: the file cannot be read or has no text.
        CorpusChangeError: its id or its text is already in the corpus (and `replace` is off).
    """
    folder, source = Path(folder), Path(source)
    existing = _existing(folder) if existing is None else existing
    if doc_id and doc_id != slugify(doc_id):
        raise CorpusChangeError(f"The id '{doc_id}' should be lowercase letters, digits and hyphens, "
                                f"such as '{slugify(doc_id)}'")
    converted = convert_file(source)
    if title:
        converted = dataclasses.replace(converted, title=" ".join(title.split()))
    new_id = doc_id or document_id(converted, source)
    same_id = [d for d in existing if d.id == new_id]
    key = _text_key(converted.text)
    same_text = [d for d in existing if d.id != new_id and _text_key(d.text) == key]
    if not replace:
        if same_id:
            raise CorpusChangeError(
                f"Cannot add {source.name}: the id '{new_id}' is already used by {Path(same_id[0].path).name}; "
                "pass --replace to overwrite it, or --id NEW_ID to keep both"
            )
        if same_text:
            raise CorpusChangeError(
                f"Cannot add {source.name}: its text is already in the corpus as '{same_text[0].id}' "
                f"({Path(same_text[0].path).name}); pass --replace to replace that document"
            )
    replaced = same_id + same_text
    mine = {Path(d.path).resolve() for d in replaced}
    target = _free_name(folder, new_id, converted.suffix, mine)
    stored = to_stored_text(new_id, converted, time.strftime("%Y-%m-%d"))
    write_atomic(target, stored)
    for doc in replaced:
        if Path(doc.path).resolve() != target.resolve():
            Path(doc.path).unlink(missing_ok=True)
        existing.remove(doc)
    doc = read_document(target)
    existing.append(doc)
    logger.info("Stored %s as %s (id %s)", source, target, new_id)
    return _entry(doc, folder)


def add_files(folder: Path, sources: Sequence[Path], *, doc_id: str = "", title: str = "",
              replace: bool = False) -> tuple[list[Entry], list[str]]:
    """Add several files; one that cannot be added is skipped with a warning naming it.

    Raises:
        CorpusChangeError: nothing could be added (the message is the reason, or a count when several failed);
            or --id / --title were given for more than one file.
    """
    if len(sources) > 1 and (doc_id or title):
        raise CorpusChangeError("--id and --title name one document; add the files one at a time to set them")
    existing = _existing(Path(folder))
    added: list[Entry] = []
    failures: list[tuple[Path, str]] = []
    for source in sources:
        try:
            added.append(add_file(folder, source, doc_id=doc_id, title=title, replace=replace, existing=existing))
        except (ConversionError, CorpusChangeError) as exc:
            failures.append((Path(source), str(exc)))
    if not added and len(failures) == 1:
        raise CorpusChangeError(failures[0][1])
    warnings = [f"Skipped {source}: {reason}." for source, reason in failures]
    if not added:
        raise CorpusChangeError(f"Nothing was added: none of the {len(sources)} files could be added "
                                "(each is named above with the reason)", warnings)
    return added, warnings


def remove_document(folder: Path, doc_id: str) -> Entry:
    """Delete a document's file from the corpus.

    Raises:
        CorpusChangeError: no document has that id (the message lists the ids), or it is the last one.
    """
    folder = Path(folder)
    documents = _existing(folder)
    match = next((d for d in documents if d.id == doc_id), None)
    if match is None:
        ids = sorted(d.id for d in documents)
        close = difflib.get_close_matches(doc_id, ids, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        listed = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
        raise CorpusChangeError(
            f"No document has the id '{doc_id}'; {hint}the corpus has: {listed or 'no documents'} "
            "(see `advisor corpus list`)"
        )
    if len(documents) == 1:
        raise CorpusChangeError(
            f"'{doc_id}' is the only document in {folder}; add another before removing it (the advisor "
            "needs at least one)"
        )
    entry = _entry(match, folder)
    Path(match.path).unlink()
    logger.info("Removed %s (%s)", doc_id, match.path)
    return entry
