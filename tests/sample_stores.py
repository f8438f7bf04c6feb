"""Recorded questions, answers and verdicts for the report and store tests: a small store and a seeded larger one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.store import Store
from retrieval.vocabulary import Answer, AnswerSentence, Citation, Question

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)


SERIES_A = Citation(1, "ai-pm-vs-ml-pm", "AI PM vs ML PM: what the titles really mean",
                    "Do startups actually hire ML PMs, or is it just AI PM?",
                    "In a seed-stage AI startup, the “ML PM” is often the CTO or a founding engineer.",
                    "ai-pm-vs-ml-pm#7")


SALARY = Citation(2, "ai-ml-data-pm-guide", "AI, ML and Data PM: a field guide", "Salary 2026",
                  "Salary 2026 (US senior): AI PM $280-420k, ML PM $260-380k.", "ai-ml-data-pm-guide#12")


LADDER = Citation(1, "ai-ml-data-pm-guide", "AI, ML and Data PM: a field guide", "Career ladder",
                  "Data PMs move into ML PM roles after owning a metrics platform.", "ai-ml-data-pm-guide#20")


XSS = "<script>window.__pwned = 1</script> can I get a PM visa <b>fast</b>?"


USERS = ("U0RAWLEAD", "U0RAWREADER", "U0RAWTHIRD", "U0RAWFOURTH")


def answered(*citations: Citation) -> Answer:
    numbered = tuple(Citation(i + 1, c.doc_id, c.title, c.section, c.quote, c.chunk_id)
                     for i, c in enumerate(citations))
    return Answer("q", " ".join(f"Said. [{c.number}]" for c in numbered), numbered, False,
                  tuple(AnswerSentence("Said.", c.number) for c in numbered))


NOT_COVERED = Answer("q", "The documents I know don't cover this, so I won't guess.", abstained=True)


# (id, hours before now, platform, user, question, answer)
ENTRIES = [
    ("d0-s1", 2, "slack", USERS[0], "does a Series A startup hire ML PMs?", answered(SERIES_A, SALARY)),
    ("d0-s2", 3, "slack", USERS[1], "ML PM salary in 2026?", answered(SERIES_A)),
    ("d0-d1", 4, "discord", USERS[2], "How do I negotiate equity at a pre-seed startup?", NOT_COVERED),
    ("d1-s1", 26, "slack", USERS[0], "how do i  negotiate equity at a pre-seed startup", NOT_COVERED),
    ("d1-d1", 27, "discord", USERS[1], "what do senior ML PMs earn?", answered(SALARY)),
    ("d3-d1", 74, "discord", USERS[2], "is an ML PM the CTO at a startup?", answered(SERIES_A)),
    ("d3-s1", 75, "slack", USERS[0], "startups and ML PMs", answered(SERIES_A)),
    ("d5-s1", 122, "slack", USERS[3], XSS, NOT_COVERED),
    ("d10-s1", 242, "slack", USERS[0], "from data PM to ML PM?", answered(LADDER)),
    ("d10-d1", 243, "discord", USERS[1], "an old question nobody answered", NOT_COVERED),
]


# (answer id, hours before now, user, helpful, reason)
VERDICTS = [
    ("d0-s1", 1, "U0RAWVOTER1", False, "missing Series B numbers"),
    ("d0-s1", 1, "U0RAWVOTER2", False, "too vague"),
    ("d0-s1", 1, "U0RAWVOTER3", True, ""),
    ("d1-d1", 20, "U0RAWVOTER1", True, ""),
    ("d0-d1", 2, "U0RAWVOTER2", False, "should know <i>equity</i>"),
    ("d10-s1", 240, "U0RAWVOTER1", True, ""),
]


def populate(path: Path, now: datetime, **store_options) -> Path:
    """A store with ten questions over eleven days on Slack and Discord, and six verdicts."""
    store = Store(path, **store_options)
    at = {}
    for answer_id, hours, platform, user, text, answer in ENTRIES:
        at[answer_id] = (now - timedelta(hours=hours)).timestamp()
        question = Question(text, user=user, platform=platform, channel="C0SECRET", thread="1.1")
        store.save_answer(answer_id, question, answer, 0.05, created=at[answer_id])
    for answer_id, hours, user, helpful, reason in VERDICTS:
        platform = "slack" if answer_id.split("-")[1].startswith("s") else "discord"
        assert store.save_feedback(answer_id, helpful, user, platform, reason,
                                   created=(now - timedelta(hours=hours)).timestamp())
    store.close()
    return path


COVERED_QUESTIONS = [
    ("does a Series A startup hire ML PMs?", (SERIES_A,)), ("what do senior ML PMs earn in 2026?", (SALARY,)),
    ("AI PM or ML PM: which pays more?", (SALARY, SERIES_A)), ("how do data PMs move into ML PM?", (LADDER,)),
    ("is the ML PM at a seed startup really the CTO?", (SERIES_A,)), ("salary range for a senior AI PM", (SALARY,)),
]


GAP_QUESTIONS = ["How do I negotiate equity at a pre-seed startup?", "Do PM bootcamps help for FAANG interviews?",
                 "what's a good PM portfolio site?", "Can I get a PM visa sponsored in Canada?"]


REASONS = ["missing Series B numbers", "too vague", "quote was out of date", ""]


def sample_store(path: Path, now: datetime, days: int = 30, seed: int = 7) -> Path:
    """A realistic, seeded store: a few questions a day on both platforms for `days` days, with verdicts."""
    import random

    rng = random.Random(seed)
    store = Store(path, salt="sample")
    for day in range(days):
        for n in range(rng.randint(0, 2) + (4 if day % 7 in (1, 2) else 1)):  # busier mid-week
            answer_id = f"s{day}-{n}"
            created = (now - timedelta(days=day, hours=rng.uniform(0, 20))).timestamp()
            platform = rng.choice(("slack", "slack", "discord"))
            user = f"U{rng.randint(1, 9)}"
            if rng.random() < 0.2:
                question, answer = rng.choice(GAP_QUESTIONS), NOT_COVERED
            else:
                question, cited = rng.choice(COVERED_QUESTIONS)
                answer = answered(*cited)
            store.save_answer(answer_id, Question(question, user=user, platform=platform), answer, 0.05,
                              created=created)
            if rng.random() < 0.4:
                helpful = rng.random() < (0.15 if answer.abstained else 0.75)
                store.save_feedback(answer_id, helpful, f"R{rng.randint(1, 5)}", platform,
                                    "" if helpful else rng.choice(REASONS), created=created + 600)
    store.close()
    return path
