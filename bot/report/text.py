"""The team report as plain-text tables for the terminal (a pure function of a Report)."""

from __future__ import annotations

import textwrap

from bot.report.build import Report, share

_NONE = "  (none)"


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def table(headers: list[str], rows: list[list], width: int = 100, numeric: set[int] = frozenset(),
          notes: list[str] | None = None) -> str:
    """Columns sized to their contents; the last column is clipped so a line fits in `width`.

    Args:
        numeric: indexes of right-aligned columns.
        notes: optional text per row, wrapped under the last column.
    """
    cells = [[" ".join(str(c).split()) for c in row] for row in rows]
    sizes = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    room = width - 2 - sum(sizes[:-1]) - 2 * (len(sizes) - 1)
    sizes[-1] = max(min(sizes[-1], max(room, 12)), len(headers[-1]))
    indent = " " * (2 + sum(sizes[:-1]) + 2 * (len(sizes) - 1))
    lines = []
    for n, row in enumerate([headers, ["-" * s for s in sizes], *cells]):
        parts = []
        for i, (cell, size) in enumerate(zip(row, sizes)):
            cell = _clip(cell, size)
            parts.append(cell.rjust(size) if i in numeric else cell.ljust(size))
        lines.append(("  " + "  ".join(parts)).rstrip())
        if notes and n >= 2 and notes[n - 2]:
            lines += textwrap.wrap(" ".join(notes[n - 2].split()), width=max(width, len(indent) + 20),
                                   initial_indent=indent, subsequent_indent=indent)
    return "\n".join(lines)


def _more(shown: int, total: int, what: str) -> list[str]:
    return [f"  … and {total - shown} more {what} (raise --limit to see them)"] if total > shown else []


def to_text(report: Report, width: int = 100) -> str:
    """The whole report: summary, questions per UTC day, gaps, feedback per answer, most-cited passages."""
    w = report.window
    period = (f"{w.since:%Y-%m-%d %H:%M} to {w.until:%Y-%m-%d %H:%M} UTC" if w.since
              else f"{report.first_day:%Y-%m-%d} to {w.until:%Y-%m-%d %H:%M} UTC")
    out = [
        f"advisor report: {w.label} ({period})",
        f"Questions {report.total} from {report.askers} {'person' if report.askers == 1 else 'people'}"
        f" · answered {report.answered} ({share(report.answered, report.total)})"
        f" · not covered {report.not_covered} ({share(report.not_covered, report.total)})",
        f"Feedback {report.helpful} helpful, {report.not_helpful} not helpful"
        f" on {report.feedback_answers} answer{'' if report.feedback_answers == 1 else 's'}",
        "",
        "Questions per day (UTC days; days without questions left out)",
    ]
    busy = [d for d in report.days if d.total]
    if busy:
        headers = ["day", *report.platforms, "total", "answered", "not covered"]
        rows = [[f"{d.day:%Y-%m-%d}", *(d.by_platform.get(p, 0) for p in report.platforms), d.total, d.answered,
                 d.not_covered] for d in busy]
        out.append(table(headers, rows, width, numeric=set(range(1, len(headers)))))
    else:
        out.append(_NONE)

    out += ["", "Not covered by the documents: the gaps to fill (newest first; same words counted once)"]
    if report.gaps:
        rows = [[g.count, f"{g.last_asked:%Y-%m-%d}", ",".join(g.platforms), g.question] for g in report.gaps]
        out.append(table(["asked", "last asked", "on", "question"], rows, width, numeric={0}))
        out += _more(len(report.gaps), report.gap_count, "questions")
    else:
        out.append(_NONE)

    out += ["", "Feedback per answer (least helpful first)"]
    if report.feedback:
        rows = [[f.helpful, f.not_helpful, f.question + (" [not covered]" if f.abstained else "")]
                for f in report.feedback]
        notes = [f"reasons: {'; '.join(f.reasons)}" if f.reasons else None for f in report.feedback]
        out.append(table(["helpful", "not helpful", "question"], rows, width, numeric={0, 1}, notes=notes))
        out += _more(len(report.feedback), report.feedback_answers, "answers")
    else:
        out.append(_NONE)

    out += ["", "Most-cited passages"]
    if report.cited:
        rows = [[c.times, _clip(c.title, 48), c.section or "-"] for c in report.cited]
        out.append(table(["times", "document", "section"], rows, width, numeric={0}))
        out += _more(len(report.cited), report.cited_count, "passages")
    else:
        out.append(_NONE)
    return "\n".join(out).rstrip() + "\n"
