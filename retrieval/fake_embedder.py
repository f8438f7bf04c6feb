"""A test and demo double: a fast deterministic embedder selected by the model name `fake:hashing`.

It loads nothing (no torch, no weights, no ONNX export), so `ADVISOR_MODEL=fake:hashing advisor ...` starts
in well under a second: the test suite runs real `advisor` processes with it, and benchmarks of the plumbing
(Slack load, the store) use it to leave the model out of their figures. Its answers are only as good as
shared words make them; never serve users with it.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from retrieval.lexical import tokenize

NAME = "fake:hashing"


class HashingEmbedder:
    """Bag of stemmed words hashed into a fixed number of dimensions, L2-normalised.

    Texts sharing words are close, which is enough for retrieval tests to be meaningful. `calls` and
    `texts_embedded` count its work, so a test can tell whether an index was reused.
    """

    def __init__(self, dim: int = 256, name: str = NAME):
        self.name = name
        self._dim = dim
        self.calls = 0
        self.texts_embedded = 0

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in tokenize(text) or ["empty"]:
                h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
                out[row, h % self._dim] += 1.0
            out[row] /= np.linalg.norm(out[row]) or 1.0
        return out
