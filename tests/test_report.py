"""`advisor report`: the store queries, the text and HTML renderers, the command and its failures, privacy, and the
HTML page rendered in headless Chromium."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.report.build import ReportError, build_report, parse_limit, parse_since
from bot.report.html_page import to_html
from bot.report.text import to_text
from bot.settings import SettingsError
from bot.store import Store, StoreReader
from retrieval.vocabulary import Question
from tests.commands import assert_one_line_error, run
from tests.sample_stores import NOT_COVERED, NOW, SALARY, SERIES_A, USERS, XSS, populate, sample_store

CHROMIUM = Path("/usr/bin/chromium")
ADVISOR = Path(sys.executable).with_name("advisor")


def report_for(path: Path, since: str = "7d", limit: int = 20, now: datetime = NOW):
    with StoreReader(path) as reader:
        return build_report(reader, parse_since(since, now), limit)


@pytest.fixture
def store_path(tmp_path) -> Path:
    return populate(tmp_path / "advisor.sqlite3", NOW)


# --- options -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, hours, label", [
    ("7d", 168, "last 7 days"), ("24h", 24, "last 24 hours"), ("2w", 336, "last 2 weeks"),
    (" 30D ", 720, "last 30 days"), ("1d", 24, "last 1 day"),
])
def test_since_values(text, hours, label):
    window = parse_since(text, NOW)
    assert window.since == NOW - timedelta(hours=hours) and window.until == NOW and window.label == label


def test_since_all():
    assert parse_since("all", NOW).since is None


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "0d", "-3d", "1.5d", "seven days", "999999w"])
def test_bad_since_values_say_what_to_write(text):
    with pytest.raises(ReportError, match=r"--since .*(24h, 7d or 2w|--since all)"):
        parse_since(text, NOW)


@pytest.mark.parametrize("text", ["0", "-1", "ten", "1001", ""])
def test_bad_limits(text):
    with pytest.raises(ReportError, match="--limit takes a whole number of rows from 1 to 1000"):
        parse_limit(text)


# --- the report data -----------------------------------------------------------------------------------------

def test_counts_per_utc_day_and_platform(store_path):
    report = report_for(store_path)
    assert [d.day for d in report.days] == [date(2026, 11, 15) + timedelta(days=i) for i in range(8)]
    by_day = {d.day.day: d for d in report.days}
    assert by_day[22].by_platform == {"discord": 1, "slack": 2}
    assert (by_day[22].answered, by_day[22].not_covered) == (2, 1)
    assert by_day[21].by_platform == {"discord": 1, "slack": 1}
    assert by_day[19].by_platform == {"discord": 1, "slack": 1} and by_day[19].answered == 2
    assert by_day[17].by_platform == {"slack": 1} and by_day[17].not_covered == 1
    assert by_day[15].total == by_day[16].total == by_day[18].total == by_day[20].total == 0
    assert (report.total, report.answered, report.not_covered) == (8, 5, 3)
    assert report.platforms == ("slack", "discord")  # busiest first
    assert report.askers == 4


def test_gaps_are_deduplicated_newest_first(store_path):
    gaps = report_for(store_path).gaps
    assert [(g.question, g.count, g.platforms) for g in gaps] == [
        ("How do I negotiate equity at a pre-seed startup?", 2, ("discord", "slack")),
        (XSS, 1, ("slack",)),
    ]
    assert gaps[0].last_asked == NOW - timedelta(hours=4)


def test_feedback_per_answer_least_helpful_first(store_path):
    report = report_for(store_path)
    assert [(f.question, f.helpful, f.not_helpful, f.abstained) for f in report.feedback] == [
        ("does a Series A startup hire ML PMs?", 1, 2, False),
        ("How do I negotiate equity at a pre-seed startup?", 0, 1, True),
        ("what do senior ML PMs earn?", 1, 0, False),
    ]
    assert report.feedback[0].reasons == ("too vague", "missing Series B numbers")  # newest first
    assert (report.helpful, report.not_helpful) == (2, 3)  # the verdict from 10 days ago is outside the window


def test_most_cited_passages(store_path):
    cited = report_for(store_path).cited
    assert [(c.section, c.times) for c in cited] == [(SERIES_A.section, 4), (SALARY.section, 2)]
    assert cited[0].title == SERIES_A.title and cited[0].quote == SERIES_A.quote


def test_all_reaches_back_to_the_first_question(store_path):
    report = report_for(store_path, "all")
    assert report.days[0].day == date(2026, 11, 12) and report.days[-1].day == date(2026, 11, 22)
    assert (report.total, report.answered, report.not_covered) == (10, 6, 4)
    assert len(report.gaps) == 3 and report.cited_count == 3 and report.helpful == 3


def test_limit_cuts_tables_but_not_totals(store_path):
    report = report_for(store_path, "all", limit=1)
    assert len(report.gaps) == len(report.feedback) == len(report.cited) == 1
    assert (report.gap_count, report.feedback_answers, report.cited_count) == (3, 4, 3)
    assert (report.helpful, report.not_helpful) == (3, 3)
    text = to_text(report)
    assert "… and 2 more questions" in text and "… and 3 more answers" in text and "… and 2 more passages" in text


def test_an_empty_store_gives_an_empty_report(tmp_path):
    Store(tmp_path / "s.sqlite3").close()
    report = report_for(tmp_path / "s.sqlite3")
    assert report.total == 0 and len(report.days) == 8 and not report.gaps and not report.feedback
    assert to_text(report).count("(none)") == 4
    page = to_html(report)
    assert "No questions in this period" in page and "No feedback in this period" in page
    assert 'class="seg"' not in page and 'class="share-seg"' not in page


def test_the_report_reads_while_the_bot_writes_and_never_writes(store_path):
    writer = Store(store_path)  # the bot, still running
    writer.save_answer("live", Question("a live one?", user="U1", platform="slack"), NOT_COVERED, 0.1,
                       created=NOW.timestamp() - 60)
    assert report_for(store_path).total == 9  # sees the bot's write, still in the WAL
    writer.close()
    before, files = store_path.read_bytes(), sorted(os.listdir(store_path.parent))
    assert report_for(store_path, "all").total == 11
    with StoreReader(store_path) as reader:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._db.execute("DELETE FROM answers")
    assert store_path.read_bytes() == before
    # SQLite may leave its usual empty -wal/-shm companions beside a WAL database it read; nothing else appears
    assert set(os.listdir(store_path.parent)) - set(files) <= {"advisor.sqlite3-wal", "advisor.sqlite3-shm"}
    assert (store_path.parent / "advisor.sqlite3-wal").stat().st_size == 0


# --- renderers -----------------------------------------------------------------------------------------------

def test_text_tables(store_path):
    text = to_text(report_for(store_path), width=100)
    assert text.startswith("advisor report: last 7 days (2026-11-15 15:00 to 2026-11-22 15:00 UTC)")
    assert "\nQuestions 8 from 4 people · answered 5 (62%) · not covered 3 (38%)\n" in text
    assert "\nFeedback 2 helpful, 3 not helpful on 3 answers\n" in text
    assert "  2026-11-22      2        1      3         2            1" in text
    assert "2026-11-16" not in text  # days without questions are left out of the table
    assert "      2  2026-11-22  discord,slack  How do I negotiate equity at a pre-seed startup?" in text
    assert "reasons: too vague; missing Series B numbers" in text  # newest first
    assert all(len(line) <= 100 for line in text.splitlines())


def test_html_escapes_user_text_and_draws_the_expected_marks(store_path):
    page = to_html(report_for(store_path))
    assert "<script" not in page and "<b>fast" not in page and "<i>equity" not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt; can I get a PM visa &lt;b&gt;fast&lt;/b&gt;?" in page
    assert page.count('class="seg"') == 7  # one per (day, platform) with questions
    assert page.count('class="share-seg"') == 4  # answered + not covered, helpful + not helpful
    assert "http://" not in page and "https://" not in page and "src=" not in page and "@import" not in page
    assert "default-src 'none'" in page  # even an escaping bug could not run a script or fetch anything


def test_no_user_ids_hashes_or_channels_in_any_output(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_USER_SALT", "pepper")
    path = populate(tmp_path / "hashed.sqlite3", NOW)
    monkeypatch.setenv("ADVISOR_HASH_USER_IDS", "0")
    raw = populate(tmp_path / "raw.sqlite3", NOW)
    for store in (path, raw):
        report = report_for(store, "all")
        outputs = to_text(report) + to_html(report) + repr(report)
        for user in USERS + ("U0RAWVOTER1", "U0RAWVOTER2", "U0RAWVOTER3"):
            assert user not in outputs
            assert hashlib.sha256(f"pepper:{user}".encode()).hexdigest() not in outputs
        assert "C0SECRET" not in outputs


# --- privacy switch in the store -------------------------------------------------------------------------------

def test_hashing_can_be_turned_off_by_the_operator(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_HASH_USER_IDS", "0")
    store = Store(tmp_path / "raw.sqlite3")
    store.save_answer("a1", Question("q?", user="U0RAWLEAD", platform="slack"), NOT_COVERED, 0.1)
    store.save_feedback("a1", True, "U0RAWREADER", "slack")
    assert store.answer_record("a1")["user_hash"] == "U0RAWLEAD"
    assert store.feedback("a1")[0]["user_hash"] == "U0RAWREADER"
    store.close()
    assert not (tmp_path / "raw.sqlite3.salt").exists()  # no salt needed


@pytest.mark.parametrize("value", ["", "1", "true", "YES", "on"])
def test_hashing_is_on_by_default(tmp_path, monkeypatch, value):
    monkeypatch.setenv("ADVISOR_HASH_USER_IDS", value)
    store = Store(tmp_path / "s.sqlite3", salt="pepper")
    store.save_answer("a1", Question("q?", user="U0RAWLEAD", platform="slack"), NOT_COVERED, 0.1)
    assert store.answer_record("a1")["user_hash"] == hashlib.sha256(b"pepper:U0RAWLEAD").hexdigest()
    store.close()


def test_an_explicit_argument_wins_and_a_bad_value_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_HASH_USER_IDS", "0")
    assert Store(tmp_path / "a.sqlite3", hash_user_ids=True).hash_user("U1") != "U1"
    monkeypatch.setenv("ADVISOR_HASH_USER_IDS", "maybe")
    with pytest.raises(SettingsError, match=r"ADVISOR_HASH_USER_IDS must be 1 .* or 0 .*not 'maybe'"):
        Store(tmp_path / "b.sqlite3")
    assert not (tmp_path / "b.sqlite3").exists()


# --- the command ---------------------------------------------------------------------------------------------

@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A data folder whose store holds the sample questions, dated relative to the real clock."""
    populate(tmp_path / "data" / "advisor.sqlite3", datetime.now(timezone.utc))
    return tmp_path / "data"


def test_report_prints_tables(capsys, data_dir):
    code, out, err = run(capsys, "report", "--data-dir", data_dir)
    assert code == 0 and err == ""
    assert "advisor report: last 7 days" in out and "Questions 8 from 4 people" in out
    for heading in ("Questions per day (UTC days", "Not covered by the documents", "Feedback per answer",
                    "Most-cited passages"):
        assert heading in out
    assert "an old question nobody answered" not in out


def test_report_since_all_and_limit(capsys, data_dir):
    code, out, _ = run(capsys, "report", "--data-dir", data_dir, "--since", "all")
    assert code == 0 and "an old question nobody answered" in out and "Questions 10 from 4 people" in out
    code, out, _ = run(capsys, "report", "--data-dir", data_dir, "--since", "all", "--limit", "1")
    assert code == 0 and "an old question nobody answered" not in out
    assert "… and 2 more questions (raise --limit to see them)" in out


def test_report_since_24h(capsys, data_dir):
    code, out, _ = run(capsys, "report", "--data-dir", data_dir, "--since", "24h")
    assert code == 0 and "Questions 3 from 3 people" in out


def test_report_reads_the_store_named_by_advisor_store(capsys, data_dir, monkeypatch):
    monkeypatch.setenv("ADVISOR_STORE", str(data_dir / "advisor.sqlite3"))
    code, out, _ = run(capsys, "report")
    assert code == 0 and "Questions 8 from" in out


def test_report_writes_an_html_page(capsys, data_dir, tmp_path):
    code, out, err = run(capsys, "report", "--data-dir", data_dir, "--out", tmp_path / "report.html")
    assert code == 0 and err == ""
    assert out.strip() == (f"Wrote {tmp_path / 'report.html'}: 8 questions in the last 7 days, 5 answered, "
                           "3 not covered, 5 verdicts.")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<svg id="per-day"' in page
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_missing_store_is_not_created(capsys, tmp_path):
    code, out, err = run(capsys, "report", "--data-dir", tmp_path / "nothing")
    assert_one_line_error(code, out, err, "no questions recorded yet at", "run the bot first")
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("content, needle", [
    (b"question,answer\nhello,world\n" * 50, "is not a readable advisor store (file is not a database)"),
    (b"SQLite format 3\x00" + b"\x00" * 20, "is not a readable advisor store"),
])
def test_a_file_that_is_not_a_store(capsys, tmp_path, content, needle):
    (tmp_path / "advisor.sqlite3").write_bytes(content)
    assert_one_line_error(*run(capsys, "report", "--data-dir", tmp_path), needle)


def test_a_sqlite_database_of_something_else(capsys, tmp_path):
    db = sqlite3.connect(tmp_path / "advisor.sqlite3")
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()
    assert_one_line_error(*run(capsys, "report", "--data-dir", tmp_path), "a SQLite database but not an advisor store")


def test_a_damaged_store(capsys, tmp_path):
    path = populate(tmp_path / "advisor.sqlite3", datetime.now(timezone.utc))
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(b"\xff" * 8192)
    assert_one_line_error(*run(capsys, "report", "--data-dir", tmp_path, "--since", "all"),
                          "database disk image is malformed", "Restore it from a backup")


def test_a_store_path_that_is_a_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_STORE", str(tmp_path))
    assert_one_line_error(*run(capsys, "report"), "is not a file")


@pytest.mark.parametrize("argv, needle", [
    (["--since", "last week"], "--since takes a number of hours, days or weeks"),
    (["--limit", "0"], "--limit takes a whole number"),
    (["--out", "{tmp}/missing/report.html"], "does not exist; create it"),
    (["--out", "{tmp}"], "is a folder; give a file name"),
    (["--out", "{tmp}/report.pdf"], "name the file with .html"),
])
def test_bad_options(capsys, data_dir, tmp_path, argv, needle):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert_one_line_error(*run(capsys, "report", "--data-dir", data_dir, *argv), needle)


def test_the_console_script(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADVISOR_", "SLACK_", "DISCORD_"))}
    missing = subprocess.run([ADVISOR, "report", "--data-dir", tmp_path / "none"], capture_output=True, text=True,
                             env=env, timeout=120)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("advisor: no questions recorded yet at") and "Traceback" not in missing.stderr
    populate(tmp_path / "data" / "advisor.sqlite3", datetime.now(timezone.utc))
    ok = subprocess.run([ADVISOR, "report", "--data-dir", tmp_path / "data", "--since", "30d"], capture_output=True,
                        text=True, env=env, timeout=120)
    assert ok.returncode == 0 and "Questions 10 from 4 people" in ok.stdout


# --- in a real browser ---------------------------------------------------------------------------------------

def screenshot(html_path: Path, png_path: Path, width: int = 1100) -> dict:
    """Open the page in headless Chromium, save a full-page screenshot, and return what the browser saw."""
    from playwright.sync_api import sync_playwright

    seen = {"console": [], "requests": [], "page_errors": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: seen["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: seen["page_errors"].append(str(e)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(html_path.resolve().as_uri(), wait_until="load", timeout=30_000)
            seen["seg_boxes"] = [page.locator("#per-day rect.seg").nth(i).bounding_box()
                                 for i in range(page.locator("#per-day rect.seg").count())]
            seen["share_boxes"] = {cid: [b.bounding_box() for b in page.locator(f"#{cid} rect.share-seg").all()]
                                   for cid in ("coverage", "verdicts")}
            seen["svg_boxes"] = [s.bounding_box() for s in page.locator("svg").all()]
            seen["headings"] = [h.inner_text() for h in page.locator("h1, h2").all() if h.is_visible()]
            seen["gap_cells"] = page.locator("#gaps td.q").all_inner_texts()
            seen["pwned"] = page.evaluate("() => window.__pwned === undefined ? null : window.__pwned")
            seen["tags_in_tables"] = page.locator("table b, table i").count()
            seen["page_width"] = page.evaluate("() => document.documentElement.scrollWidth")
            page.screenshot(path=str(png_path), full_page=True)
        finally:
            browser.close()
    return seen


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (CI installs it)")
def test_the_html_report_renders_in_headless_chromium(store_path, tmp_path):
    html_path = tmp_path / "report.html"
    html_path.write_text(to_html(report_for(store_path)), encoding="utf-8")
    seen = screenshot(html_path, tmp_path / "report.png")

    assert seen["requests"] == [html_path.resolve().as_uri()]  # the page itself; nothing fetched
    assert [c for c in seen["console"] if c[0] in ("error", "warning")] == [] and seen["page_errors"] == []
    assert len(seen["seg_boxes"]) == 7
    assert all(b and b["width"] > 0 and b["height"] > 0 for b in seen["seg_boxes"])
    assert [len(v) for v in seen["share_boxes"].values()] == [2, 2]
    answered, not_covered = seen["share_boxes"]["coverage"]
    assert answered["width"] == pytest.approx(not_covered["width"] * 5 / 3, rel=0.01)  # 5 answered, 3 not
    assert all(b["width"] > 100 and b["height"] > 20 for b in seen["svg_boxes"])
    assert seen["headings"] == ["Advisor report", "Questions per day", "Coverage", "Feedback",
                                "Gaps: questions the documents did not cover", "Feedback per answer",
                                "Most-cited passages"]
    assert XSS in seen["gap_cells"] and seen["pwned"] is None and seen["tags_in_tables"] == 0
    assert seen["page_width"] <= 1100  # nothing spills sideways
    assert (tmp_path / "report.png").stat().st_size > 10_000


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (CI installs it)")
def test_a_narrow_window_and_an_empty_report(tmp_path):
    Store(tmp_path / "s.sqlite3").close()
    html_path = tmp_path / "empty.html"
    html_path.write_text(to_html(report_for(tmp_path / "s.sqlite3")), encoding="utf-8")
    seen = screenshot(html_path, tmp_path / "empty.png", width=420)
    assert seen["seg_boxes"] == [] and seen["share_boxes"] == {"coverage": [], "verdicts": []}
    assert seen["page_width"] <= 420 and seen["page_errors"] == []


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (CI installs it)")
def test_a_month_of_questions_in_headless_chromium(tmp_path):
    report = report_for(sample_store(tmp_path / "s.sqlite3", NOW), "30d", limit=8)
    html_path = tmp_path / "month.html"
    html_path.write_text(to_html(report), encoding="utf-8")
    seen = screenshot(html_path, tmp_path / "month.png")
    assert len(report.days) == 31 and report.total > 60
    assert len(seen["seg_boxes"]) == sum(len(d.by_platform) for d in report.days)
    tallest = max(report.days, key=lambda d: d.total)
    heights = {}
    for box, (day, platform) in zip(seen["seg_boxes"], [(d.day, p) for d in report.days for p in report.platforms
                                                           if d.by_platform.get(p)]):
        heights[day] = heights.get(day, 0) + box["height"]
    shortest = min((d for d in report.days if d.total), key=lambda d: d.total)
    # bar heights in the browser are proportional to the counts
    assert heights[tallest.day] / heights[shortest.day] == pytest.approx(tallest.total / shortest.total, rel=0.02)
    assert seen["page_errors"] == [] and seen["requests"] == [html_path.resolve().as_uri()]


if __name__ == "__main__":  # regenerate docs/report.png: python -m tests.test_report
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        sample = sample_store(Path(folder) / "advisor.sqlite3", NOW, days=21)
        page = Path(folder) / "report.html"
        page.write_text(to_html(report_for(sample, "14d", limit=6)), encoding="utf-8")
        screenshot(page, Path(__file__).resolve().parent.parent / "docs" / "report.png", width=1000)
