"""Rendering an answer as plain terminal text (a pure function), for the console and `advisor ask`."""

from __future__ import annotations

import textwrap

from retrieval.vocabulary import Answer


def to_text(answer: Answer, width: int = 100) -> str:
    """The short answer, then each cited passage with its document and section."""
    lines = textwrap.wrap(answer.text, width) or [answer.text]
    if answer.written_by:
        lines.append(f"(written by {answer.written_by} from the passages below)")
    for c in answer.citations:
        lines.append("")
        lines.append(f"[{c.number}] {c.where}")
        lines.extend(textwrap.wrap(f"“{c.quote}”", width, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(lines)
