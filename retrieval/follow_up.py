"""Telling a follow-up ("and at Series B?", "is it worth it?") from a question that stands on its own."""

from __future__ import annotations

import re

from retrieval.lexical import words

# Openings that lean on what was said before.
_LEAD = re.compile(r"^\s*(?:and|or|but|so|also|then|what about|how about|what of|same for|same)\b", re.IGNORECASE)
# Words that point back to something named earlier (not "this", "these": "this weekend", "these days").
_POINTERS = frozenset("""
they them their theirs it its it's that that's those there he she him her his hers such same
one ones former latter
""".split())
MAX_ELLIPTIC_WORDS = 1  # "salary?", "Series B?": too few words to be a question of their own


def looks_like_follow_up(question: str) -> bool:
    """Whether a question may need the conversation's earlier questions to be understood.

    A question with its own subject and no word pointing back ("how do I boil pasta?", "what does a
    data PM own?") is read alone, so a thread's earlier topic cannot lend it confidence it lacks.
    """
    if _LEAD.match(question):
        return True
    tokens = re.findall(r"[a-z']+", question.lower().replace("’", "'"))
    if any(t in _POINTERS for t in tokens):
        return True
    return len(words(question)) <= MAX_ELLIPTIC_WORDS
