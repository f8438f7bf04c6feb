"""Slack Block Kit rendering of answers (pure functions), within Slack's size limits and escaped."""

from __future__ import annotations

import re

from retrieval.vocabulary import Answer, Citation

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_CONTEXT_TEXT = 2000  # our own cap for small grey text; Slack allows 3,000
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_VALUE = 2000
MAX_FALLBACK = 3000  # Slack accepts more, but notifications show only the start
MAX_TITLE = 200
MAX_QUESTION_SHOWN = 300

ACTION_HELPFUL = "advisor_helpful"
ACTION_NOT_HELPFUL = "advisor_not_helpful"
ACTION_SHARE = "advisor_share"
# a suggested question under a "not covered" answer: each button's action_id is this plus ":<n>"
ACTION_ASK_SUGGESTION = "advisor_ask_suggestion"
SUGGESTION_PATTERN = re.compile(rf"^{ACTION_ASK_SUGGESTION}:\d+$")
FEEDBACK_VIEW = "advisor_feedback_reason"
REASON_BLOCK, REASON_INPUT = "reason", "reason_input"

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def escape(text: str) -> str:
    """Escape &, < and > as Slack asks, so echoed text cannot ping <!channel>, <!here> or <@U...>."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, ending with "…" when cut, never in the middle of an &entity;."""
    if len(text) <= limit:
        return text
    cut = _PARTIAL_ENTITY.sub("", text[: limit - 1])
    return cut + "…"


def _one_line(text: str) -> str:
    return " ".join((text or "").split())


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict:
    return {"type": "section", "text": _mrkdwn(clip(text, MAX_SECTION_TEXT))}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [_mrkdwn(clip(text, MAX_CONTEXT_TEXT))]}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(text, MAX_BUTTON_TEXT), "emoji": True},
        "action_id": action_id[:MAX_ACTION_ID],
        "value": value[:MAX_VALUE],
    }
    if style:
        button["style"] = style
    return button


def where(citation: Citation) -> str:
    """ "Title › Section", or just the title when the section adds nothing (plain text)."""
    title = _one_line(citation.title)
    section = _one_line(citation.section)
    return title if not section or section == title else f"{title} › {section}"


def citation_text(citation: Citation) -> str:
    """One cited passage as escaped mrkdwn: bold number and title, the section, the quote."""
    title = clip(escape(_one_line(citation.title)), MAX_TITLE)
    section = _one_line(citation.section)
    head = f"*[{citation.number}] {title}*"
    if section and section != _one_line(citation.title):
        head += f" › {clip(escape(section), MAX_TITLE)}"
    quote = escape(_one_line(citation.quote))
    return clip(f"{head}\n>{quote}", MAX_SECTION_TEXT)


def share_value(answer_id: str, thread: str = "") -> str:
    """The Share button's value: the answer and the thread it belongs in."""
    return f"{answer_id}|{thread}" if thread else answer_id


def parse_share_value(value: str) -> tuple[str, str]:
    """(answer_id, thread) from a Share button's value."""
    answer_id, _, thread = (value or "").partition("|")
    return answer_id, thread


def user_mention(user_id: str | None) -> str:
    """<@U123> for a real user id (Slack shows the name); anything else is escaped text."""
    if user_id and _USER_ID.match(user_id):
        return f"<@{user_id}>"
    return escape(user_id or "someone")


def fallback_text(answer: Answer, shared_by: str | None = None) -> str:
    """Plain text for notifications and clients without Block Kit (escaped too: Slack parses it)."""
    lines = [escape(_one_line(answer.text))]
    lines += [f"[{c.number}] {escape(where(c))}" for c in answer.citations]
    text = "\n".join(lines)
    if shared_by:
        text = f"Shared by {user_mention(shared_by)}: {text}"
    return clip(text, MAX_FALLBACK)


def to_blocks(answer: Answer, answer_id: str, shared_by: str | None = None, ephemeral: bool = False,
              thread: str = "") -> tuple[list[dict], str]:
    """An answer as Block Kit blocks, and its plain-text fallback.

    The short answer, then the cited passages (title, section, quote), then the feedback buttons and,
    for an answer only the asker sees, "Share in channel". At most 50 blocks, 3,000 characters a section.

    Args:
        shared_by: the Slack user id who shared it: the message says "Shared by @them".
        ephemeral: the answer is visible only to the asker, so it gets the Share button.
        thread: the thread a shared answer should go to (kept in the Share button's value).
    """
    head: list[dict] = []
    if shared_by:
        head.append(_context(f"Shared by {user_mention(shared_by)}"))
    if shared_by or ephemeral:  # the question is not visible above this answer
        head.append(_context(f"*Question:* {clip(escape(_one_line(answer.question)), MAX_QUESTION_SHOWN)}"))
    head.append(_section(escape(answer.text)))
    if answer.written_by:
        model = clip(escape(_one_line(answer.written_by)), MAX_TITLE)
        head.append(_context(f"Written by {model} from the passages below"))

    buttons = [_button("👍 Helpful", ACTION_HELPFUL, answer_id),
               _button("👎 Not helpful", ACTION_NOT_HELPFUL, answer_id)]
    if ephemeral:
        buttons.append(_button("Share in channel", ACTION_SHARE, share_value(answer_id, thread), style="primary"))
    actions = {"type": "actions", "block_id": "advisor_actions", "elements": buttons}

    passages: list[dict] = []
    if answer.citations:
        passages.append({"type": "divider"})
        room = MAX_BLOCKS - len(head) - len(passages) - 1  # the actions block
        citations = list(answer.citations)
        if len(citations) > room:
            room -= 1  # the "more passages" note takes a block
            shown, hidden = citations[:room], citations[room:]
        else:
            shown, hidden = citations, []
        passages += [_section(citation_text(c)) for c in shown]
        if hidden:
            numbers = ", ".join(f"[{c.number}]" for c in hidden)
            passages.append(_context(f"{len(hidden)} more cited passages not shown: {numbers}"))
    blocks = head + passages + suggestion_buttons(answer) + [actions]
    return blocks, fallback_text(answer, shared_by)


def suggestion_buttons(answer: Answer) -> list[dict]:
    """Under a "not covered" answer, the nearest headings it names as buttons that ask them (none otherwise)."""
    if not answer.abstained or not answer.suggestions:
        return []
    return [{"type": "actions", "block_id": "advisor_suggestions",
             "elements": [_button(f"Ask: {s}", f"{ACTION_ASK_SUGGESTION}:{n}", s)
                          for n, s in enumerate(answer.suggestions)]}]


def feedback_view(answer_id: str) -> dict:
    """The modal that asks why an answer did not help (the verdict is recorded before it opens)."""
    return {
        "type": "modal",
        "callback_id": FEEDBACK_VIEW,
        "private_metadata": answer_id[:3000],
        "title": {"type": "plain_text", "text": "What was missing?"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Skip"},
        "blocks": [
            {"type": "section", "text": _mrkdwn("Thanks, noted as not helpful. Tell us why, if you like:")},
            {
                "type": "input", "block_id": REASON_BLOCK, "optional": True,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": True,
                            "max_length": 2000},
            },
        ],
    }
