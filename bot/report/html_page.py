"""The team report as one self-contained HTML page: inline CSS and SVG charts drawn here, no script, no network."""

from __future__ import annotations

import math
from html import escape

from bot.report.build import Report, share

PLATFORM_COLOURS = {"slack": "#0072B2", "discord": "#CC79A7", "console": "#56B4E9", "cli": "#7F7F7F"}
SPARE_COLOURS = ("#E69F00", "#009E73", "#D55E00", "#F0E442", "#332288")  # Okabe-Ito, safe for colour blindness
ANSWERED, NOT_COVERED = "#009E73", "#E69F00"
HELPFUL, NOT_HELPFUL = "#0072B2", "#D55E00"

_CSS = """
:root { --ink: #1d2330; --muted: #5b6472; --rule: #dde1e7; --panel: #f6f7f9; }
* { box-sizing: border-box; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 28px 28px 40px; }
h1 { font-size: 26px; margin: 0 0 2px; }
h2 { font-size: 18px; margin: 34px 0 4px; padding-bottom: 4px; border-bottom: 1px solid var(--rule); }
.sub, .note { color: var(--muted); margin: 0 0 10px; font-size: 13.5px; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 20px 0 6px; }
.card { background: var(--panel); border-radius: 8px; padding: 12px 14px; }
.card b { display: block; font-size: 24px; line-height: 1.2; }
.card span { color: var(--muted); font-size: 13px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 28px; }
svg { display: block; width: 100%; height: auto; overflow: visible; }
.scroll { overflow-x: auto; }
.scroll svg { min-width: 620px; }
svg text { font-family: inherit; fill: var(--muted); font-size: 12px; }
svg .grid { stroke: var(--rule); stroke-width: 1; }
svg .axis { stroke: #9aa3af; stroke-width: 1; }
svg .total { fill: var(--ink); font-size: 10.5px; }
svg .inside { fill: #fff; font-size: 12px; font-weight: 600; }
svg .empty { font-size: 14px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 6px 0 0; padding: 0; list-style: none;
          font-size: 13.5px; }
.legend i { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px;
            vertical-align: -1px; }
table { width: 100%; border-collapse: collapse; font-size: 14px; margin-top: 6px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { font-size: 12.5px; color: var(--muted); font-weight: 600; background: var(--panel); }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; width: 1%; }
td.nowrap, th.nowrap { white-space: nowrap; width: 1%; }
td.q { overflow-wrap: anywhere; }
td.doc, th.doc { width: 32%; }
.tag { display: inline-block; font-size: 11.5px; padding: 0 6px; border-radius: 9px; background: #fdf0d5;
       color: #7a4b00; margin-left: 6px; }
ul.reasons { margin: 2px 0 0; padding-left: 18px; color: var(--muted); font-size: 13px; }
.quote { color: var(--muted); font-size: 13px; }
footer { margin-top: 36px; color: var(--muted); font-size: 12.5px; }
@media (max-width: 700px) { .cards { grid-template-columns: 1fr 1fr; } .pair { grid-template-columns: 1fr; } }
@media print {
  @page { margin: 14mm; }
  .scroll { overflow: visible; }
  .scroll svg { min-width: 0; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  section, tr, .card { break-inside: avoid; }
  thead { display: table-header-group; }
}
"""


def platform_colours(platforms) -> dict[str, str]:
    """A fixed colour for the known platforms, spare colours in turn for any other."""
    spare = iter(SPARE_COLOURS * (len(platforms) // len(SPARE_COLOURS) + 1))
    return {p: PLATFORM_COLOURS.get(p) or next(spare) for p in platforms}


def _nice_max(peak: int) -> tuple[int, int]:
    """The top of the y axis and its step: 1, 2 or 5 times a power of ten, at most five steps."""
    if peak <= 0:
        return 1, 1
    for exponent in range(0, 10):
        for base in (1, 2, 5):
            step = base * 10 ** exponent
            if math.ceil(peak / step) <= 5:
                return step * math.ceil(peak / step), step
    return peak, peak


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def per_day_chart(report: Report, colours: dict[str, str]) -> str:
    """Questions per UTC day as bars stacked by platform (one `rect.seg` per day and platform with questions)."""
    width, height, left, right, top, bottom = 900, 270, 40, 8, 18, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    days = report.days
    ymax, step = _nice_max(max((d.total for d in days), default=0))
    slot = plot_w / max(len(days), 1)
    bar = max(min(slot * 0.72, 48), min(slot, 1.0))
    scale = plot_h / ymax
    parts = [f'<svg id="per-day" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="Questions per day, stacked by platform">']
    for tick in range(0, ymax + 1, step):
        y = top + plot_h - tick * scale
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}"/>'
                     f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end">{tick}</text>')
    parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    every = max(1, math.ceil(len(days) / 12))
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for platform in report.platforms:
            count = day.by_platform.get(platform, 0)
            if not count:
                continue
            h = count * scale
            y -= h
            label = escape(f"{day.day:%Y-%m-%d} · {platform}: {count}")
            parts.append(f'<rect class="seg" x="{_num(x)}" y="{_num(y)}" width="{_num(bar)}" height="{_num(h)}" '
                         f'fill="{colours[platform]}" data-day="{day.day:%Y-%m-%d}" '
                         f'data-platform="{escape(platform)}" data-count="{count}"><title>{label}</title></rect>')
        if day.total and slot >= 16:
            parts.append(f'<text class="total" x="{_num(x + bar / 2)}" y="{_num(y - 4)}" '
                         f'text-anchor="middle">{day.total}</text>')
        if i % every == 0:
            parts.append(f'<text x="{_num(left + i * slot + slot / 2)}" y="{height - 10}" '
                         f'text-anchor="middle">{day.day:%b %d}</text>')
    if not report.total:
        parts.append(f'<text class="empty" x="{left + plot_w / 2}" y="{top + plot_h / 2}" '
                     f'text-anchor="middle">No questions in this period</text>')
    parts.append("</svg>")
    return "".join(parts)


def share_bar(chart_id: str, title: str, parts: list[tuple[str, int, str]], empty: str) -> str:
    """One horizontal bar split by share (one `rect.share-seg` per non-zero part) with a legend below."""
    width, height = 440, 34
    whole = sum(count for _, count, _ in parts)
    out = [f'<svg id="{chart_id}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    if not whole:
        out.append(f'<rect x="0" y="0" width="{width}" height="{height}" rx="4" fill="#eef0f3"/>'
                   f'<text class="empty" x="{width / 2}" y="{height / 2 + 5}" text-anchor="middle">'
                   f'{escape(empty)}</text>')
    x = 0.0
    for label, count, colour in parts:
        if not count:
            continue
        w = width * count / whole
        out.append(f'<rect class="share-seg" x="{_num(x)}" y="0" width="{_num(w)}" height="{height}" '
                   f'fill="{colour}" data-label="{escape(label)}" data-count="{count}">'
                   f'<title>{escape(label)}: {count} ({share(count, whole)})</title></rect>')
        if w >= 44:
            out.append(f'<text class="inside" x="{_num(x + w / 2)}" y="{height / 2 + 4}" '
                       f'text-anchor="middle">{share(count, whole)}</text>')
        x += w
    out.append("</svg>")
    legend = "".join(f'<li><i style="background:{colour}"></i>{escape(label)} <b>{count}</b>'
                     f'{f" ({share(count, whole)})" if whole else ""}</li>' for label, count, colour in parts)
    return "".join(out) + f'<ul class="legend">{legend}</ul>'


def _table(headers: list[tuple[str, str]], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="note">{escape(empty)}</p>'
    head = "".join(f'<th class="{cls}">{escape(text)}</th>' for text, cls in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _more(shown: int, total: int, what: str) -> str:
    if total <= shown:
        return ""
    return f'<p class="note">… and {total - shown} more {escape(what)} (raise --limit to see them).</p>'


def _sections(report: Report) -> str:
    gaps = [f'<tr><td class="num">{g.count}</td><td class="nowrap">{g.last_asked:%Y-%m-%d}</td>'
            f'<td class="nowrap">{escape(", ".join(g.platforms))}</td><td class="q">{escape(g.question)}</td></tr>'
            for g in report.gaps]
    feedback = []
    for f in report.feedback:
        tag = '<span class="tag">not covered</span>' if f.abstained else ""
        reasons = ("<ul class=\"reasons\">" + "".join(f"<li>{escape(r)}</li>" for r in f.reasons) + "</ul>"
                   if f.reasons else "")
        feedback.append(f'<tr><td class="q">{escape(f.question)}{tag}{reasons}</td>'
                        f'<td class="nowrap">{f.asked:%Y-%m-%d}</td><td class="num">{f.helpful}</td>'
                        f'<td class="num">{f.not_helpful}</td></tr>')
    cited = [f'<tr><td class="num">{c.times}</td><td class="doc">{escape(c.title)}</td>'
             f'<td>{escape(c.section or "-")}<div class="quote">“{escape(c.quote[:160])}'
             f'{"…" if len(c.quote) > 160 else ""}”</div></td></tr>' for c in report.cited]
    return (
        '<section id="gaps"><h2>Gaps: questions the documents did not cover</h2>'
        '<p class="sub">Newest first; questions with the same words are counted once. '
        'Add documents that answer them.</p>'
        + _table([("asked", "num"), ("last asked", "nowrap"), ("on", "nowrap"), ("question", "")], gaps,
                 "Every question in this period was covered.")
        + _more(len(report.gaps), report.gap_count, "questions") + "</section>"
        '<section id="feedback-table"><h2>Feedback per answer</h2>'
        '<p class="sub">Least helpful first, with the reasons people gave.</p>'
        + _table([("question", ""), ("asked", "nowrap"), ("helpful", "num"), ("not helpful", "num")], feedback,
                 "No feedback in this period.")
        + _more(len(report.feedback), report.feedback_answers, "answers") + "</section>"
        '<section id="cited"><h2>Most-cited passages</h2>'
        '<p class="sub">How many answers cited each passage.</p>'
        + _table([("times", "num"), ("document", "doc"), ("section and passage", "")], cited,
                 "No passages were cited in this period.")
        + _more(len(report.cited), report.cited_count, "passages") + "</section>"
    )


def to_html(report: Report) -> str:
    """The whole report as one HTML page that opens offline and prints tidily. All user text is escaped."""
    w = report.window
    period = (f"{w.since:%Y-%m-%d %H:%M} to {w.until:%Y-%m-%d %H:%M} UTC" if w.since
              else f"{report.first_day:%Y-%m-%d} to {w.until:%Y-%m-%d %H:%M} UTC")
    colours = platform_colours(report.platforms)
    legend = "".join(f'<li><i style="background:{colours[p]}"></i>{escape(p)} '
                     f'<b>{sum(d.by_platform.get(p, 0) for d in report.days)}</b></li>' for p in report.platforms)
    cards = [
        (report.total, f"questions from {report.askers} {'person' if report.askers == 1 else 'people'}"),
        (share(report.answered, report.total), f"answered ({report.answered})"),
        (report.not_covered, "not covered by the documents"),
        (f"{report.helpful} / {report.not_helpful}", "helpful / not helpful"),
    ]
    coverage = share_bar("coverage", "Answered and not covered",
                         [("Answered", report.answered, ANSWERED), ("Not covered", report.not_covered, NOT_COVERED)],
                         "No questions in this period")
    verdicts = share_bar("verdicts", "Helpful and not helpful",
                         [("Helpful", report.helpful, HELPFUL), ("Not helpful", report.not_helpful, NOT_HELPFUL)],
                         "No feedback in this period")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Advisor report · {escape(w.label)}</title><style>{_CSS}</style></head><body><main>"
        f'<header><h1>Advisor report</h1><p class="sub">{escape(w.label.capitalize())}: {period}. '
        "Days are UTC dates.</p></header>"
        '<div class="cards">' + "".join(f'<div class="card"><b>{escape(str(v))}</b><span>{escape(t)}</span></div>'
                                        for v, t in cards) + "</div>"
        '<section id="questions"><h2>Questions per day</h2><p class="sub">Stacked by platform (UTC days).</p>'
        + f'<div class="scroll">{per_day_chart(report, colours)}</div><ul class="legend">{legend}</ul></section>'
        '<div class="pair"><section id="coverage-section"><h2>Coverage</h2>'
        '<p class="sub">Answered from the documents, or not covered.</p>'
        + coverage + "</section>"
        '<section id="feedback-section"><h2>Feedback</h2><p class="sub">Verdicts people gave on answers.</p>'
        + verdicts + "</section></div>"
        + _sections(report)
        + "<footer>Generated by <code>advisor report</code>. It holds counts and the questions' words only: "
        "no user ids, and nothing that shows who asked what.</footer>"
        "</main></body></html>\n"
    )
