"""The team report as plain data: questions per UTC day and platform, coverage, gaps, feedback, cited passages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from bot.store import StoreReader
from retrieval.errors import AdvisorError

DEFAULT_SINCE = "7d"
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
_UNITS = {"h": ("hour", timedelta(hours=1)), "d": ("day", timedelta(days=1)), "w": ("week", timedelta(weeks=1))}
_SINCE = re.compile(r"(\d{1,6})\s*([hdw])")
_MAX_SPAN = timedelta(days=36500)


class ReportError(AdvisorError):
    """Bad report options or an unreadable store; the message says what to do."""


@dataclass(frozen=True)
class Window:
    """The period a report covers; `since` None means everything recorded."""

    since: datetime | None
    until: datetime
    label: str  # "last 7 days", "everything recorded"


def parse_since(text: str, now: datetime) -> Window:
    """`7d`, `24h`, `2w` or `all` as a window ending now.

    Raises:
        ReportError: the value is not one of those forms.
    """
    value = (text or "").strip().lower()
    if value == "all":
        return Window(None, now, "everything recorded")
    match = _SINCE.fullmatch(value)
    if not match or int(match[1]) == 0:
        raise ReportError(f"--since takes a number of hours, days or weeks like 24h, 7d or 2w, or 'all'; "
                          f"got {text!r}.")
    count, (unit, step) = int(match[1]), _UNITS[match[2]]
    span = count * step
    if span > _MAX_SPAN:
        raise ReportError(f"--since {text} reaches back more than 100 years; use --since all instead.")
    return Window(now - span, now, f"last {count} {unit}{'s' if count != 1 else ''}")


def parse_limit(text: str | int) -> int:
    """The number of rows per table, 1 to 1000."""
    try:
        limit = int(str(text).strip())
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ReportError(f"--limit takes a whole number of rows from 1 to {MAX_LIMIT}; got {text!r}.")
    return limit


@dataclass(frozen=True)
class DayCount:
    """Questions on one UTC day."""

    day: date
    by_platform: dict[str, int]
    answered: int
    not_covered: int

    @property
    def total(self) -> int:
        return self.answered + self.not_covered


@dataclass(frozen=True)
class Gap:
    """A question the documents did not cover, with how often it (or the same words) was asked."""

    question: str  # the most recent wording
    count: int
    last_asked: datetime
    platforms: tuple[str, ...]


@dataclass(frozen=True)
class AnswerFeedback:
    """The verdicts on one answer."""

    question: str
    asked: datetime
    abstained: bool
    helpful: int
    not_helpful: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class CitedPassage:
    """A passage and how many answers cited it."""

    doc_id: str
    title: str
    section: str
    quote: str
    times: int


@dataclass(frozen=True)
class Report:
    """Everything a renderer shows. Holds no user ids: only counts and the questions' words."""

    window: Window
    first_day: date
    days: tuple[DayCount, ...]  # every UTC day of the window, including days without questions
    platforms: tuple[str, ...]  # busiest first
    askers: int
    gaps: tuple[Gap, ...]  # newest first, at most `limit`
    gap_count: int  # distinct uncovered questions before the limit
    feedback: tuple[AnswerFeedback, ...]  # least helpful first, at most `limit`
    feedback_answers: int  # answers with feedback before the limit
    helpful: int  # verdicts over all answers, not only the listed ones
    not_helpful: int
    cited: tuple[CitedPassage, ...]  # most cited first, at most `limit`
    cited_count: int
    limit: int

    @property
    def total(self) -> int:
        return sum(d.total for d in self.days)

    @property
    def answered(self) -> int:
        return sum(d.answered for d in self.days)

    @property
    def not_covered(self) -> int:
        return sum(d.not_covered for d in self.days)



def share(part: int, whole: int) -> str:
    """A percentage for people: '83%', or '-' when there is nothing to divide."""
    return f"{round(100 * part / whole)}%" if whole else "-"


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _same_question(text: str) -> str:
    """Questions that differ only in case, spacing or end punctuation count as one gap."""
    return re.sub(r"\s+", " ", text).strip().rstrip("?!. ").casefold()


def _days(reader: StoreReader, since: float | None, first_day: date, last_day: date):
    cells: dict[date, dict] = {}
    totals: dict[str, int] = {}
    for row in reader.daily_counts(since):
        cell = cells.setdefault(date.fromisoformat(row["day"]), {"platforms": {}, "answered": 0, "not_covered": 0})
        cell["platforms"][row["platform"]] = cell["platforms"].get(row["platform"], 0) + row["n"]
        cell["not_covered" if row["abstained"] else "answered"] += row["n"]
        totals[row["platform"]] = totals.get(row["platform"], 0) + row["n"]
    days, day = [], first_day
    while day <= last_day:
        cell = cells.get(day, {"platforms": {}, "answered": 0, "not_covered": 0})
        days.append(DayCount(day, dict(sorted(cell["platforms"].items())), cell["answered"], cell["not_covered"]))
        day += timedelta(days=1)
    platforms = tuple(sorted(totals, key=lambda p: (-totals[p], p)))
    return tuple(days), platforms


def _gaps(rows: list[dict]) -> list[Gap]:
    grouped: dict[str, dict] = {}
    for row in rows:  # newest first, so the first wording seen is the latest
        entry = grouped.setdefault(_same_question(row["question"]),
                                   {"question": row["question"].strip(), "count": 0, "last": row["created"],
                                    "platforms": set()})
        entry["count"] += 1
        entry["platforms"].add(row["platform"])
    return [Gap(e["question"], e["count"], _utc(e["last"]), tuple(sorted(e["platforms"]))) for e in grouped.values()]


def _feedback(rows: list[dict]) -> list[AnswerFeedback]:
    grouped: dict[str, dict] = {}
    for row in rows:  # newest first
        entry = grouped.setdefault(row["answer_id"], {"row": row, "helpful": 0, "not_helpful": 0, "reasons": [],
                                                      "latest": row["created"]})
        entry["helpful" if row["helpful"] else "not_helpful"] += 1
        reason = (row["reason"] or "").strip()
        if reason and reason not in entry["reasons"]:
            entry["reasons"].append(reason)
    entries = sorted(grouped.values(), key=lambda e: (-e["not_helpful"], e["helpful"], -e["latest"]))
    return [AnswerFeedback(e["row"]["question"], _utc(e["row"]["asked"]), bool(e["row"]["abstained"]),
                           e["helpful"], e["not_helpful"], tuple(e["reasons"])) for e in entries]


def build_report(reader: StoreReader, window: Window, limit: int = DEFAULT_LIMIT) -> Report:
    """Query the store and gather the report for one window."""
    since = window.since.timestamp() if window.since else None
    if window.since is not None:
        first_day = window.since.date()
    else:
        first = reader.first_created()
        first_day = _utc(first).date() if first is not None else window.until.date()
    last_day = max(window.until.date(), first_day)
    days, platforms = _days(reader, since, first_day, last_day)
    gaps = _gaps(reader.not_covered(since))
    feedback = _feedback(reader.feedback_rows(since))
    cited = tuple(CitedPassage(r["doc_id"] or "", r["title"] or r["doc_id"] or "", r["section"] or "",
                               r["quote"] or "", r["times"]) for r in reader.cited_passages(since, limit))
    return Report(
        window=window, first_day=first_day, days=days, platforms=platforms, askers=reader.asker_count(since),
        gaps=tuple(gaps[:limit]), gap_count=len(gaps), feedback=tuple(feedback[:limit]),
        feedback_answers=len(feedback), helpful=sum(f.helpful for f in feedback),
        not_helpful=sum(f.not_helpful for f in feedback), cited=cited,
        cited_count=reader.cited_passage_count(since), limit=limit,
    )
