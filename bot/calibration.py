"""`advisor calibrate`: fit the ranking and the abstention on labelled questions, and measure them on folds
they were not fitted on."""

from __future__ import annotations

import contextlib
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bot.core import Advisor
from bot.evaluation import answer_all, load_questions, score
from retrieval.abstention import Abstainer, features, fit
from retrieval.answer import Style
from retrieval.calibration import Calibration
from retrieval.ranking import DEFAULT_WEIGHTS, Ranker

# The rankings calibration chooses from, each judged by the answers it leads to: the shipped fusion, with the
# centred cosine (the passage's similarity once the corpus's shared direction is removed) at a few weights. A
# ranker fitted freely to the signals did better on the questions it was fitted on and no better on held-out
# folds (hit@1 0.68 either way over dev + dev2), so the choice is kept this small.
CENTRED_WEIGHTS = (0.0, 0.1, 0.2, 0.4)
# ... and the question's phrases (two of its words side by side, `retrieval.lexical.phrases`) at a few
# weights around BM25's 0.2. A phrase tells a passage about the point asked from one that only shares its
# words, which matters most when the corpus grows: `--grown-with` judges the rankers on a grown corpus too.
PHRASE_WEIGHTS = (0.0, 0.1, 0.2, 0.3)
# The composer's choices (retrieval.answer.Style), two values each, chosen one at a time from the defaults
# (each kept at the value that reads best, the others as chosen so far): the first sentence holding the
# evidence, the answer showing it, both sides of a conflict, within the concision target.
STYLE_CHOICES = {
    "lead_margin": (0.0, 0.05), "other_margin": (0.2, 0.35), "other_line_margin": (1.0, 0.2),
    "other_lexical": (0.0, 0.2),
    "sentence_centred": (0.0, 0.5), "line_phrase": (0.0, 0.2), "label_line": (0.0, 0.1), "max_sentences": (2, 3),
    "extra_for_other": (0, 1),
    "further_quote_chars": (160, 260),
}
MAX_SHOWN_CHARS = 1000  # median of what a reader is shown (answer and quotes): a style above it is not chosen


def candidate_rankers() -> list[Ranker]:
    """The rankers calibration chooses from, the plainest first (a tie keeps it)."""
    return [Ranker(weights={**DEFAULT_WEIGHTS, "centred": c, "phrase": p})
            for p in PHRASE_WEIGHTS for c in CENTRED_WEIGHTS]


def _answer_quality(figures: dict, limit: float | None = MAX_SHOWN_CHARS) -> float:
    """answer_first + answer_shows_evidence + the share of conflicts shown both ways, less a hundredth per 100
    characters shown (of two styles that answer alike, the shorter reads better); -1 above the concision
    target (`limit`), so that showing everything is never the answer."""
    shown = figures["shown_chars_median"]
    if limit is not None and shown > limit:
        return -1.0
    both, total = (int(n) for n in str(figures["conflict_shows_both"]).split("/"))
    return figures["answer_first"] + figures["answer_shows_evidence"] + (both / total if total else 0.0) - shown / 10000


# Answers everything: a ranker is judged on the answers it leads to, before any abstainer is fitted for it.
_ANSWERS_ALL = Abstainer(weights={}, bias=10.0, threshold=0.0)


def choose_ranker(advisor: Advisor, items: list[dict], grown: Advisor | None = None) -> Ranker:
    """The candidate ranker whose answers to these answerable questions read best (`_answer_quality`), on the
    advisor's corpus and, with a `grown` advisor (the corpus with more documents added), there too; of
    rankers that tie, the plainest. On the grown corpus the passages are other documents' and often longer,
    so length counts there only as the small per-character term, not as the concision target."""
    asked = [g for g in items if g["kind"] != "out_of_scope"]

    def quality(ranker: Ranker) -> float:
        total = 0.0
        for answering, limit in [(advisor, MAX_SHOWN_CHARS)] + ([(grown, None)] if grown else []):
            with using(answering, Calibration(ranker=ranker, abstainer=_ANSWERS_ALL)):
                total += _answer_quality(score(answer_all(answering, asked), asked), limit)
        return total

    return max(candidate_rankers(), key=quality)


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


def fit_calibration(advisor: Advisor, items: list[dict], grown: Advisor | None = None) -> Calibration:
    """Choose the ranker on these labelled questions (on a `grown` corpus too, when given, so that the ranker
    chosen also holds when a team adds documents), fit the abstainer on the evidence it then finds, then
    choose the style the answers to these questions read best in."""
    ranker = choose_ranker(advisor, items, grown)
    retriever = advisor.engine.retriever
    with using(advisor, Calibration(ranker=ranker, abstainer=advisor.engine.abstainer)):
        rows = [features(retriever.search(g["question"])) for g in items]
    abstainer = fit(rows, [int(g["kind"] != "out_of_scope") for g in items])
    model = advisor.engine.embedder.name

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


@dataclass
class CrossValidated:
    """The figures of every question answered by a calibration fitted without its fold, and its answers;
    with a grown corpus, the figures of the same answered there too."""

    figures: dict
    results: list[dict]
    grown_figures: dict | None = None


def cross_validate(advisor: Advisor, gold: list[dict], k: int, seed: int = 0,
                   grown: Advisor | None = None) -> CrossValidated:
    """The answer figures on each fold's questions, answered with a calibration fitted on the other folds
    (on the `grown` corpus too, when given, where the fold's questions are answered as well)."""
    results: dict[int, dict] = {}
    grown_results: dict[int, dict] = {}
    for held_out in folds_of(gold, k, seed):
        out = set(held_out)
        fitted = fit_calibration(advisor, [g for i, g in enumerate(gold) if i not in out], grown)
        for answering, into in [(advisor, results)] + ([(grown, grown_results)] if grown else []):
            with using(answering, fitted):
                for i, line in zip(held_out, answer_all(answering, [gold[i] for i in held_out])):
                    into[i] = line
    ordered = [results[i] for i in range(len(gold))]
    grown_figures = score([grown_results[i] for i in range(len(gold))], gold) if grown else None
    return CrossValidated(score(ordered, gold), ordered, grown_figures)


def calibrate(advisor: Advisor, questions_path: Path, out: Path, folds: int = 0,
              grown: Advisor | None = None) -> dict:
    """Fit on every question and save; with `folds`, first report the figures on held-out folds. With a
    `grown` advisor (the same corpus with more documents added), the ranker is chosen on both corpora and
    the figures there are reported too."""
    gold = [g for g in load_questions(questions_path) if "kind" in g]
    report: dict = {}
    if folds >= 2:
        held_out = cross_validate(advisor, gold, folds, grown=grown)
        report["cross-validated"] = held_out.figures
        if grown:
            report["cross-validated, grown corpus"] = held_out.grown_figures
    calibration = fit_calibration(advisor, gold, grown)
    calibration.save(out)
    advisor.engine.use(calibration)  # in use from now on
    report["in-sample"] = score(answer_all(advisor, gold), gold)
    if grown:
        with using(grown, calibration):
            report["in-sample, grown corpus"] = score(answer_all(grown, gold), gold)
    report["centred weight"] = calibration.ranker.weights.get("centred", 0.0)
    report["phrase weight"] = calibration.ranker.weights.get("phrase", 0.0)
    report["style"] = asdict(calibration.style)
    report["abstainer"] = {"threshold": calibration.abstainer.threshold, "min_dense": calibration.abstainer.min_dense,
                           "weights": {k: round(v, 3) for k, v in calibration.abstainer.weights.items()}}
    report["saved_to"] = str(out)
    return report
