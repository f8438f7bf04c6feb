"""Discord rendering: embeds and buttons stay within Discord's limits whatever the answer looks like."""

from __future__ import annotations

import random
import re

import discord
import pytest

from retrieval.vocabulary import Question
from bot.discord.render import (
    ABSTAINED_COLOUR,
    MAX_BUTTON_LABEL,
    MAX_BUTTONS_PER_ROW,
    MAX_CONTENT,
    MAX_CUSTOM_ID,
    MAX_DESCRIPTION,
    MAX_EMBED_TOTAL,
    MAX_FIELD_NAME,
    MAX_FIELD_VALUE,
    MAX_FIELDS,
    MAX_FOOTER,
    MAX_TITLE,
    SUGGESTION_TEMPLATE,
    answer_view,
    clip,
    custom_id,
    parse_custom_id,
    to_content,
    to_embed,
    to_help_embed,
    to_view,
)
from retrieval.answer import not_covered
from retrieval.vocabulary import Answer, Citation

ANSWER_ID = "0f" * 16  # the service's ids are uuid4 hex


def assert_within_limits(embed: discord.Embed) -> None:
    """Every limit Discord enforces on one embed, checked on the JSON that would be sent."""
    data = embed.to_dict()
    assert len(data.get("title", "")) <= MAX_TITLE
    assert len(data.get("description", "")) <= MAX_DESCRIPTION
    fields = data.get("fields", [])
    assert len(fields) <= MAX_FIELDS
    for f in fields:
        assert 0 < len(f["name"]) <= MAX_FIELD_NAME and 0 < len(f["value"]) <= MAX_FIELD_VALUE
    assert len(data.get("footer", {}).get("text", "")) <= MAX_FOOTER
    total = len(data.get("title", "")) + len(data.get("description", "")) + len(data.get("footer", {}).get("text", ""))
    total += sum(len(f["name"]) + len(f["value"]) for f in fields)
    assert total == len(embed) <= MAX_EMBED_TOTAL


def citation(n: int, quote: str = "A short quote.", title: str = "AI PM vs ML PM", section: str = "Hiring") -> Citation:
    return Citation(number=n, doc_id=f"doc-{n % 3}", title=title, section=section, quote=quote, chunk_id=f"c{n}")


def make_answer(citations, text: str = "Yes, they do [1].", question: str = "Does a Series A startup hire ML PMs?"):
    return Answer(question=question, text=text, citations=tuple(citations))


def test_a_normal_answer_shows_the_answer_and_each_passage():
    answer = make_answer([citation(1, "Series A teams hire ML PMs when the model is the product."),
                          citation(2, "Most hire a generalist first.", section="Stage")])
    embed = to_embed(answer)
    assert embed.title == answer.question and embed.description == answer.text
    assert [f.name for f in embed.fields] == ["[1] AI PM vs ML PM › Hiring", "[2] AI PM vs ML PM › Stage"]
    assert embed.fields[0].value == "“Series A teams hire ML PMs when the model is the product.”"
    assert embed.footer.text == "advisor · 2 passages from 2 documents"
    assert_within_limits(embed)


def test_a_section_equal_to_the_title_is_not_repeated():
    embed = to_embed(make_answer([citation(1, title="Guide", section="Guide")]))
    assert embed.fields[0].name == "[1] Guide"


def test_a_very_long_passage_is_cut_to_the_field_limit():
    embed = to_embed(make_answer([citation(1, "word " * 5000)]))
    assert_within_limits(embed)
    value = embed.fields[0].value
    assert len(value) == MAX_FIELD_VALUE and value.endswith("…")


def test_many_long_passages_share_the_6000_characters():
    embed = to_embed(make_answer([citation(n, "passage text " * 200) for n in range(1, 9)]))
    assert_within_limits(embed)
    assert len(embed) > MAX_EMBED_TOTAL - 50  # the room is used, not wasted
    assert len(embed.fields) == 8  # every passage keeps a readable part


def test_many_citations_stay_under_25_fields_and_say_how_many_are_hidden():
    embed = to_embed(make_answer([citation(n) for n in range(1, 41)]))
    assert_within_limits(embed)
    assert len(embed.fields) == 10
    assert embed.footer.text.endswith("30 more not shown")


def test_short_quotes_are_kept_whole_when_a_long_one_is_cut():
    embed = to_embed(make_answer([citation(1, "x " * 4000), citation(2, "Short and whole.")]))
    assert embed.fields[1].value == "“Short and whole.”"
    assert_within_limits(embed)


def test_an_abstained_answer_has_no_passages():
    answer = not_covered("What is the best pizza in Naples?", ["AI PM vs ML PM", "The AI/ML/data PM guide"])
    embed = to_embed(answer)
    assert embed.description == discord.utils.escape_markdown(answer.text)
    assert not embed.fields and embed.colour == ABSTAINED_COLOUR
    assert "not covered" in embed.footer.text
    assert_within_limits(embed)


@pytest.mark.parametrize("seed", range(25))
def test_any_shape_of_answer_stays_within_every_limit(seed):
    rng = random.Random(seed)

    def text(most: int) -> str:
        return ("ab* _c`d " * most)[: rng.randint(0, most)] or "x"

    citations = [Citation(n, f"d{n}", text(600), text(600), text(3000)) for n in range(1, rng.randint(0, 40) + 1)]
    answer = Answer(question=text(5000), text=text(9000), citations=tuple(citations), abstained=not citations)
    assert_within_limits(to_embed(answer))


def test_markdown_in_passages_is_shown_as_written():
    embed = to_embed(make_answer([citation(1, "Use **bold** claims and `code` sparingly")], text="A *b* [1]"))
    assert embed.description == "A \\*b\\* [1]"
    assert "\\*\\*bold\\*\\*" in embed.fields[0].value and "\\`code\\`" in embed.fields[0].value


def test_a_real_answer_renders_every_citation(fake_advisor):
    answer = fake_advisor.answer(Question("Does a Series A startup hire ML PMs?"))
    embed = to_embed(answer)
    assert_within_limits(embed)
    assert len(embed.fields) == len(answer.citations) > 0
    for field, c in zip(embed.fields, answer.citations, strict=True):
        assert field.name.startswith(f"[{c.number}] {c.title}")
        assert discord.utils.escape_markdown(c.quote) in field.value


def test_help_and_notices_fit():
    assert len(to_help_embed("• doc\n" * 2000).description) <= MAX_DESCRIPTION
    assert len(to_content("x" * 5000)) == MAX_CONTENT
    assert clip("abc", 3) == "abc" and clip("abcd", 3) == "ab…" and clip("abcd", 0) == ""


# -- buttons ---------------------------------------------------------------------------------------


def _buttons(view: discord.ui.View) -> list[dict]:
    rows = view.to_components()
    assert all(len(row["components"]) <= MAX_BUTTONS_PER_ROW for row in rows)
    return [c for row in rows for c in row["components"]]


def test_a_public_answer_has_feedback_buttons_only():
    buttons = _buttons(to_view(ANSWER_ID))
    assert [b["custom_id"] for b in buttons] == [f"advisor:fb:up:{ANSWER_ID}", f"advisor:fb:down:{ANSWER_ID}"]
    assert [b["label"] for b in buttons] == ["Helpful", "Not helpful"]


def test_a_private_answer_can_be_shared():
    buttons = _buttons(to_view(ANSWER_ID, private=True))
    assert buttons[-1]["custom_id"] == f"advisor:share:{ANSWER_ID}" and buttons[-1]["label"] == "Share in channel"
    assert all(len(b["custom_id"]) <= MAX_CUSTOM_ID and len(b["label"]) <= MAX_BUTTON_LABEL for b in buttons)


def test_an_abstention_is_not_offered_for_sharing():
    assert len(_buttons(to_view(ANSWER_ID, private=True, abstained=True))) == 2


def test_a_declined_answer_offers_its_suggestions_as_buttons_that_ask_them():
    long_heading = "Which role has more technical interview rounds, and what does each of those rounds test?"
    declined = not_covered("what's the Microsoft loop?", ["Guide"], nearby=False)
    declined = Answer(question=declined.question, text=declined.text, abstained=True,
                      suggestions=("Salary 2026 (US senior)", long_heading + " " + long_heading))
    buttons = _buttons(answer_view(ANSWER_ID, declined))
    assert [b["custom_id"] for b in buttons[:2]] == [f"advisor:fb:up:{ANSWER_ID}", f"advisor:fb:down:{ANSWER_ID}"]
    asks = buttons[2:]
    assert asks[0]["custom_id"] == "advisor:ask:Salary 2026 (US senior)"
    assert asks[0]["label"] == "Ask: Salary 2026 (US senior)"
    assert asks[1]["custom_id"] == f"advisor:ask:{long_heading}", "cut at a word, to fit a custom_id"
    assert all(len(b["custom_id"]) <= MAX_CUSTOM_ID and len(b["label"]) <= MAX_BUTTON_LABEL for b in buttons)
    assert all(re.fullmatch(SUGGESTION_TEMPLATE, b["custom_id"]) for b in asks)
    answered = Answer(question="q", text="An answer [1]", suggestions=("Salary 2026 (US senior)",))
    assert not any(b["custom_id"].startswith("advisor:ask:") for b in _buttons(answer_view(ANSWER_ID, answered)))


def test_no_buttons_without_an_id_that_fits_a_custom_id():
    assert to_view("") is None
    assert to_view("x" * 81) is None
    assert len(custom_id("fb:down", "x" * 80)) <= MAX_CUSTOM_ID


def test_custom_ids_round_trip():
    for action in ("fb:up", "fb:down", "share"):
        assert parse_custom_id(custom_id(action, ANSWER_ID)) == (action, ANSWER_ID)
    assert parse_custom_id("advisor:fb:sideways:abc") is None
    assert parse_custom_id("someone-else:fb:up:abc") is None
    with pytest.raises(ValueError):
        custom_id("delete", ANSWER_ID)


def test_document_titles_in_field_names_are_shown_as_written():
    """A field name renders markdown: a title's * and _ would turn into emphasis, its ` into code."""
    answer = make_answer([citation(1, title="The *real* AI_PM_guide", section="`Hiring` in __2026__")])
    [field] = to_embed(answer).to_dict()["fields"]
    assert field["name"] == "[1] The \\*real\\* AI\\_PM\\_guide › \\`Hiring\\` in \\_\\_2026\\_\\_"
