"""`advisor ask`: answer one question, as text or JSON."""

from __future__ import annotations

import json


def register(sub, common) -> None:
    """Add `ask` to the `advisor` parser (`common` holds the shared options)."""
    ask = sub.add_parser("ask", parents=[common], help="answer one question")
    ask.add_argument("question", nargs="+", help="the question")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.set_defaults(func=cmd_ask)


def cmd_ask(args) -> int:
    from bot.cli.common import prepared_advisor
    from bot.console.render import to_text
    from retrieval.engine import check_question
    from retrieval.vocabulary import Question

    text = " ".join(args.question)
    check_question(text)  # fail fast, before the model loads
    advisor = prepared_advisor(args)
    answer = advisor.answer(Question(text=text, platform="cli"))
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(to_text(answer))
    return 0
