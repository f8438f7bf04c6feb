"""`advisor calibrate`: fit the ranking and the abstention on labelled questions, and measure them on folds
they were not fitted on."""

from __future__ import annotations

import contextlib
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from bot.core import Advisor
from bot.evaluation import contains, answer_all, load_questions, score
from retrieval.abstention import features, fit
from retrieval.answer import Style
from retrieval.calibration import Calibration
from retrieval.ranking import DEFAULT_WEIGHTS, Ranker

# The rankings calibration chooses from: the shipped fusion, with the centred cosine (the passage's
# similarity once the corpus's shared direction is removed) at a few weights. A ranker fitted freely to the
# signals did better on the questions it was fitted on and no better on held-out folds (hit@1 0.68 either
# way over dev + dev2), so the choice is kept this small.
CENTRED_WEIGHTS = (0.0, 0.1, 0.2, 0.4)
# The composer's choices (retrieval.answer.Style), two values each, chosen one at a time from the defaults
# (each kept at the value that reads best, the others as chosen so far): the first sentence holding the
# evidence, the answer showing it, both sides of a conflict, within the concision target.
STYLE_CHOICES = {
    "lead_margin": (0.0, 0.05), "other_margin": (0.2, 0.35), "other_line_margin": (1.0, 0.2),
    "other_lexical": (0.0, 0.2),
    "sentence_centred": (0.0, 0.5), "max_sentences": (2, 3), "extra_for_other": (0, 1),
    "further_quote_chars": (160, 260),
}
MAX_SHOWN_CHARS = 1000  # median of what a reader is shown (answer and quotes): a style above it is not chosen


def candidate_rankers() -> list[Ranker]:
    return [Ranker(weights={**DEFAULT_WEIGHTS, "centred": w}) for w in CENTRED_WEIGHTS]


def _answer_quality(figures: dict) -> float:
    """answer_first + answer_shows_evidence + the share of conflicts shown both ways, less a hundredth per 100
    characters shown (of two styles that answer alike, the shorter reads better); -1 above the concision
    target, so that showing everything is never the answer."""
    shown = figures["shown_chars_median"]
    if shown > MAX_SHOWN_CHARS:
        return -1.0
    both, total = (int(n) for n in str(figures["conflict_shows_both"]).split("/"))
    return figures["answer_first"] + figures["answer_shows_evidence"] + (both / total if total else 0.0) - shown / 10000


@dataclass
class _Labelled:
    """A labelled question with its candidates' signals and which of them hold its evidence."""

    item: dict
    signals: np.ndarray
    relevant: np.ndarray

    @property
    def answerable(self) -> bool:
        return self.item["kind"] != "out_of_scope"


def _labelled(advisor: Advisor, gold: list[dict]) -> list[_Labelled]:
    retriever = advisor.engine.retriever
    out = []
    for g in gold:
        rows, x = retriever.candidate_signals(g["question"])
        evidence = g.get("evidence") or []
        relevant = np.array([any(contains(retriever.index.chunks[i].text, e) for e in evidence) for i in rows])
        out.append(_Labelled(g, x, relevant))
    return out


def _ranking_quality(ranker: Ranker, questions: list[_Labelled]) -> float:
    """hit@1 + hit@3 of a ranker's order of the candidates, over the answerable questions."""
    total = 0.0
    for q in questions:
        if q.answerable and q.relevant.any():
            order = np.argsort(-ranker.score(q.signals), kind="stable")
            total += q.relevant[order[0]] + q.relevant[order[:3]].any()
    return total


@contextlib.contextmanager
def using(advisor: Advisor, calibration: Calibration):
    """Answer with this calibration for a while (the engine's own is restored after)."""
    engine = advisor.engine
    engine.retriever  # noqa: B018 - loads the index first, so that its retriever is the one switched
    saved = engine.calibrated()
    engine.use(calibration)
    try:
        yield
    finally:
        engine.use(saved)


def fit_calibration(advisor: Advisor, questions: list[_Labelled]) -> Calibration:
    """Choose the ranker on these questions, fit the abstainer on the evidence it then finds, then choose
    the style the answers to these questions read best in."""
    ranker = max(candidate_rankers(), key=lambda r: _ranking_quality(r, questions))  # ties: the first, plainest
    retriever = advisor.engine.retriever
    with using(advisor, Calibration(ranker=ranker, abstainer=advisor.engine.abstainer)):
        rows = [features(retriever.search(q.item["question"])) for q in questions]
    abstainer = fit(rows, [int(q.answerable) for q in questions])
    model = advisor.engine.embedder.name
    items = [q.item for q in questions]

    def quality(style: Style) -> float:
        with using(advisor, Calibration(ranker=ranker, abstainer=abstainer, style=style)):
            return _answer_quality(score(answer_all(advisor, items), items))

    style, best = Style(), None
    for name, values in STYLE_CHOICES.items():
        scored = {}
        for value in values:
            candidate = replace(style, **{name: value})
            scored[value] = best if candidate == style and best is not None else quality(candidate)
        chosen = max(values, key=lambda v: (scored[v], v == getattr(style, name)))  # a tie keeps the default
        style, best = replace(style, **{name: chosen}), scored[chosen]
    return Calibration(ranker=ranker, abstainer=abstainer, model=model, style=style)


def folds_of(gold: list[dict], k: int, seed: int = 0) -> list[list[int]]:
    """k folds of question positions, each kind spread evenly across them (seeded, so runs repeat)."""
    folds: list[list[int]] = [[] for _ in range(k)]
    by_kind: dict[str, list[int]] = {}
    for i, g in enumerate(gold):
        by_kind.setdefault(g["kind"], []).append(i)
    turn = 0
    for kind in sorted(by_kind):
        members = by_kind[kind]
        random.Random(f"{seed}:{kind}").shuffle(members)
        for i in members:
            folds[turn % k].append(i)
            turn += 1
    return [sorted(f) for f in folds]


def cross_validate(advisor: Advisor, gold: list[dict], k: int, seed: int = 0,
                   questions: list[_Labelled] | None = None) -> tuple[dict, list[dict]]:
    """The answer figures on each fold's questions, answered with a calibration fitted on the other folds
    (`questions`: the gold's candidate signals, when already computed)."""
    questions = questions if questions is not None else _labelled(advisor, gold)
    results: dict[int, dict] = {}
    for held_out in folds_of(gold, k, seed):
        train = [q for i, q in enumerate(questions) if i not in set(held_out)]
        with using(advisor, fit_calibration(advisor, train)):
            for i, line in zip(held_out, answer_all(advisor, [gold[i] for i in held_out])):
                results[i] = line
    ordered = [results[i] for i in range(len(gold))]
    return score(ordered, gold), ordered


def calibrate(advisor: Advisor, questions_path: Path, out: Path, folds: int = 0) -> dict:
    """Fit on every question and save; with `folds`, first report the figures on held-out folds."""
    gold = [g for g in load_questions(questions_path) if "kind" in g]
    report: dict = {}
    questions = _labelled(advisor, gold)
    if folds >= 2:
        held_out, _ = cross_validate(advisor, gold, folds, questions=questions)
        report["cross-validated"] = held_out
    calibration = fit_calibration(advisor, questions)
    calibration.save(out)
    advisor.engine.use(calibration)  # in use from now on
    report["in-sample"] = score(answer_all(advisor, gold), gold)
    report["centred weight"] = calibration.ranker.weights.get("centred", 0.0)
    report["style"] = asdict(calibration.style)
    report["abstainer"] = {"threshold": calibration.abstainer.threshold, "min_dense": calibration.abstainer.min_dense,
                           "weights": {k: round(v, 3) for k, v in calibration.abstainer.weights.items()}}
    report["saved_to"] = str(out)
    return report
