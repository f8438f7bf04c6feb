#!/usr/bin/env python3
"""Large-corpus check: the founding documents' questions answered with and without 110 added documents.

A team grows the corpus with `advisor corpus add`; quality on the founding documents' questions must hold
when it does. benchmarks/distractors/ holds 110 realistic PM documents (interview loops, levels and pay,
AI PM work, data PM roles, ...), written for this check and never tuned on. This script builds (or reuses)
an index of the shipped corpus plus those documents, answers the labelled sets on both corpora with the
same calibration, and prints one markdown table of figures and their differences.

Caveat when reading oos_abstain on the large corpus: several distractors were written about exactly the
topics of the out-of-scope questions (offer negotiation, visas, company loops, levels), so there those
questions are covered and answering them is right; only the off-topic ones must still be declined.

Usage:
    python benchmarks/large_corpus.py                   # ../shared/eval/dev*.jsonl and benchmarks/heldout*.jsonl
    python benchmarks/large_corpus.py --data-dir /tmp/big --questions some.jsonl
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bot.core import Advisor  # noqa: E402
from bot.evaluation import answer_all, load_questions, score  # noqa: E402
from bot.grown_corpus import grow_corpus  # noqa: E402
from bot.settings import Settings  # noqa: E402

SHARED_EVAL = ROOT.parent / "shared" / "eval"
FIGURES = ("hit@1", "hit@3", "answer_first", "answer_shows_evidence", "oos_abstain", "false_abstain",
           "conflict_shows_both", "shown_chars_median")


def question_sets(paths: list[str]) -> dict[str, list[dict]]:
    if paths:
        return {Path(p).stem: load_questions(Path(p)) for p in paths}
    sets = {p.stem: load_questions(p) for p in sorted(SHARED_EVAL.glob("dev*.jsonl"))}
    held = [q for p in sorted(HERE.glob("heldout*.jsonl")) for q in load_questions(p)]
    if held:
        sets["heldout (all)"] = held
    return sets


def advisor_for(corpus: Path, data_dir: Path) -> Advisor:
    advisor = Advisor.from_settings(Settings.from_env(corpus=str(corpus), data_dir=str(data_dir)))
    started = time.perf_counter()
    status = advisor.prepare()
    print(f"{corpus.name}: {status.chunks} passages ({status.embedded} embedded now) in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return advisor


def difference(small, large) -> str:
    if isinstance(small, str):  # "5/8"
        return f"{int(large.split('/')[0]) - int(small.split('/')[0]):+d}"
    return f"{large - small:+.3f}" if isinstance(small, float) else f"{large - small:+d}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", action="append", default=[], help="a labelled JSONL set (repeatable)")
    parser.add_argument("--data-dir", help="where the two indexes are kept between runs (default: a temp folder)")
    args = parser.parse_args(argv)
    sets = question_sets(args.questions)
    if not sets:
        print("No labelled questions: pass --questions FILE.jsonl", file=sys.stderr)
        return 2
    temp = None if args.data_dir else tempfile.mkdtemp(prefix="advisor-large-")
    data = Path(args.data_dir or temp)
    try:
        large_corpus = grow_corpus(ROOT / "corpus", HERE / "distractors", data / "large-corpus")
        small = advisor_for(ROOT / "corpus", data / "small")
        large = advisor_for(large_corpus, data / "large")
        print("| set | figure | founding corpus | + 110 documents | difference |")
        print("|---|---|---:|---:|---:|")
        for name, gold in sets.items():
            a = score(answer_all(small, gold), gold)
            b = score(answer_all(large, gold), gold)
            for figure in FIGURES:
                change = difference(a[figure], b[figure])
                print(f"| {name} ({len(gold)}) | {figure} | {a[figure]} | {b[figure]} | {change} |")
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
