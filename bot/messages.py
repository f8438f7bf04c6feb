"""What the advisor says to users outside its answers, the same on every platform."""

from __future__ import annotations

ERROR = "Something went wrong answering that; please try again."
BUSY = "I'm answering a lot of questions right now; please ask again in a minute."
DUPLICATE = "You asked that a moment ago; the answer is above."

FEEDBACK_THANKS = "Thanks for the feedback!"
FEEDBACK_FAILED = "I couldn't record that feedback; please try again."
NOTHING_TO_RATE = "There is no answer to rate yet; ask a question first."

ANSWER_GONE = "That answer is no longer available; please ask again."
ALREADY_SHARED = "That answer is already shared here."
SHARED = "Shared in the channel."

HELP_WORDS = ("help", "?")


def is_help(text: str) -> bool:
    """Whether a message asks what the advisor does ("help", "?") rather than asking a question."""
    return text.lower() in HELP_WORDS


def rate_limited(wait_seconds: float) -> str:
    """The notice for a user asking faster than the rate limit allows, with the whole seconds to wait."""
    seconds = max(1, round(wait_seconds))
    return (f"You're asking faster than I can keep up; please wait {seconds} "
            f"second{'s' if seconds != 1 else ''} and ask again.")
