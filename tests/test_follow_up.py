"""Which questions are read with the thread's earlier questions."""

from __future__ import annotations

import pytest

from retrieval.follow_up import looks_like_follow_up
from retrieval.vocabulary import Question

FOLLOW_UPS = ["and at Series B?", "what about seed stage?", "and how much do they earn?", "is it worth it?",
              "What about for data PMs?", "salary?", "Series B?", "does that hold for startups?",
              "How about at Google?", "same for ML PMs?"]
STANDALONE = ["how do I boil pasta?", "what does a data PM own?", "does a Series A startup hire ML PMs?",
              "What's the weather like in SF this weekend?", "which PM role pays best in 2026?"]


@pytest.mark.parametrize("text", FOLLOW_UPS)
def test_elliptic_or_pointing_back_questions_are_follow_ups(text):
    assert looks_like_follow_up(text)


@pytest.mark.parametrize("text", STANDALONE)
def test_questions_with_their_own_subject_stand_alone(text):
    assert not looks_like_follow_up(text)


def test_an_unrelated_question_in_a_thread_is_not_answered_from_the_threads_topic(fake_advisor):
    thread = ("does a Series A startup hire ML PMs?", "and at Series B?")
    alone = fake_advisor.answer(Question(text="how do I boil fresh pasta?"))
    in_thread = fake_advisor.answer(Question(text="how do I boil fresh pasta?", context=thread))
    assert in_thread.abstained == alone.abstained
    assert [c.chunk_id for c in in_thread.citations] == [c.chunk_id for c in alone.citations]
