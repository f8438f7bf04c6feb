"""The lexical signal's tokens: what BM25 indexes, and the version a saved BM25 index is reused by."""

from __future__ import annotations

import hashlib

from retrieval import lexical
from tests.conftest import SHIPPED_CORPUS

# The shipped corpus's tokens (each line tokenised and expanded with its synonyms) as each TOKENIZER_VERSION makes
# them. A saved BM25 index is reused while the version is the same, so a change to the tokenising code that alters
# any token must bump TOKENIZER_VERSION (and add its line here); one that alters none (a comment) need not.
SHIPPED_TOKENS = {"1": "39c5c6c64bd7af475a43ac28922dce6c", "2": "923d191243ac2cd219a088088e573cb5"}


def tokens_digest() -> str:
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(SHIPPED_CORPUS.glob("*")):
        for line in path.read_text(encoding="utf-8").splitlines():
            digest.update(("\x00" + " ".join(lexical.expand(lexical.tokenize(line)))).encode())
    return digest.hexdigest()


def test_tokens_change_only_with_the_tokenizer_version():
    assert SHIPPED_TOKENS.get(lexical.TOKENIZER_VERSION) == tokens_digest(), (
        "tokenize/expand give other tokens than this TOKENIZER_VERSION did: bump it in retrieval/lexical.py "
        "and add the new digest to SHIPPED_TOKENS")


def test_the_saved_index_version_follows_the_tokenizer_not_the_source(monkeypatch):
    before = lexical.code_version()
    lexical.code_version.cache_clear()
    monkeypatch.setattr(lexical, "TOKENIZER_VERSION", "a later tokenizer")
    try:
        assert lexical.code_version() != before
    finally:
        lexical.code_version.cache_clear()


def test_hyphenated_words_and_acronym_plurals_give_their_parts():
    assert {"pm", "specif"} <= set(lexical.tokenize("ML PM-specific:"))
    assert "pm" in lexical.tokenize("PMs") and "llm" in lexical.tokenize("LLMs")


def test_product_manager_spelled_out_is_the_pm_the_documents_write():
    for asked in ("AI product managers", "an AI Product Manager", "AI product management", "AI product mgmt"):
        assert lexical.tokenize(asked) == ["ai", "pm"], asked
    assert lexical.tokenize("a product launch manager") == ["product", "launch", "manag"]


def test_a_spelled_out_question_ranks_the_passages_about_pms_not_the_one_that_spells_it_out():
    texts = ["I get asked about the difference between AI, ML, and data product manager roles constantly.",
             "Salaries reflect the gap: ML PMs at L5 start at $280K TC, while AI PMs average $250K."]
    scores = lexical.LexicalIndex(texts).scores("do AI product managers earn less than ML product managers?")
    assert scores[1] > scores[0]


def test_a_questions_phrases_are_its_words_side_by_side_and_a_text_holds_them_with_one_word_between():
    asked = lexical.phrases(lexical.tokenize("a good system design practice prompt"))
    assert ("system", "design") in asked and ("good", "system") in asked and ("good", "design") not in asked
    held = lexical.holds_phrases(lexical.tokenize("Practice ML system design for pipelines"))
    assert {("practic", "ml"), ("practic", "system"), ("system", "design")} <= held
    assert ("practic", "design") not in held  # two words between are no longer a phrase


def test_phrase_matches_tell_the_phrase_said_from_its_words_scattered_and_weigh_rare_phrases_more():
    texts = ["Practice system design for ML pipelines, e.g. design a fraud detection system.",
             "Work through a structured system with your team. Good design matters for every ML PM.",
             "Our team's good system design practice prompt."]
    index = lexical.LexicalIndex(texts + ["ML PM ML PM."] * 6)  # "ml pm" is common, "system design" is not
    shares = index.phrase_matches("what's a good system design practice prompt for ML PM prep?", texts)
    assert shares[0] > shares[1] and shares[2] > shares[0]  # side by side beats scattered; more phrases, more
    assert 0.0 <= shares.min() and shares.max() <= 1.0
    common = index.phrase_matches("ML PM system design", ["ML PM only here."])[0]
    rare = index.phrase_matches("ML PM system design", ["System design only here."])[0]
    assert rare > common > 0
    assert not index.phrase_matches("design", texts).any()  # one word: no phrase to match


def test_the_role_spelled_out_is_written_as_the_documents_abbreviate_it():
    assert lexical.in_pm_words("do AI product managers make less than an ML Product Manager?") == \
        "do AI PMs make less than an ML PM?"
    assert lexical.in_pm_words("is an MBA worth it for product management or product-mgmt?") == \
        "is an MBA worth it for PM or PM?"
    assert lexical.in_pm_words("a generic product person, or data product folks / product ppl?") == \
        "a generic PM, or data PMs / PMs?"
    assert lexical.in_pm_words("a product-led company's production line") == "a product-led company's production line"


def test_a_corpus_writes_pm_when_it_abbreviates_more_often_than_it_spells_out():
    assert lexical.writes_pm(["ML PMs own the model.", "A product manager ships.", "AI PM pays more."])
    assert not lexical.writes_pm(["Product managers own the roadmap.", "A product manager (PM) ships."])
    assert not lexical.writes_pm([])
    mostly_spelled = ["A PM ships."] * 2000 + ["A product manager ships."] * 4000
    assert not lexical.writes_pm(mostly_spelled), "read from an evenly spaced sample, not only the first passages"
