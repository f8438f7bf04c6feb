"""Ordering the candidates: the evidence signals a passage is scored on, and the linear ranker over them."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import numpy as np

logger = logging.getLogger(__name__)

# The signals a candidate passage is scored on; a ranker's weights are keyed by these names.
FEATURES = (
    "dense",  # cosine of the question and the passage (with its section)
    "window",  # cosine of the question and the passage with its neighbours
    "sentence",  # cosine of the question and the passage's closest sentence
    "lexical",  # BM25, divided by the best BM25 of this question
    "centred",  # cosine once the corpus's mean direction (what every passage of it shares) is removed
    "phrase",  # share of the question's phrases (two words side by side) the passage holds, by rarity
)

# The hand-set fusion this project shipped with; `advisor calibrate` chooses the weights of the centred cosine
# and of the question's phrases.
DEFAULT_WEIGHTS = {"dense": 0.4, "window": 0.4, "sentence": 0.2, "lexical": 0.2}

def centre(vectors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Vectors with the corpus's mean direction removed, normalised again."""
    centred = vectors - mean
    return centred / (np.linalg.norm(centred, axis=-1, keepdims=True) + 1e-9)


@dataclass(frozen=True)
class Ranker:
    """A weighted sum of the candidate signals; higher is more likely to hold the answer."""

    weights: dict

    def __post_init__(self):
        unknown = set(self.weights) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown ranking signals {sorted(unknown)}")

    def score(self, signals: np.ndarray) -> np.ndarray:
        """Score rows of signals (columns in FEATURES order)."""
        return signals @ np.array([float(self.weights.get(n, 0.0)) for n in FEATURES])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def default(cls) -> "Ranker":
        return cls(weights=dict(DEFAULT_WEIGHTS))


def load_ranker(data: dict | None) -> Ranker:
    """The ranker saved in a calibration, or the default weights (logged) when there is none or it is broken."""
    if data:
        try:
            return Ranker(**data)
        except (TypeError, ValueError) as exc:
            logger.warning("The saved ranker cannot be used (%s); ranking with the default weights %s.",
                           exc, json.dumps(DEFAULT_WEIGHTS))
            return Ranker.default()
    logger.info("No ranker in the calibration; ranking with the default weights %s.", json.dumps(DEFAULT_WEIGHTS))
    return Ranker.default()
