"""Deciding when the evidence is too weak to answer, with weights calibrated on labelled questions."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from retrieval.search import SearchResult

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


def features(result: SearchResult) -> dict[str, float]:
    """The evidence signals: how close the best passage is, and how much of the question the corpus knows."""
    return {
        "top_dense": result.top_dense,
        "top_fused": result.hits[0].score if result.hits else 0.0,
        "coverage": result.coverage,
    }


@dataclass(frozen=True)
class Abstainer:
    """A logistic score over the evidence features; below `threshold` the advisor says it does not know."""

    weights: dict
    bias: float
    threshold: float

    def confidence(self, result: SearchResult) -> float:
        f = features(result)
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in f.items())
        return 1.0 / (1.0 + math.exp(-z))

    def should_abstain(self, result: SearchResult) -> bool:
        return not result.hits or self.confidence(result) < self.threshold

    def save(self, path: Path = CALIBRATION_FILE) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> "Abstainer":
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            # uncalibrated fallback: only a clearly unrelated question abstains
            return cls(weights={"top_dense": 12.0}, bias=-4.0, threshold=0.5)
