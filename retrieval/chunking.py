"""Chunking that follows a document's own structure: headings become sections, table rows keep their header."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from retrieval.documents import Document

# Bump when what documents.py and this module make of the same files changes (tests/test_index_store.py pins the
# shipped corpus's chunks per version): a start trusts unchanged files to give the chunks of the same version.
CHUNKER_VERSION = "9"

# A passage is cut at sentence ends below this: about what all-MiniLM-L6-v2 reads in full (256 word pieces,
# ~1,000 characters, of which the section heading takes a share), and a quote a chat can show.
MAX_CHUNK_CHARS = 480
# Runs of short lines in one section ("FAANG: ...", "Healthcare: ...", "BAD: ..." and the "This shows ..."
# that judges it) are merged into one passage up to MERGED_SHORT_CHARS, each keeping its own line: alone,
# a line lacks the context its neighbours give it, and a line that leans on the one before ("This shows a
# feature-level mindset.") loses what it leans on. Chosen among five (short, merged) pairs on the labelled
# questions (hit@3 0.83 -> 0.90 with 110/340 and labelled lines kept apart, as before, -> 200/340 merged).
SHORT_PARAGRAPH_CHARS = 200
MERGED_SHORT_CHARS = 340

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
_BOLD_LINE = re.compile(r"^(\*\*|__)([^*_].*?)\1$")
_LIST_ITEM = re.compile(r"^(?:[-*+•]|\d{1,2}[.)])\s+(.+)$")
_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?$")
_SENTENCE_END = re.compile(r"[.!?][\"”’)]*(?=\s+[\"“‘(]?[A-Z0-9$])")


@dataclass(frozen=True)
class Chunk:
    """A quotable passage of a document, with the section it sits in."""

    id: str
    doc_id: str
    doc_title: str
    section: str
    text: str
    kind: str = "paragraph"  # paragraph | list | table (one row): what its neighbours are to it

    @property
    def embed_text(self) -> str:
        """What is embedded and searched: the passage with its section as context."""
        if self.section and self.section != self.doc_title:
            return f"{self.section}\n{self.text}"
        return self.text

    @property
    def content_hash(self) -> str:
        """Hash of what is embedded: equal texts share one vector."""
        return content_hash(self.embed_text)

    @property
    def record_hash(self) -> str:
        """Hash of everything a citation shows: a renamed document or title makes the index stale."""
        return content_hash("\x00".join((self.id, self.doc_id, self.doc_title, self.section, self.text, self.kind)))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences (and lines: list items) without breaking "e.g. x" or "vs. y"."""
    sentences = []
    for line in text.split("\n"):
        start = 0
        for match in _SENTENCE_END.finditer(line):
            sentences.append(line[start:match.end()].strip())
            start = match.end()
        sentences.append(line[start:].strip())
    return [s for s in sentences if s]


def _is_table_row(line: str) -> bool:
    return line.startswith("|") and line.count("|") >= 2


def _table_cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _strip_quote(line: str) -> str:
    return re.sub(r"^>\s?", "", line).strip()


def _unbolded(line: str) -> str:
    """A line wholly in bold ("**Good:**") without its marks; any other line as it is."""
    bold = _BOLD_LINE.match(line)
    return bold.group(2).strip() if bold else line


def _bold_heading(line: str, next_line: str | None) -> str:
    """The words of a line wholly in bold that stands before text of its own ("**What does a data platform PM
    own?**", "**How to find a mentor**"): the way many articles written in markdown head a part of a section.
    Empty for any other line, and for a bold lead-in ("**Good:**", "**Note.**") that its text goes on from."""
    text = _unbolded(line)
    if text == line or next_line is None:
        return ""
    if not text or len(text) > 100 or len(text.split()) > 15 or text[-1] in ".:;,!":
        return ""
    return text


def _looks_like_heading(line: str, next_line: str | None) -> bool:
    """A section title ("FAQ", "Focused Preparation Guide") or a question heading."""
    line = _unbolded(line)
    if _LIST_ITEM.match(line) or _is_table_row(line) or line.startswith(">"):
        return False
    words = line.split()
    if not words or len(line) > 100 or len(words) > 15:
        return False
    trimmed = line.rstrip("\"”’)")
    if not trimmed:
        return False
    if trimmed.endswith("?"):
        # a one-sentence question followed by its answer (or by nothing: a closing teaser)
        return len(split_sentences(line)) == 1 and not (next_line or "").endswith("?")
    if next_line is None or trimmed[-1] in ".:;,!":
        return False
    # title-like: most words capitalised, or all caps
    capitalised = sum(w[0].isupper() or not w[0].isalpha() for w in words)
    return capitalised >= max(1, len(words) * 0.6)


@dataclass
class _Block:
    kind: str  # heading | paragraph | list | table
    section: str
    lines: list[str]
    level: int = 0
    caption: str = ""  # a table's: the line that introduced it ("Most insurtech PM roles sit in one of these")


MAX_LABEL_WORDS = 10  # "Metrics I track now" before a list: a label of its items, not a sentence


def _introduces(line: str) -> bool:
    """Whether a line introduces what follows it: it ends in a colon ("A rough guide:"), or it is a short
    label with no sentence's end ("Metrics I track now")."""
    text = _unbolded(line).rstrip()
    if text.endswith(":"):
        return True
    return bool(text) and len(text.split()) <= MAX_LABEL_WORDS and text[-1] not in ".!?;,\"”’)"


def _caption(block: _Block) -> tuple[_Block | None, str]:
    """A paragraph that ends introducing a table ("Different PM roles reward different evidence. A rough
    guide:") gives the table its caption; what the paragraph says before the caption stays a paragraph."""
    sentences = split_sentences(block.lines[-1])
    caption = _unbolded(sentences[-1]).rstrip(":").strip() if sentences else ""
    rest = " ".join(sentences[:-1])
    if not rest and len(block.lines) == 1:
        return None, caption
    return _Block(block.kind, block.section, block.lines[:-1] + ([rest] if rest else [])), caption


def _blocks(doc: Document) -> list[_Block]:
    """Parse cleaned text into headed blocks."""
    lines = [line for line in doc.text.split("\n")]
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    blocks: list[_Block] = []
    top, sub = "", ""  # current level-1 heading and question sub-heading
    top_has_content = False

    def section() -> str:
        return " › ".join(s for s in (top, sub) if s) or doc.title

    for pos, i in enumerate(nonblank):
        line = lines[i].strip()
        nxt = lines[nonblank[pos + 1]].strip() if pos + 1 < len(nonblank) else None
        md = _MD_HEADING.match(line)
        if md:
            level = len(md.group(1))
            if level <= 2:
                top, sub, top_has_content = md.group(2), "", False
            else:
                sub = md.group(2)
            continue
        bold = _bold_heading(line, nxt)
        if bold:
            sub = bold  # under the section it stands in, as a markdown sub-heading would
            continue
        if _looks_like_heading(line, nxt):
            if line.rstrip("\"”’)").endswith("?") and top and not top_has_content:
                sub = line  # a question under a section title, as in an FAQ
            else:
                top, sub, top_has_content = line, "", False
            continue
        if not sub:
            top_has_content = True
        if _is_table_row(line):
            kind = "table"
        elif _LIST_ITEM.match(line):
            kind = "list"
        else:
            kind = "paragraph"
            line = _strip_quote(line)
        prev = blocks[-1] if blocks else None
        if prev and prev.section == section() and kind in ("table", "list") and prev.kind == kind:
            prev.lines.append(line)
        elif prev and kind == "list" and prev.kind == "paragraph" and _introduces(prev.lines[-1]) \
                and prev.section == section():
            prev.kind = "list"  # the intro line belongs with its items
            prev.lines.append(line)
        elif prev and kind == "table" and prev.kind == "paragraph" and _unbolded(prev.lines[-1]).endswith(":") \
                and prev.section == section():
            # the intro captions the table: its rows are read under it, and it is no passage of its own
            kept, caption = _caption(prev)
            blocks[-1:] = [kept] if kept else []
            blocks.append(_Block(kind, section(), [line], caption=caption))
        else:
            blocks.append(_Block(kind, section(), [line]))
    return blocks


def _split_long(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Group sentences into pieces of at most `limit` characters (a longer sentence stays whole)."""
    pieces, current = [], ""
    for sentence in split_sentences(text):
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces


def _table_texts(rows: list[str]) -> list[str]:
    """One text per body row, each carrying the header: "Salary 2026: AI PM $280-420k, ..."."""
    cells = [_table_cells(r) for r in rows if not _TABLE_SEPARATOR.match(r)]
    if len(cells) < 2:
        return [" ".join(c for c in cells[0] if c)] if cells else []
    header, body = cells[0], cells[1:]
    texts = []
    for row in body:
        label, values = row[0], row[1:]
        if len(header) == 2:
            texts.append(f"{label}: {values[0] if values else ''}".strip())
            continue
        pairs = [f"{h} {v}".strip() for h, v in zip(header[1:], values) if v]
        texts.append(f"{label}: {', '.join(pairs)}")
    return texts


def _list_texts(lines: list[str]) -> list[str]:
    """List items grouped under their intro line, in pieces small enough to quote."""
    intro = lines[0] if not _LIST_ITEM.match(lines[0]) else ""
    items = [f"- {_LIST_ITEM.match(line).group(1)}" for line in lines if _LIST_ITEM.match(line)]
    lead: list[str] = []
    if len(intro) > MAX_CHUNK_CHARS // 2:
        # a long intro is a passage of its own; the items keep only its last sentence as context
        lead = _split_long(intro)
        intro = split_sentences(intro)[-1]
        intro = intro if len(intro) <= MAX_CHUNK_CHARS // 2 else ""
    pieces, current = [], []
    for item in items:
        size = len(intro) + sum(len(x) + 1 for x in current) + len(item)
        if current and size > MAX_CHUNK_CHARS:
            pieces.append(current)
            current = []
        current.append(item)
    if current:
        pieces.append(current)
    return lead + ["\n".join(([intro] if intro else []) + piece) for piece in pieces]


def _paragraph_texts(lines: list[str]) -> list[str]:
    """Paragraphs, long ones split by sentence, runs of short ones merged."""
    texts: list[str] = []
    for line in lines:
        texts.extend(_split_long(line) if len(line) > MAX_CHUNK_CHARS else [line])
    return texts


def chunk_document(doc: Document) -> list[Chunk]:
    """Split a document into chunks along its own structure."""
    texts: list[tuple[str, str, str]] = []  # (section, kind, text)
    for block in _blocks(doc):
        if block.kind == "table":
            header = _table_cells(block.lines[0])
            section = f"{block.section} › {block.caption}" if block.caption else block.section
            section = f"{section} › {' / '.join(header)}" if len(header) == 2 else section
            texts.extend((section, "table", t) for t in _table_texts(block.lines))
        elif block.kind == "list":
            texts.extend((block.section, "list", t) for t in _list_texts(block.lines))
        else:
            texts.extend((block.section, "paragraph", t) for t in _paragraph_texts(block.lines))
    # runs of one-line paragraphs ("They decide ...", "They sign off ...") read better together
    merged: list[tuple[str, str, str]] = []
    for section, kind, text in texts:
        prev = merged[-1] if merged else None
        short = kind == "paragraph" and len(text) <= SHORT_PARAGRAPH_CHARS
        if (short and prev and prev[1] == "short" and prev[0] == section
                and len(prev[2]) + len(text) < MERGED_SHORT_CHARS):
            merged[-1] = (section, "short", f"{prev[2]}\n{text}")
        else:
            merged.append((section, "short" if short else kind, text))
    return [
        Chunk(id=f"{doc.id}#{n}", doc_id=doc.id, doc_title=doc.title, section=section, text=text,
              kind="paragraph" if kind == "short" else kind)
        for n, (section, kind, text) in enumerate(merged, 1)
        if text.strip()
    ]
