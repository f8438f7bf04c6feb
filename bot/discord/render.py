"""Rendering answers for Discord (pure functions): an embed within Discord's limits and the answer's buttons."""

from __future__ import annotations

import logging
import re

import discord

from retrieval.vocabulary import Answer

logger = logging.getLogger(__name__)

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
MAX_CONTENT = 2000
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_EMBED_TOTAL = 6000
MAX_BUTTONS_PER_ROW = 5
MAX_BUTTON_LABEL = 80
MAX_CUSTOM_ID = 100

MAX_CITATION_FIELDS = 10  # well under 25: a reader wants the few passages that back the answer
MIN_FIELD_VALUE = 60  # below this a quote says nothing; drop the field instead

ANSWERED_COLOUR = discord.Colour.blurple()
ABSTAINED_COLOUR = discord.Colour.light_grey()

# Buttons carry their action and the answer id in the custom_id, so they work after a restart.
CUSTOM_ID_PREFIX = "advisor:"
ACTIONS = ("fb:up", "fb:down", "share")
CUSTOM_ID_TEMPLATE = r"advisor:(?P<action>fb:up|fb:down|share):(?P<answer_id>[A-Za-z0-9_.\-]{1,80})"
BUTTON_EVENT = "advisor_button"  # the client event a click is dispatched as: on_advisor_button(interaction, action, id)
# A suggested question under a "not covered" answer carries the question itself, as far as a custom_id holds it.
SUGGESTION_ID_PREFIX = "advisor:ask:"
SUGGESTION_TEMPLATE = rf"advisor:ask:(?P<question>.{{1,{MAX_CUSTOM_ID - len(SUGGESTION_ID_PREFIX)}}})"
SUGGESTION_EVENT = "advisor_suggestion"  # dispatched as on_advisor_suggestion(interaction, question)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, with an ellipsis when it was cut."""
    text = text or ""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:max(limit, 0)]
    return text[: limit - 1].rstrip() + "…"


def to_content(text: str) -> str:
    """Plain message content (notices, errors) within the 2,000-character limit."""
    return clip(text, MAX_CONTENT)


def _fit_values(values: list[str], budget: int) -> list[str]:
    """Share `budget` characters among the field values, the short ones kept whole (water-filling)."""
    out = list(values)
    left = budget
    order = sorted(range(len(values)), key=lambda i: len(values[i]))
    for n, i in enumerate(order):
        share = min(MAX_FIELD_VALUE, left // (len(order) - n))
        out[i] = clip(values[i], share)
        left -= len(out[i])
    return out


def _footer(answer: Answer, shown: int) -> str:
    if answer.abstained:
        return "advisor · not covered by the documents I know"
    docs = len({c.doc_id for c in answer.citations})
    text = f"advisor · {len(answer.citations)} passage{'s' * (len(answer.citations) != 1)} " \
           f"from {docs} document{'s' * (docs != 1)}"
    if answer.written_by:
        text += f" · written by {clip(answer.written_by, 100)} from these passages"
    hidden = len(answer.citations) - shown
    return text + (f" · {hidden} more not shown" if hidden > 0 else "")


def to_embed(answer: Answer) -> discord.Embed:
    """The short answer as the description, each cited passage as a field, all within Discord's limits."""
    title = clip(answer.question.strip() or "Your question", MAX_TITLE)
    description = clip(discord.utils.escape_markdown(answer.text), MAX_DESCRIPTION)
    citations = list(answer.citations[:MAX_CITATION_FIELDS])
    # field names render markdown too: a title like "*The* PM guide" must show as written
    names = [clip(f"[{c.number}] {discord.utils.escape_markdown(c.where)}", MAX_FIELD_NAME) for c in citations]
    values = [f"“{discord.utils.escape_markdown(c.quote.strip())}”" for c in citations]

    # Drop trailing fields until every kept one can show a useful part of its quote.
    while citations:
        fixed = len(title) + len(description) + len(_footer(answer, len(citations))) + sum(map(len, names))
        budget = MAX_EMBED_TOTAL - fixed
        if budget >= MIN_FIELD_VALUE * len(citations):
            break
        citations, names, values = citations[:-1], names[:-1], values[:-1]
    footer = clip(_footer(answer, len(citations)), MAX_FOOTER)
    if not citations:
        room = MAX_EMBED_TOTAL - len(title) - len(footer)
        description = clip(description, min(MAX_DESCRIPTION, room))
        budget = 0
    values = _fit_values(values, budget) if citations else []

    embed = discord.Embed(title=title, description=description,
                          colour=ABSTAINED_COLOUR if answer.abstained else ANSWERED_COLOUR)
    for name, value in zip(names, values, strict=True):
        embed.add_field(name=name, value=value or "…", inline=False)
    embed.set_footer(text=footer)
    return embed


def to_help_embed(text: str) -> discord.Embed:
    """The /advisor-help text as an embed."""
    return discord.Embed(title="What advisor can answer", description=clip(text, MAX_DESCRIPTION),
                         colour=ANSWERED_COLOUR)


def custom_id(action: str, answer_id: str) -> str:
    """The custom_id of an answer button, e.g. "advisor:fb:up:<answer_id>"."""
    if action not in ACTIONS:
        raise ValueError(f"unknown button action {action!r}")
    return f"{CUSTOM_ID_PREFIX}{action}:{answer_id}"


def parse_custom_id(value: str) -> tuple[str, str] | None:
    """(action, answer_id) of an answer button's custom_id, or None if it is not one."""
    match = re.fullmatch(CUSTOM_ID_TEMPLATE, value or "")
    return (match["action"], match["answer_id"]) if match else None


class AnswerButton(discord.ui.DynamicItem[discord.ui.Button], template=CUSTOM_ID_TEMPLATE):
    """A persistent answer button: a click is dispatched to the client as `on_advisor_button`."""

    def __init__(self, action: str, answer_id: str, *, label: str, emoji: str | None = None,
                 style: discord.ButtonStyle = discord.ButtonStyle.secondary):
        super().__init__(discord.ui.Button(label=clip(label, MAX_BUTTON_LABEL), emoji=emoji, style=style,
                                           custom_id=custom_id(action, answer_id)))
        self.action, self.answer_id = action, answer_id

    @classmethod
    async def from_custom_id(cls, interaction, item, match, /):
        return cls(match["action"], match["answer_id"], label=item.label or "", style=item.style)

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.dispatch(BUTTON_EVENT, interaction, self.action, self.answer_id)


def suggestion_id(question: str) -> str:
    """The custom_id of a suggested question's button: the question, cut at a word if it is too long to fit."""
    room = MAX_CUSTOM_ID - len(SUGGESTION_ID_PREFIX)
    text = " ".join(question.split())
    if len(text) > room:
        text = text[: room + 1].rsplit(" ", 1)[0][:room]
    return SUGGESTION_ID_PREFIX + text


class SuggestionButton(discord.ui.DynamicItem[discord.ui.Button], template=SUGGESTION_TEMPLATE):
    """A persistent "Ask: ..." button under a "not covered" answer: a click is dispatched as `on_advisor_suggestion`."""

    def __init__(self, question: str, *, label: str = ""):
        super().__init__(discord.ui.Button(label=clip(label or f"Ask: {question}", MAX_BUTTON_LABEL),
                                           style=discord.ButtonStyle.primary, custom_id=suggestion_id(question)))
        self.question = question

    @classmethod
    async def from_custom_id(cls, interaction, item, match, /):
        return cls(match["question"], label=item.label or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.dispatch(SUGGESTION_EVENT, interaction, self.question)


def answer_view(answer_id: str, answer: Answer, *, private: bool = False) -> discord.ui.View | None:
    """The buttons under this answer (`to_view`): feedback, sharing, and a "not covered" answer's suggestions."""
    return to_view(answer_id, private=private, abstained=answer.abstained, suggestions=answer.suggestions)


def to_view(answer_id: str, *, private: bool = False, abstained: bool = False,
            suggestions: tuple[str, ...] = ()) -> discord.ui.View | None:
    """Helpful / not helpful, "Share in channel" on a private answer, and under a "not covered" answer the
    nearest headings as buttons that ask them; None without an answer id."""
    if not answer_id or parse_custom_id(custom_id("share", answer_id)) is None:
        if answer_id:
            logger.warning("answer id %r cannot be carried by a button; sending the answer without buttons", answer_id)
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(AnswerButton("fb:up", answer_id, label="Helpful", emoji="👍"))
    view.add_item(AnswerButton("fb:down", answer_id, label="Not helpful", emoji="👎"))
    if private and not abstained:
        view.add_item(AnswerButton("share", answer_id, label="Share in channel", style=discord.ButtonStyle.primary))
    for question in suggestions if abstained else ():
        view.add_item(SuggestionButton(question))
    return view
