"""`advisor calibrate`: fit the abstention threshold on a labelled question set's in- and out-of-scope questions."""

from __future__ import annotations

from pathlib import Path

from bot.core import Advisor
from bot.evaluation import load_questions
from retrieval.abstention import CALIBRATION_FILE, features, fit


def calibrate(advisor: Advisor, questions_path: Path, out: Path = CALIBRATION_FILE) -> dict:
    """Search every question, fit the abstainer on the evidence features, save it, report how it splits."""
    gold = [g for g in load_questions(questions_path) if "kind" in g]
    retriever = advisor.engine.retriever
    rows = [features(retriever.search(g["question"])) for g in gold]
    labels = [0 if g["kind"] == "out_of_scope" else 1 for g in gold]
    abstainer = fit(rows, labels)
    abstainer.save(out)
    advisor.engine.abstainer = abstainer
    refused = [abstainer.refuses(r) for r in rows]
    answerable = [r for r, lab in zip(refused, labels) if lab == 1]
    oos = [r for r, lab in zip(refused, labels) if lab == 0]
    return {
        "threshold": abstainer.threshold,
        "min_dense": abstainer.min_dense,
        "weights": {k: round(v, 3) for k, v in abstainer.weights.items()},
        "oos_abstain": round(sum(oos) / max(1, len(oos)), 3),
        "false_abstain": round(sum(answerable) / max(1, len(answerable)), 3),
        "saved_to": str(out),
    }
