"""`advisor eval`: answer a labelled question set and print its scores."""

from __future__ import annotations

from pathlib import Path


def register(sub, common) -> None:
    """Add `eval` to the `advisor` parser (`common` holds the shared options)."""
    ev = sub.add_parser("eval", parents=[common], help="answer a labelled question set and score it")
    ev.add_argument("--questions", required=True, help="JSONL of questions (id, question, kind, evidence)")
    ev.add_argument("--out", required=True, help="where to write one result line per question")
    ev.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    from bot.cli.common import prepared_advisor
    from bot.evaluation import load_questions, run_eval

    load_questions(Path(args.questions))  # a malformed file fails before the model loads
    advisor = prepared_advisor(args)
    figures = run_eval(advisor, Path(args.questions), Path(args.out))
    for key, value in figures.items():
        print(f"{key:26} {value}")
    return 0
