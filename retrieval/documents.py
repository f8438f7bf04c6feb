"""Reading corpus documents: metadata header, text cleaning, skipping files that cannot be read, file stamps."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import AdvisorError

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt")
# Read only through `advisor corpus add`, which converts them once into a stored text document: converting
# on every load would be slow, and the stored copy carries the metadata (title, origin) the citations show.
CONVERTIBLE_SUFFIXES = (".html", ".htm", ".xhtml", ".pdf")
MAX_DOCUMENT_BYTES = 20_000_000
# A file modified this close to when it was stamped may change again within the same mtime tick: its
# size and mtime prove nothing, so its content is hashed at every check (git's "racy clean" rule).
RACY_NS = 2_000_000_000
TOO_LARGE = "too-large"  # the digest stamped for a file skipped unread for its size

# Lines that sell or link elsewhere rather than say something: never an answer.
_PROMO_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^(?:>\s*)?(?:\W\s*)?related\s*:",
        r"^(?:>\s*)?(?:\W\s*)?(?:read|see) (?:more|also)\s*:",
        r"^get (?:the|your|our) (?:full|free|complete)\b",
        r"^(?:sign up|subscribe|buy now|order now|download now)\b",
        r"\bavailable on amazon kindle\b",
        r"(?:→|->|»)\s*$",
    )
]


class CorpusError(AdvisorError):
    """The corpus cannot be used at all (missing, empty); the message says what to do."""


@dataclass(frozen=True)
class Document:
    """One source document, its metadata and its cleaned text."""

    id: str
    title: str
    text: str
    path: str
    author: str = ""
    origin: str = ""


def slugify(text: str) -> str:
    """A stable, readable id from a file name or title."""
    slug = re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", text).lower()).strip("-")
    return slug or "document"


def is_promotional(line: str) -> bool:
    """True for link-bait and sales lines ("Related: ...", "Get the full ... →")."""
    stripped = line.strip()
    return any(p.search(stripped) for p in _PROMO_PATTERNS)


def clean_text(text: str) -> str:
    """Normalise unicode and whitespace, keeping the line structure the chunker relies on."""
    text = unicodedata.normalize("NFC", text.lstrip("\ufeff"))
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = re.sub(r"[\u200b\u200c\u200d\u2060]", "", text)
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if not is_promotional(line)).strip()


def split_header(raw: str) -> tuple[dict[str, str], str]:
    """Split a `---` front-matter header of `key: value` lines from the body."""
    if not raw.startswith("---\n"):
        return {}, raw
    end = raw.find("\n---", 4)
    if end < 0:
        return {}, raw
    meta = {}
    for line in raw[4:end].splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip().lower()] = value.strip().strip("\"'")
    body = raw[end + 4 :]
    return meta, body[1:] if body.startswith("\n") else body


def guess_title(path: Path, body: str) -> str:
    """The first level-1 or level-2 heading, else a title made from the file name."""
    for line in body.splitlines():
        heading = re.match(r"^#{1,2}\s+(.+)", line.strip())
        if heading:
            return heading.group(1).strip()
    return title_from_name(path)


def title_from_name(path: Path) -> str:
    """"career_switch-notes.pdf" -> "Career switch notes"."""
    return path.stem.replace("_", " ").replace("-", " ").strip().capitalize() or path.name


@dataclass(frozen=True)
class FileStamp:
    """One corpus file as it was read: its path in the corpus folder, size, times and a digest of its bytes."""

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int  # changes whenever the file does and cannot be set back, unlike mtime (`touch -d`, `cp -p`)
    digest: str


@dataclass(frozen=True)
class CorpusRead:
    """What reading a corpus folder gave: documents, warnings, and stamps of the files read."""

    documents: list[Document]
    warnings: list[str]
    files: tuple[FileStamp, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (path in the folder, why), for files that were not used
    stamped_ns: int = 0  # wall clock just before the first file was looked at


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_document(path: Path) -> Document:
    """Read one file into a Document.

    Raises:
        ValueError: the file is binary, not UTF-8 text, too large or empty; the message names it.
    """
    return read_document_and_header(path)[0]


def read_document_and_header(path: Path) -> tuple[Document, dict[str, str]]:
    """`read_document`, and the metadata its header actually names (no defaults filled in)."""
    _check_size(path, path.stat().st_size)  # before reading: a 5 GB file is never read whole
    return _to_document(path, path.read_bytes())


def _check_size(path: Path, size: int) -> None:
    if size > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_DOCUMENT_BYTES // 1_000_000} MB")


def _to_document(path: Path, data: bytes) -> tuple[Document, dict[str, str]]:
    _check_size(path, len(data))  # it may have grown since it was looked at
    if b"\x00" in data[:8192]:
        raise ValueError(f"{path.name} looks binary, not text")
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not UTF-8 text") from None
    meta, body = split_header(raw.replace("\r\n", "\n").lstrip("\ufeff"))
    text = clean_text(body)
    if not text:
        raise ValueError(f"{path.name} has no text")
    return Document(
        id=meta.get("id") or slugify(path.stem),
        title=meta.get("title") or guess_title(path, body),
        author=meta.get("author", ""),
        origin=meta.get("origin", path.name),
        path=str(path),
        text=text,
    ), meta


def corpus_files(folder: Path) -> list[Path]:
    """The documents of a corpus folder (recursively), in a stable order."""
    if not folder.is_dir():
        raise CorpusError(
            f"The corpus folder {folder} does not exist; create it with .md or .txt documents "
            "or pass --corpus DIR."
        )
    return _files(folder, SUPPORTED_SUFFIXES)


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
    )


def unconverted_files(folder: Path) -> list[Path]:
    """HTML and PDF files dropped into the corpus folder, which are not read until `advisor corpus add`ed."""
    return _files(Path(folder), CONVERTIBLE_SUFFIXES) if Path(folder).is_dir() else []


def load_corpus(folder: Path) -> tuple[list[Document], list[str]]:
    """Read every document of a folder; unreadable ones are skipped with a warning naming them.

    Returns:
        The documents, and one warning per skipped file.
    """
    read = read_corpus(folder)
    return read.documents, read.warnings


def read_corpus(folder: Path) -> CorpusRead:
    """`load_corpus`, with a stamp of every file read (each file is read once: the stamp is of what was used)."""
    folder = Path(folder)
    documents: list[Document] = []
    files: list[FileStamp] = []
    skipped: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    stamped_ns = time.time_ns()
    for path in corpus_files(folder):
        rel = path.relative_to(folder).as_posix()
        try:
            st = path.stat()  # before reading: a change after this shows as a newer mtime at the next check
            _check_size(path, st.st_size)  # a file too large is skipped unread
            data = path.read_bytes()
        except OSError as exc:
            skipped.append((rel, str(exc)))
            continue
        except ValueError as exc:
            files.append(FileStamp(rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, TOO_LARGE))
            skipped.append((rel, str(exc)))
            continue
        files.append(FileStamp(rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, _digest(data)))
        try:
            doc = _to_document(path, data)[0]
        except ValueError as exc:
            skipped.append((rel, str(exc)))
            continue
        if doc.id in seen:
            skipped.append((rel, f"its id '{doc.id}' is already used by {seen[doc.id]}"))
            continue
        seen[doc.id] = str(path)
        documents.append(doc)
    warnings = corpus_warnings(folder, skipped)
    if not documents:
        raise CorpusError(
            f"The corpus folder {folder} has no readable .md or .txt documents; add some (HTML and PDF "
            "with `advisor corpus add PATH`) or pass --corpus DIR."
        )
    return CorpusRead(documents, warnings, tuple(files), tuple(skipped), stamped_ns)


def corpus_warnings(folder: Path, skipped) -> list[str]:
    """One warning per skipped file and per HTML or PDF file not yet added; each is logged at INFO too."""
    warnings = [f"Skipped {Path(folder) / rel}: {why}." for rel, why in skipped]
    for path in unconverted_files(folder):
        warnings.append(f"Skipped {path}: {path.suffix.lower().lstrip('.').upper()} files are read only "
                        f"through `advisor corpus add {path.name}`, which stores a text copy; move the "
                        "original out of the corpus folder afterwards.")
    for warning in warnings:  # callers show them to the user once; the log keeps them for -v
        logger.info(warning)
    return warnings


def files_unchanged(folder: Path, files: list[FileStamp], stamped_ns: int) -> bool:
    """Whether the folder holds exactly these files with these contents, read without parsing anything.

    A file whose size, mtime and ctime are as stamped (and were not racy then) is taken as unchanged, as git
    does; any other file is hashed, so a touched, copied or checked-out file with the same bytes still matches.
    """
    folder = Path(folder)
    try:
        paths = corpus_files(folder)
    except CorpusError:
        return False
    if [p.relative_to(folder).as_posix() for p in paths] != [f.path for f in files]:
        return False
    for path, stamp in zip(paths, files):
        try:
            st = os.stat(path)
            if st.st_size != stamp.size:
                return False
            if st.st_size > MAX_DOCUMENT_BYTES:
                continue  # skipped unread then and now, whatever its bytes
            if (st.st_mtime_ns, st.st_ctime_ns) == (stamp.mtime_ns, stamp.ctime_ns) \
                    and max(stamp.mtime_ns, stamp.ctime_ns) < stamped_ns - RACY_NS:
                continue
            if _digest(path.read_bytes()) != stamp.digest:
                return False
        except OSError:
            return False
    return True
