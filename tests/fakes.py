"""Test doubles: a fast deterministic embedder, so most tests need not load the real model."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from retrieval.lexical import tokenize


class HashingEmbedder:
    """Bag of stemmed words hashed into a fixed number of dimensions, L2-normalised.

    Texts sharing words are close, which is enough for retrieval tests to be meaningful.
    """

    def __init__(self, dim: int = 256, name: str = "fake-hashing-256"):
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
