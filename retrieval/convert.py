"""Turning markdown, text, HTML and PDF files into corpus documents with a `---` front-matter header."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from retrieval.documents import (MAX_DOCUMENT_BYTES, clean_text, guess_title, read_document_and_header, slugify,
                                 title_from_name)
from retrieval.errors import AdvisorError

logger = logging.getLogger(__name__)

FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "text",
           ".html": "html", ".htm": "html", ".xhtml": "html", ".pdf": "pdf"}
MAX_SOURCE_BYTES = 100_000_000  # PDFs carry fonts and images; only their text is kept
MAX_ID_CHARS = 60
_SENTENCE_END = re.compile(r"[.!?:;][\"”’)]*$")


class ConversionError(AdvisorError, ValueError):
    """A file cannot become a corpus document; the message names it and says why."""


@dataclass(frozen=True)
class Converted:
    """A source file turned into text the chunker reads, with the metadata found in it."""

    title: str
    text: str
    origin: str
    format: str  # markdown | text | html | pdf
    author: str = ""
    id: str = ""  # only when the source names its own id (a markdown front-matter header)

    @property
    def suffix(self) -> str:
        """Suffix of the stored copy: markdown keeps its headings, PDF text is plain."""
        return ".md" if self.format in ("markdown", "html") else ".txt"


def detect_format(path: Path, head: bytes) -> str:
    """The format by suffix, or by a look at the first bytes for an unknown suffix."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt:
        return fmt
    sniff = head.lstrip()[:200].lower()
    if sniff.startswith(b"%pdf-"):
        return "pdf"
    if sniff.startswith((b"<!doctype html", b"<html")):
        return "html"
    raise ConversionError(
        f"{path.name} is not a supported type ({path.suffix or 'no suffix'}); add .md, .txt, .html or .pdf files"
    )


def convert_file(path: Path) -> Converted:
    """Read one file and turn it into a corpus document.

    Raises:
        ConversionError: the file is missing, of an unknown type, damaged, or has no text to keep.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise ConversionError(f"{path.name} is larger than {MAX_SOURCE_BYTES // 1_000_000} MB")
        with open(path, "rb") as f:
            head = f.read(8192)
    except FileNotFoundError:
        raise ConversionError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ConversionError(f"{path} is a folder; name the files in it") from None
    except OSError as exc:
        raise ConversionError(f"{path.name} cannot be read ({exc.strerror or exc})") from None
    fmt = detect_format(path, head)
    origin = path.name  # not the full path: a shared corpus should not carry someone's home folder
    if fmt == "pdf":
        return pdf_to_document(path.read_bytes(), path, origin)
    if fmt == "html":
        return html_to_document(path.read_bytes(), path, origin)
    if size > MAX_DOCUMENT_BYTES:
        raise ConversionError(f"{path.name} is larger than {MAX_DOCUMENT_BYTES // 1_000_000} MB")
    try:
        doc, header = read_document_and_header(path)
    except ValueError as exc:
        raise ConversionError(str(exc)) from None
    return Converted(title=doc.title, text=doc.text, origin=header.get("origin") or origin, format=fmt,
                     author=doc.author, id=header.get("id", ""))


def html_to_document(data: bytes, path: Path, origin: str = "") -> Converted:
    """The main text of a web page as markdown (headings, lists, tables), without navigation or footers."""
    import trafilatura

    if b"\x00" in data[:8192]:
        raise ConversionError(f"{path.name} looks binary, not HTML")
    text = trafilatura.extract(
        data, output_format="markdown", include_tables=True, include_formatting=True,
        include_links=False, include_images=False, include_comments=False,
        favor_precision=True,  # passages are quoted as evidence: better to miss a line than keep a menu
    )
    text = clean_text(text or "")
    if not _has_words(text):
        raise ConversionError(
            f"{path.name} has no main text that could be extracted (only navigation or boilerplate); "
            "save the article page itself, or paste its text into a .md file and add that"
        )
    meta = trafilatura.extract_metadata(data)
    title = _one_line(getattr(meta, "title", "") or "") or guess_title(path, text)
    url = getattr(meta, "url", "") or ""
    return Converted(title=title, text=text, origin=url or origin or path.name, format="html",
                     author=_one_line(getattr(meta, "author", "") or ""))


def pdf_to_document(data: bytes, path: Path, origin: str = "") -> Converted:
    """The text layer of a PDF, its hard-wrapped lines joined back into paragraphs."""
    import io

    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ConversionError(f"{path.name} is password-protected; save an unprotected copy and add that")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
    except ConversionError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types for damaged files
        logger.info("pypdf could not read %s: %s: %s", path, type(exc).__name__, exc)
        raise ConversionError(f"{path.name} is not a readable PDF (damaged, or not a PDF)") from None
    text = clean_text(reflow("\n\n".join(pages)))
    if not _has_words(text):
        raise ConversionError(
            f"{path.name} has no text layer (a scanned PDF?); run it through OCR (e.g. ocrmypdf) and add the result"
        )
    title = _one_line(str(getattr(info, "title", "") or "")) if info else ""
    first = next((line for line in text.split("\n") if line.strip()), "")
    title = title or (first if len(first) <= 120 else "") or title_from_name(path)
    author = _one_line(str(getattr(info, "author", "") or "")) if info else ""
    return Converted(title=title, text=text, origin=origin or path.name, format="pdf", author=author)


def reflow(text: str) -> str:
    """Join lines a PDF wrapped mid-sentence; keep lines that end a sentence, and short heading-like lines."""
    out: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            out.append("")
            continue
        prev = out[-1] if out else ""
        wrapped = prev and not _SENTENCE_END.search(prev) and (line[0].islower() or prev.endswith((",", "-")))
        if wrapped:
            out[-1] = prev + line if prev.endswith("-") else f"{prev} {line}"
        else:
            out.append(line)
    return "\n".join(out)


def document_id(converted: Converted, path: Path) -> str:
    """A stable id: the source's own, else a slug of the title, else of the file name."""
    if converted.id:
        return converted.id
    slug = slugify(converted.title) if converted.title else slugify(path.stem)
    if len(slug) > MAX_ID_CHARS:
        slug = slug[:MAX_ID_CHARS].rsplit("-", 1)[0] or slug[:MAX_ID_CHARS]
    return slug


def to_stored_text(doc_id: str, converted: Converted, added: str) -> str:
    """The file written into the corpus: front matter the loader reads, then the text."""
    meta = {"id": doc_id, "title": converted.title, "author": converted.author, "origin": converted.origin,
            "format": converted.format, "added": added}
    header = "\n".join(f"{key}: {_one_line(value)}" for key, value in meta.items() if value)
    return f"---\n{header}\n---\n{converted.text}\n"


def _has_words(text: str) -> bool:
    return len(re.findall(r"\w{2,}", text)) >= 3


def _one_line(value: str) -> str:
    return " ".join(str(value).split())
