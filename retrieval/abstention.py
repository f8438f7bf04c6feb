"""Deciding when the evidence is too weak to answer, with weights calibrated on labelled questions."""

from __future__ import annotations

import math
from dataclasses import dataclass

from retrieval.search import SearchResult


def features(result: SearchResult) -> dict[str, float]:
    """The evidence signals: how close the best passage is, and how much of the question the corpus knows."""
    return {
        "top_dense": result.top_dense,
        "top_fused": result.hits[0].score if result.hits else 0.0,
        "top_centred": result.top_centred,
        "coverage": result.coverage,
        "unknown_names": float(min(result.unknown_names, 2)),
    }


def fit(rows: list[dict[str, float]], labels: list[int], max_false_abstain: float = 0.03,
        l2: float = 0.01, steps: int = 4000) -> "Abstainer":
    """Fit a logistic model (label 1 = answerable) and pick the threshold on the same questions.

    The threshold is the highest one that abstains on at most `max_false_abstain` of the answerable
    questions, then lowered half-way to the next answerable score, so that unseen questions near
    the boundary are answered rather than refused.

    Training settings, set by hand: 3% false abstentions allowed (refusing an answerable question costs a
    user more than a weak answer with its citations to check); `l2` 0.01 keeps five weights finite on ~90
    questions that may be separable; 4,000 full-batch steps of 0.5 on standardised features reach the weights
    16,000 steps do (checked on a set of this size), in under 0.1 s.
    """
    import numpy as np

    names = sorted(rows[0])
    x = np.array([[r[n] for n in names] for r in rows], dtype=np.float64)
    y = np.array(labels, dtype=np.float64)
    mean, std = x.mean(0), x.std(0) + 1e-9
    xs = (x - mean) / std
    w, b = np.zeros(len(names)), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(xs @ w + b)))
        w -= 0.5 * (xs.T @ (p - y) / len(y) + l2 * w)
        b -= 0.5 * float(np.mean(p - y))
    # back to raw feature units, so the saved model reads without the scaler
    weights = {n: float(w[i] / std[i]) for i, n in enumerate(names)}
    bias = float(b - sum(w[i] * mean[i] / std[i] for i in range(len(names))))
    z = x @ np.array([weights[n] for n in names]) + bias
    conf = 1 / (1 + np.exp(-z))
    positives = np.sort(conf[y == 1])
    allowed = int(max_false_abstain * len(positives))
    threshold = float(positives[allowed]) if len(positives) else 0.5
    below = conf[conf < threshold]
    lower = float(below.max()) if len(below) else threshold
    return Abstainer(weights=weights, bias=bias, threshold=round((threshold + lower) / 2, 4),
                     min_dense=_dense_floor(x[:, names.index("top_dense")], y))


def _dense_floor(dense, y) -> float:
    """Half-way between the least similar answerable question's best passage and the out-of-scope ones
    below it: a question no passage is even loosely about is not answered, whatever else it shares with
    the corpus (common words, no unknown names). 0 when no out-of-scope question lies below."""
    lowest = float(dense[y == 1].min()) if (y == 1).any() else 0.0
    below = dense[(y == 0) & (dense < lowest)]
    return round((float(below.max()) + lowest) / 2, 4) if len(below) else 0.0


@dataclass(frozen=True)
class Abstainer:
    """A logistic score over the evidence features; below `threshold`, or when even the best passage is
    further from the question than `min_dense`, the advisor says it does not know."""

    weights: dict
    bias: float
    threshold: float
    min_dense: float = 0.0  # below this best-passage similarity nothing is answered

    def confidence(self, result: SearchResult) -> float:
        return self.confidence_of(features(result))

    def confidence_of(self, f: dict[str, float]) -> float:
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in f.items())
        return 1.0 / (1.0 + math.exp(-z))

    def refuses(self, f: dict[str, float]) -> bool:
        """Whether evidence with these features is too weak to answer from."""
        return f["top_dense"] < self.min_dense or self.confidence_of(f) < self.threshold

    def should_abstain(self, result: SearchResult) -> bool:
        return not result.hits or self.refuses(features(result))

    @classmethod
    def uncalibrated(cls) -> "Abstainer":
        """Before any calibration: only a clearly unrelated question abstains."""
        return cls(weights={"top_dense": 12.0}, bias=-4.0, threshold=0.5)
