"""`advisor report`: what the team asks, what the corpus fails to cover, how answers are rated."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path


def cmd_report(args) -> int:
    """Read the store (never create it), print tables, or write an HTML page with --out."""
    from bot.cli.common import settings as settings_of
    from bot.report.build import ReportError, build_report, parse_limit, parse_since
    from bot.store import StoreError, open_reader

    window = parse_since(args.since, datetime.now(timezone.utc))
    limit = parse_limit(args.limit)
    out = _check_out(Path(args.out).expanduser()) if args.out else None
    settings = settings_of(args)
    try:
        with open_reader(settings) as reader:  # SQLite, or PostgreSQL with ADVISOR_DATABASE_URL
            report = build_report(reader, window, limit)
    except StoreError as exc:
        raise ReportError(str(exc)) from None
    if out is None:
        from bot.report.text import to_text

        print(to_text(report, width=shutil.get_terminal_size((100, 24)).columns), end="")
        return 0
    from bot.report.html_page import to_html

    partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    partial.write_text(to_html(report), encoding="utf-8")
    partial.replace(out)  # a reader never sees half a page
    print(f"Wrote {out}: {report.total} questions in the {report.window.label}, {report.answered} answered, "
          f"{report.not_covered} not covered, {report.helpful + report.not_helpful} verdicts.")
    return 0


def _check_out(out: Path) -> Path:
    from bot.report.build import ReportError

    if out.is_dir():
        raise ReportError(f"--out {out} is a folder; give a file name such as {out / 'report.html'}.")
    if not out.parent.is_dir():
        raise ReportError(f"--out {out}: the folder {out.parent} does not exist; create it or choose another path.")
    if out.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"--out {out}: the report is an HTML page, so name the file with .html (e.g. report.html).")
    return out


def register(sub, common) -> None:
    """Add this module's subcommands to the `advisor` parser (`common` holds the shared options)."""
    from bot.report.build import DEFAULT_LIMIT, DEFAULT_SINCE

    report = sub.add_parser(
        "report", parents=[common],
        help="questions per day, what the documents did not cover, feedback, most-cited passages",
        description="A report from the answer store for team leads. It never shows who asked what.")
    report.add_argument("--since", default=DEFAULT_SINCE,
                        help=f"how far back: 24h, 7d, 30d, 2w or all (default {DEFAULT_SINCE})")
    report.add_argument("--out", metavar="FILE.html",
                        help="write a self-contained HTML page with charts instead of printing tables")
    report.add_argument("--limit", default=str(DEFAULT_LIMIT), help=f"rows per table (default {DEFAULT_LIMIT})")
    report.set_defaults(func=cmd_report)
