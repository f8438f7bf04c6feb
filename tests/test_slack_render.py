"""Slack Block Kit rendering over recorded answers: content, escaping, Slack's size limits, fallback text."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bot.slack.render import (
    ACTION_ASK_SUGGESTION, ACTION_HELPFUL, ACTION_NOT_HELPFUL, ACTION_SHARE, MAX_BLOCKS, SUGGESTION_PATTERN, clip,
    escape, feedback_view, parse_share_value, to_blocks,
)
from retrieval.vocabulary import Answer, AnswerSentence, Citation

FIXTURES = Path(__file__).parent / "fixtures" / "slack"


def load_answer(name: str) -> Answer:
    data = json.loads((FIXTURES / name).read_text())
    return Answer(
        question=data["question"], text=data["text"], abstained=data["abstained"],
        citations=tuple(Citation(**c) for c in data["citations"]),
        sentences=tuple(AnswerSentence(**s) for s in data["sentences"]),
    )


def texts(blocks: list[dict]) -> list[str]:
    """Every text Slack would parse as mrkdwn or plain text in these blocks."""
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"]["text"])
        for e in b.get("elements", []):
            out.append(e["text"]["text"] if e.get("type") == "button" else e["text"])
    return out


def assert_within_slack_limits(blocks: list[dict], fallback: str) -> None:
    assert 0 < len(blocks) <= MAX_BLOCKS
    assert fallback.strip()
    for b in blocks:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "context":
            assert all(len(e["text"]) <= 3000 for e in b["elements"]) and len(b["elements"]) <= 10
        if b["type"] == "actions":
            assert len(b["elements"]) <= 25
            for e in b["elements"]:
                assert len(e["text"]["text"]) <= 75 and len(e["action_id"]) <= 255 and len(e["value"]) <= 2000
    json.dumps(blocks)  # serialisable as sent


def test_answer_then_cited_passages_then_feedback_buttons():
    answer = load_answer("answer_cited.json")
    blocks, fallback = to_blocks(answer, "abc123")
    assert blocks[0]["type"] == "section" and blocks[0]["text"]["text"] == escape(answer.text)
    assert blocks[1]["type"] == "divider"
    first, second = blocks[2]["text"]["text"], blocks[3]["text"]["text"]
    assert first.startswith("*[1] AI PM vs ML PM: what the titles really mean*") and "› Hiring at startups" in first
    assert "\n>I sat in on a hiring review" in first
    assert "› " not in second.split("\n")[0]  # section equal to the title is not repeated
    actions = blocks[-1]
    assert actions["type"] == "actions"
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [(ACTION_HELPFUL, "abc123"),
                                                                         (ACTION_NOT_HELPFUL, "abc123")]
    assert fallback.startswith(answer.text.split(" [1]")[0][:40])
    assert "[1] AI PM vs ML PM: what the titles really mean › Hiring at startups" in fallback
    assert_within_slack_limits(blocks, fallback)


def test_ephemeral_answer_has_share_button_and_shows_the_question():
    answer = load_answer("answer_cited.json")
    blocks, _ = to_blocks(answer, "abc123", ephemeral=True, thread="1700000100.000100")
    assert "*Question:* does a Series A startup hire ML PMs?" in blocks[0]["elements"][0]["text"]
    share = blocks[-1]["elements"][-1]
    assert share["action_id"] == ACTION_SHARE and share["text"]["text"] == "Share in channel"
    assert parse_share_value(share["value"]) == ("abc123", "1700000100.000100")
    assert parse_share_value("abc123") == ("abc123", "")


def test_shared_answer_is_attributed_and_has_no_share_button():
    blocks, fallback = to_blocks(load_answer("answer_cited.json"), "abc123", shared_by="U0LEAD")
    assert blocks[0] == {"type": "context", "elements": [{"type": "mrkdwn", "text": "Shared by <@U0LEAD>"}]}
    assert fallback.startswith("Shared by <@U0LEAD>: ")
    assert ACTION_SHARE not in json.dumps(blocks)
    # something that is not a user id is shown as escaped text, never as markup
    blocks, _ = to_blocks(load_answer("answer_cited.json"), "abc123", shared_by="<!channel>")
    assert blocks[0]["elements"][0]["text"] == "Shared by &lt;!channel&gt;"


def test_abstained_answer_has_no_passages_but_keeps_feedback():
    answer = load_answer("answer_abstained.json")
    blocks, fallback = to_blocks(answer, "abc123")
    assert [b["type"] for b in blocks] == ["section", "actions"]
    assert "won't guess" in blocks[0]["text"]["text"] and "won't guess" in fallback
    assert_within_slack_limits(blocks, fallback)


def test_a_declined_answer_offers_its_suggestions_as_buttons_that_ask_them():
    long_heading = "Which role has more technical interview rounds, and what does each round test? " * 2
    declined = replace(load_answer("answer_abstained.json"),
                       suggestions=("Salary 2026 (US senior)", long_heading))
    blocks, fallback = to_blocks(declined, "abc123")
    assert [b["type"] for b in blocks] == ["section", "actions", "actions"]
    asks = blocks[1]["elements"]
    assert [e["action_id"] for e in asks] == [f"{ACTION_ASK_SUGGESTION}:0", f"{ACTION_ASK_SUGGESTION}:1"]
    assert all(SUGGESTION_PATTERN.match(e["action_id"]) for e in asks)
    assert (asks[0]["text"]["text"], asks[0]["value"]) == ("Ask: Salary 2026 (US senior)", "Salary 2026 (US senior)")
    assert asks[1]["value"] == long_heading and asks[1]["text"]["text"].endswith("…")  # the label is cut, not the ask
    assert blocks[-1]["elements"][0]["action_id"] == ACTION_HELPFUL  # the feedback buttons stay last
    assert_within_slack_limits(blocks, fallback)
    answered = replace(load_answer("answer_cited.json"), suggestions=("Salary 2026 (US senior)",))
    assert ACTION_ASK_SUGGESTION not in json.dumps(to_blocks(answered, "abc123")[0])


def test_nothing_from_users_or_documents_can_ping_anyone():
    answer = load_answer("answer_hostile.json")
    for kwargs in ({}, {"ephemeral": True}, {"shared_by": "U0LEAD"}):
        blocks, fallback = to_blocks(answer, "abc123", **kwargs)
        rendered = "\n".join(texts(blocks)) + "\n" + fallback
        for ping in ("<!channel>", "<!here>", "<!everyone>", "<@U123ABC>", "<@U999>", "<#C123", "<https://"):
            assert ping not in rendered
        assert "&lt;!channel&gt;" in rendered and "&lt;@U123ABC&gt;" in rendered
        assert "R&amp;D" in rendered and "Salaries &amp; equity" in rendered
        assert "& " not in rendered.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
        if kwargs.get("shared_by"):
            assert "<@U0LEAD>" in rendered  # our own attribution is the only mention


def test_absurdly_long_passages_and_many_citations_stay_within_limits():
    huge = "word " * 5000 + "<!channel> & " * 500
    base = load_answer("answer_cited.json")
    citations = tuple(Citation(n, f"d{n}", "T" * 4000 + " & <x>", "S" * 4000, huge, f"c{n}") for n in range(1, 121))
    answer = replace(base, question=huge, text=huge + " [1]", citations=citations)
    for kwargs in ({}, {"ephemeral": True, "thread": "1.2"}, {"shared_by": "U0LEAD"}):
        blocks, fallback = to_blocks(answer, "f" * 32, **kwargs)
        assert_within_slack_limits(blocks, fallback)
        assert len(blocks) == MAX_BLOCKS
        assert blocks[-1]["type"] == "actions"  # the buttons always survive
        note = blocks[-2]["elements"][0]["text"]
        assert "more cited passages not shown" in note
        assert len(fallback) <= 3000
        # cut text never ends inside an HTML entity
        for t in texts(blocks) + [fallback]:
            assert not t.rstrip("…").endswith(("&", "&a", "&am", "&amp", "&l", "&lt", "&g", "&gt"))


def test_exactly_as_many_citations_as_fit_need_no_note():
    base = load_answer("answer_cited.json")
    citations = tuple(replace(base.citations[0], number=n) for n in range(1, 48))  # 1 + divider + 47 + actions
    blocks, _ = to_blocks(replace(base, citations=citations), "a")
    assert len(blocks) == MAX_BLOCKS and "not shown" not in json.dumps(blocks)


@pytest.mark.parametrize("text,limit", [("a&b" * 10, 7), ("&&&&&&", 8), ("plain", 3), ("short", 10)])
def test_clip_never_splits_an_entity(text, limit):
    cut = clip(escape(text), limit)
    assert len(cut) <= limit
    assert not cut.rstrip("…").endswith(("&", "&a", "&am", "&amp"))


def test_feedback_view_carries_the_answer_id():
    view = feedback_view("abc123")
    assert view["private_metadata"] == "abc123" and view["type"] == "modal"
    assert len(view["title"]["text"]) <= 24
