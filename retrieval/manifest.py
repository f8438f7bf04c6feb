"""The manifest: what an index generation was built from, and the one rule that says whether it is stale."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from retrieval.chunking import Chunk

# The layout of a generation's files: columnar chunks.json with each chunk's kind, vectors with their content
# hashes in vector_hashes.npy, BM25 saved in bm25.*, [size, CRC-32] of every file, the corpus stamp (7: which
# holds the chunker's version, no longer the manifest). A manifest of another format is not read: the index is
# rebuilt, reusing the vectors whose hashes it lists.
FORMAT_VERSION = 7


@dataclass(frozen=True)
class Manifest:
    """What an index was built from: enough to tell whether it is stale."""

    model: str
    dim: int
    chunk_hashes: tuple[str, ...]  # each chunk's record_hash: everything it embeds and a citation shows
    files: dict  # every data file of the generation: [size in bytes, CRC-32]
    created_at: float
    corpus: dict | None = None  # the corpus files the chunks were read from (Engine's stamp), when known
    format_version: int = FORMAT_VERSION

    def matches(self, model: str, chunks: Sequence[Chunk]) -> bool:
        """The index is current exactly when it holds these chunks embedded by this model.

        Nothing else decides it: not the code's version (a chunker change that alters no chunk costs nothing),
        not the corpus files (a stamp only spares a start from reading them; see `Engine`).
        """
        return self.model == model and self.chunk_hashes == tuple(c.record_hash for c in chunks)

    def to_json(self) -> str:
        return json.dumps(dict(self.__dict__, chunk_hashes=list(self.chunk_hashes)), ensure_ascii=False)

    @classmethod
    def from_data(cls, data: dict) -> "Manifest":
        """A manifest from its parsed JSON; TypeError or KeyError when fields are missing or unknown."""
        return cls(**dict(data, chunk_hashes=tuple(data["chunk_hashes"])))
