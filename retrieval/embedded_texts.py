"""What the index embeds for its chunks, in row order: each chunk, each chunk's context window, its sentences."""

from __future__ import annotations

from typing import Sequence

from retrieval.chunking import Chunk, split_sentences


def window_texts(chunks: Sequence[Chunk]) -> list[str]:
    """Each chunk with its neighbours in the same document: the context its own words may lack.

    A table row is the exception: it already carries its header, and the rows beside it are other facts
    ("Customer: ..." beside "Technical depth: ..."), which would only blur what it says.
    """
    out = []
    for i, chunk in enumerate(chunks):
        if chunk.kind == "table":
            out.append("\n".join(t for t in (chunk.section, chunk.text) if t))
            continue
        before = chunks[i - 1].text if i > 0 and chunks[i - 1].doc_id == chunk.doc_id else ""
        after = chunks[i + 1].text if i + 1 < len(chunks) and chunks[i + 1].doc_id == chunk.doc_id else ""
        out.append("\n".join(t for t in (chunk.section, before, chunk.text, after) if t))
    return out


def embedding_texts(chunks: Sequence[Chunk]) -> tuple[list[str], list[list[str]], list[tuple[int, int]]]:
    """Every text the index embeds, in row order (each chunk, then each chunk's context window, then each
    chunk's sentences); the sentences per chunk; and each chunk's sentence rows."""
    sentences = [split_sentences(c.text) for c in chunks]
    texts = [c.embed_text for c in chunks] + window_texts(chunks)
    sentence_rows = []
    for sents in sentences:
        sentence_rows.append((len(texts), len(texts) + len(sents)))
        texts.extend(sents)
    return texts, sentences, sentence_rows


def sentences_of(flat: list[str], counts: list[int], n: int) -> tuple[list[list[str]], list[tuple[int, int]]]:
    """Each of n chunks' sentences (stored flat, with a count per chunk) and their rows in the index's vectors
    (after the n chunk rows and the n window rows); ValueError when the counts disagree."""
    if len(counts) != n or sum(counts) != len(flat):
        raise ValueError("sentence counts disagree")
    sentences, rows, start = [], [], 0
    for count in counts:
        sentences.append(flat[start:start + count])
        rows.append((2 * n + start, 2 * n + start + count))
        start += count
    return sentences, rows
