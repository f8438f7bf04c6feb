"""The extractive answer on fixtures: which sentences lead, what they bring along, attribution, conflicts, declining."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.answer import (Style, answer_span, compose, frames_the_text, names_the_asked, not_covered,
                              sentence_scores, suggest)
from retrieval.chunking import Chunk, split_sentences
from retrieval.index_store import LoadedIndex
from retrieval.search import Hit, SearchResult

DIM = 64


class Fixture:
    """Passages with chosen similarities to a question: the question is axis 0, every sentence and
    passage gets an axis of its own, so they are unlike each other and exactly as like the question as asked."""

    def __init__(self):
        self.chunks: list[Chunk] = []
        self.sims: list[list[float]] = []
        self.scores: list[float] = []

    def passage(self, doc: str, text: str, sims: list[float], score: float, section: str = "",
                title: str = "") -> int:
        n = len(self.chunks)
        self.chunks.append(Chunk(id=f"{doc}#{n}", doc_id=doc, doc_title=title or f"The {doc} guide",
                                 section=section or title or f"The {doc} guide", text=text))
        assert len(split_sentences(text)) == len(sims)
        self.sims.append(sims)
        self.scores.append(score)
        return n

    def _vector(self, sim: float, axis: int) -> np.ndarray:
        v = np.zeros(DIM, dtype=np.float32)
        v[0], v[axis] = sim, np.sqrt(max(0.0, 1 - sim * sim))
        return v

    def build(self) -> tuple[SearchResult, LoadedIndex]:
        n = len(self.chunks)
        axis = iter(range(1, DIM))
        rows = [self._vector(max(s), next(axis)) for s in self.sims]  # chunk rows
        rows += [self._vector(max(s), next(axis)) for s in self.sims]  # window rows
        sentence_rows, sentences = [], []
        for chunk, sims in zip(self.chunks, self.sims):
            start = len(rows)
            rows += [self._vector(s, next(axis)) for s in sims]
            sentence_rows.append((start, len(rows)))
            sentences.append(split_sentences(chunk.text))
        index = LoadedIndex(manifest=None, chunks=self.chunks, faiss_index=None, vectors=np.array(rows),
                            sentence_rows=sentence_rows, sentences=sentences, generation="test")
        hits = sorted((Hit(c, i, self.scores[i], max(self.sims[i]), 0.0) for i, c in enumerate(self.chunks)),
                      key=lambda h: -h.score)
        by_document: dict[str, list[Hit]] = {}
        for hit in hits:
            by_document.setdefault(hit.chunk.doc_id, []).append(hit)
        query = np.zeros(DIM, dtype=np.float32)
        query[0] = 1.0
        assert n == len(self.scores)
        return SearchResult(hits=hits[:5], query_vector=query, top_dense=hits[0].dense, coverage=1.0,
                            by_document=by_document), index


def answer(fixture: Fixture, question: str = "which role owns the model?", style: Style = Style()):
    result, index = fixture.build()
    return compose(question, result, index, style=style)


# --- the span of a passage that answers -------------------------------------------------------------

def test_the_line_with_the_closest_sentence_answers_whole():
    sentences = ["AI PMs integrate models.", "Healthcare: cautious.", "AI PM and ML PM both valued."]
    text = "AI PMs integrate models.\nHealthcare: cautious. AI PM and ML PM both valued."
    lo, hi, said = answer_span(sentences, text, np.array([0.2, 0.1, 0.9]))
    assert (lo, hi, said) == (1, 2, "Healthcare: cautious. AI PM and ML PM both valued.")


def test_a_line_that_leans_on_the_one_before_brings_it():
    sentences = ["BAD: A candidate said, “We’ll collect more data to fix bias.”",
                 "This shows a feature-level mindset and ignores labeling cost."]
    text = "\n".join(sentences)
    *_, said = answer_span(sentences, text, np.array([0.1, 0.9]))
    assert said == " ".join(sentences)


def test_a_leaning_line_brings_the_whole_line_before_it_where_its_subject_is():
    sentences = ["AI Research PM: owns the productization of research outputs.",
                 "Common at OpenAI, Anthropic, DeepMind.",
                 "Requires technical depth approaching ML researcher.",
                 "These roles aren’t mainstream yet but exist at AI-native and large companies."]
    text = " ".join(sentences[:3]) + "\n" + sentences[3]
    lo, hi, said = answer_span(sentences, text, np.array([0.1, 0.2, 0.1, 0.9]))
    assert (lo, hi, said) == (0, 3, " ".join(sentences))


def test_a_line_too_long_for_a_chat_is_cut_to_the_sentence_whose_own_words_answer():
    sentences = ["On Monday at 10 a.m., they review last week’s precision drop in a computer vision model.",
                 ("By noon, they’re negotiating with engineering on whether to revert to v2 or retrain with "
                  "augmented data."),
                 ("Tuesday, they present to execs why accuracy improved by 2% but recall dropped 5% — and why "
                  "that’s acceptable for this use case.")]
    text = " ".join(sentences)
    assert len(text) > 280
    vectors = np.eye(3, 4, dtype=np.float32)
    question = np.array([0.6, 0.0, 0.5, 0.6], dtype=np.float32)  # closest to the Monday sentence
    wanted = {"tuesday": 3.0, "present": 2.0, "exec": 2.0, "ml": 0.1}
    whole = sentence_scores(sentences, vectors, question, wanted, [[0, 1, 2]])
    cut = sentence_scores(sentences, vectors, question, wanted, [[0, 1, 2]], cut=True)
    assert whole[0] > whole[2]  # the line's words count for every sentence of it alike
    assert cut[2] > cut[0]  # cut to a sentence, Tuesday's own words count
    assert answer_span(sentences, text, whole)[2] == sentences[0]
    assert answer_span(sentences, text, whole, within=cut)[2] == sentences[2]


def test_the_line_after_that_leans_on_the_answering_line_comes_with_it():
    sentences = ["BAD: An AI PM candidate said, “I’d improve the chatbot by adding more responses.”",
                 "This shows a feature-level mindset.",
                 "Adding responses doesn’t fix intent misclassification — it’s treating symptoms.",
                 "GOOD: “I’d analyze the top 100 misclassified user queries.”"]
    text = "\n".join([sentences[0], " ".join(sentences[1:3]), sentences[3]])
    lo, hi, said = answer_span(sentences, text, np.array([0.9, 0.1, 0.1, 0.5]))
    # the judgement comes along, the next example (which stands alone) does not
    assert (lo, hi, said) == (0, 2, " ".join(sentences[:3]))


def test_a_leaning_line_after_is_left_behind_when_the_answer_would_outgrow_a_chat_line():
    sentences = ["ML PMs live in the feedback loop between real-world performance and model updates.",
                 ("They define what “good” looks like — not through NPS, but through AUC-ROC, log loss, or mean "
                  "average precision, and they review every one of those figures with the data science and "
                  "analytics teams weekly, in a meeting that also covers labeling budgets, drift alerts and the "
                  "retraining calendar for the quarter.")]
    lo, hi, said = answer_span(sentences, "\n".join(sentences), np.array([0.9, 0.1]))
    assert len(" ".join(sentences)) > 360
    assert (lo, hi, said) == (0, 0, sentences[0])


def test_the_rest_of_a_long_line_that_leans_on_the_answering_sentence_comes_with_it():
    sentences = ["I sat in on a hiring review at a Series A NLP startup, one of a dozen that quarter.",
                 ("The team was hiring an “AI Product Lead” but the JD listed responsibilities like “define "
                  "evaluation metrics for entity extraction” and “own training data pipeline.”"),
                 "That’s an ML PM, but they called it AI PM to attract broader candidates."]
    text = " ".join(sentences)  # one line, too long for a chat: cut to the sentence that answers
    assert len(text) > 280
    lo, hi, said = answer_span(sentences, text, np.array([0.1, 0.9, 0.2]))
    assert (lo, hi, said) == (1, 2, " ".join(sentences[1:]))


def test_a_leaning_line_at_the_top_of_a_passage_brings_the_passage_before():
    sentences = ["That’s an ML PM, but they called it AI PM to attract broader candidates."]
    *_, said = answer_span(sentences, sentences[0], np.array([0.9]),
                           before="The JD listed “own training data pipeline.”")
    assert said == "The JD listed “own training data pipeline.” " + sentences[0]


def test_a_long_chain_of_leaning_sentences_keeps_only_the_antecedent_and_the_answer():
    sentences = ["ML PMs live in the feedback loop between real-world performance and model updates."] + [
        f"They review dashboard number {i} with the data science team every single week." for i in range(4)] + [
        "They decide if a 0.5% improvement is worth the compute cost."]
    text = " ".join(sentences)
    sims = np.zeros(len(sentences))
    sims[-1] = 1.0
    *_, said = answer_span(sentences, text, sims)
    assert said == f"{sentences[0]} … {sentences[-1]}"


def test_a_fragment_is_read_with_what_follows_it():
    sentences = ["Not X: the title.", "But Y: the depth of model-related tasks in the job description."]
    *_, said = answer_span(sentences, "\n".join(sentences), np.array([0.9, 0.5]))
    assert said == " ".join(sentences)


def test_a_predecessor_that_leans_itself_is_not_brought_along():
    sentences = ["Not X: writing PRDs for new UIs.", "But Y: defining data labeling guidelines and error budgets."]
    *_, said = answer_span(sentences, " ".join(sentences), np.array([0.5, 0.9]),
                           before="They work backward from operational downtime to annotation quality.")
    assert said == " ".join(sentences)


def test_an_intro_with_nothing_after_it_in_the_passage_is_left_off_the_end():
    sentences = ["Owns products built on foundation models (LLMs, image gen, code gen).", "Day-to-day:"]
    lo, hi, said = answer_span(sentences, " ".join(sentences), np.array([0.9, 0.2]))
    assert (lo, hi, said) == (0, 0, sentences[0])
    alone = ["In 2026, US senior-level totals (base + bonus + equity):"]
    assert answer_span(alone, alone[0], np.array([0.9]), lead=False)[2] == ""
    assert answer_span(alone, alone[0], np.array([0.9]), lead=True)[2] == alone[0]


# --- which passages the short answer speaks from ----------------------------------------------------

def test_the_best_passage_leads_and_a_redundant_runner_up_adds_no_sentence():
    f = Fixture()
    f.passage("a", "ML PMs own the model itself.", [0.9], score=0.80)
    f.passage("a", "ML PMs own the model itself.", [0.88], score=0.79)  # the same words again
    result = answer(f)
    assert result.text.startswith("ML PMs own the model itself. [1]")
    assert len(result.sentences) == 1
    assert [c.number for c in result.citations] == [1, 2]  # still cited, below the answer
    assert result.text.endswith("See also [2].")


def test_a_runner_up_well_below_the_best_is_not_a_sentence_of_the_answer():
    f = Fixture()
    f.passage("a", "ML PMs own the model itself.", [0.9], score=0.80)
    f.passage("a", "In this guide I compare the three roles on scope.", [0.5], score=0.50)
    result = answer(f)
    assert [s.text for s in result.sentences] == ["ML PMs own the model itself."]


@pytest.mark.parametrize("sentence", [
    "In this guide I compare the three roles on scope, skills and pay.",
    "I recommend reading this carefully before you commit to a specialization.",
    "I get asked about the difference between AI, ML, and data PM roles constantly.",
    "This article covers how to prepare for an ML PM loop.",
    "Let's dive into what an AI PM does all day.",
    "We'll explore the three paths below.",
])
def test_a_sentence_about_the_text_itself_is_told_apart(sentence):
    assert frames_the_text(sentence)


@pytest.mark.parametrize("sentence", [
    "Data PM (internal) is the lowest, but the work-life balance is often best.",
    "Compare the offers on total compensation, not base.",  # advice, not a sentence about the text
    "In this role you own the training data pipeline.",
    "Ask in interviews: “Do we retrain models in-house?”",
])
def test_a_sentence_about_the_subject_is_not_taken_for_framing(sentence):
    assert not frames_the_text(sentence)


def test_a_passage_that_only_frames_its_document_does_not_lead():
    f = Fixture()
    f.passage("guide", "In this guide I compare the three roles on pay and hours. I recommend reading this carefully.",
              [0.9, 0.8], score=0.90)
    f.passage("guide", "Data PM (internal) is the lowest, but the work-life balance is often best.", [0.6], score=0.70)
    result = answer(f, "which PM path has the most chill hours?")
    assert result.text.startswith("Data PM (internal) is the lowest, but the work-life balance is often best. [1]")
    assert all(not frames_the_text(s.text) for s in result.sentences)


def test_another_documents_passage_that_only_frames_it_is_not_heard_as_its_view():
    f = Fixture()
    f.passage("article", "Data PM (internal) is the lowest, but the work-life balance is often best.", [0.8], score=0.90)
    f.passage("guide", "In this guide I compare the three roles on pay and hours. I recommend reading this carefully.",
              [0.9, 0.8], score=0.85)
    f.passage("guide", "Both roles pay alike at large tech companies.", [0.3], score=0.40)
    result = answer(f, "which PM path has the most chill hours?", style=Style(other_line_margin=1.0))
    assert [s.text for s in result.sentences] == [
        "Data PM (internal) is the lowest, but the work-life balance is often best."]
    assert all(not frames_the_text(c.quote) for c in result.citations)


def test_a_close_rival_that_stands_alone_leads_before_a_passage_that_leans():
    f = Fixture()
    f.passage("article", "But Y: defining data labeling guidelines and error budgets for the model.", [0.9], score=0.80)
    f.passage("guide", "Strong writing and policy interest: AI Trust PM is the track that fits.", [0.7], score=0.78)
    result = answer(f, "I love drafting guidelines and rules: which PM track suits me?")
    assert result.sentences[0].text.startswith("Strong writing and policy interest")


def test_the_line_that_says_the_questions_phrase_answers_before_one_with_its_words_apart():
    f = Fixture()
    f.passage("guide", "Design the practice around one system of notes and reviews.\nPractice system design for ML pipelines.",
              [0.70, 0.62], score=0.90)
    result = answer(f, "how should I practice system design?", style=Style(line_phrase=0.2))
    assert [s.text for s in result.sentences] == ["Practice system design for ML pipelines."]
    # without the phrases, the closer line with the same words answers
    result = answer(f, "how should I practice system design?", style=Style(line_phrase=0.0))
    assert [s.text for s in result.sentences] == ["Design the practice around one system of notes and reviews."]


def test_the_line_whose_label_names_what_the_question_names_says_what_it_is():
    f = Fixture()
    f.passage("guide", "Build internal AI infra and tooling: AI Platform PM\n"
                       "AI Platform PM: owns the internal AI infrastructure - eval frameworks, prompt versioning.",
              [0.75, 0.70], score=0.90)
    defined = answer(f, "What's an AI Platform PM?", style=Style(label_line=0.1))
    assert [s.text for s in defined.sentences] == [
        "AI Platform PM: owns the internal AI infrastructure - eval frameworks, prompt versioning."]
    closest = answer(f, "What's an AI Platform PM?", style=Style(label_line=0.0))
    assert [s.text for s in closest.sentences] == ["Build internal AI infra and tooling: AI Platform PM"]
    # a label of one role's name is what most lines are about: it names nothing in particular
    assert not names_the_asked("ML PM: stable. Continues at large tech.", {"ml": 1.0, "pm": 1.0, "stabl": 1.0})
    assert names_the_asked("AI Platform PM: emerging.", {"ai": 1.0, "platform": 1.0, "pm": 1.0, "grow": 1.0})


def test_a_passage_cited_below_is_quoted_at_the_line_that_answers_as_the_answers_own_lines_are_chosen():
    f = Fixture()
    f.passage("guide", "Series B startups hire dedicated ML PMs.", [0.8], score=0.95)
    # the closer sentence shares only "PM"; the line with the question's rarer words answers
    f.passage("guide", "Most PMs like PM work, and the PM work they like best is the work the other PMs of their team "
              "like to do with them every single working day.\nTrue ML PMs emerge at Series B startups.", [0.6, 0.55], score=0.7)
    result = answer(f, "do Series B startups hire ML PMs?")  # the quote below holds one of the two
    assert [s.text for s in result.sentences] == ["Series B startups hire dedicated ML PMs."]
    assert result.citations[1].quote.endswith("True ML PMs emerge at Series B startups.")


def test_a_framing_sentence_gives_way_to_its_passages_other_line():
    f = Fixture()
    f.passage("guide", "In this guide I compare the three roles on pay.\nAI PM pays slightly more on average.",
              [0.9, 0.6], score=0.90)
    result = answer(f, "which PM role pays more?")
    assert [s.text for s in result.sentences] == ["AI PM pays slightly more on average."]


def _salaries() -> Fixture:
    f = Fixture()
    f.passage("guide", "AI PM pays slightly more on average.", [0.9], score=0.80, title="The 2026 field guide")
    f.passage("guide", "ML PM pays consistently at large tech companies.", [0.85], score=0.78,
              title="The 2026 field guide")
    f.passage("article", "ML PMs at L5 start at $280K TC vs $250K for AI PMs.", [0.7], score=0.60,
              title="The titles article")
    return f


def test_a_conflict_reads_as_two_labelled_positions_each_cited():
    result = answer(_salaries(), "who earns more, AI PM or ML PM?")
    assert result.text == ("“The 2026 field guide”: AI PM pays slightly more on average. [1] "
                           "“The titles article”: ML PMs at L5 start at $280K TC vs $250K for AI PMs. [2] "
                           "See also [3].")
    assert [c.doc_id for c in result.citations] == ["guide", "article", "guide"]


def test_with_three_sentences_each_document_is_still_named_once():
    result = answer(_salaries(), "who earns more, AI PM or ML PM?", Style(max_sentences=3))
    assert result.text == ("“The 2026 field guide”: AI PM pays slightly more on average. [1] "
                           "ML PM pays consistently at large tech companies. [2] "
                           "“The titles article”: ML PMs at L5 start at $280K TC vs $250K for AI PMs. [3]")


def test_another_document_far_below_the_best_is_not_heard():
    f = Fixture()
    f.passage("guide", "AI PM pays slightly more on average.", [0.9], score=0.80)
    f.passage("article", "The hiring manager once told me a story.", [0.3], score=0.30)
    result = answer(f, "who earns more?")
    assert {c.doc_id for c in result.citations[: len(result.sentences)]} == {"guide"}
    assert "“" not in result.text.split("[1]")[0]  # one document speaking: no attribution label


def test_every_sentence_of_the_answer_stands_alone():
    f = Fixture()
    f.passage("a", "Most startups use AI PM as a catch-all.\nThat’s an ML PM in all but name.", [0.3, 0.9],
              score=0.8)
    result = answer(f)
    first = result.text.split(" [1]")[0]
    assert first == "Most startups use AI PM as a catch-all. That’s an ML PM in all but name."


# --- declining ----------------------------------------------------------------------------------------

def _hit(doc: str, section: str, title: str = "Guide") -> Hit:
    return Hit(Chunk(id=f"{doc}#1", doc_id=doc, doc_title=title, section=section, text="x"), 0, 0.5, 0.5, 0.0)


def test_declining_near_the_documents_suggests_the_nearest_headings():
    hits = (_hit("a", "Guide › Which role has more technical interview rounds?"), _hit("a", "Guide"),
            _hit("b", "Guide › Which role has more technical interview rounds?"), _hit("c", "FAQ › Is AI PM real?"))
    declined = not_covered("what's the interview process at Microsoft?", ["Guide"], hits, nearby=True)
    assert declined.abstained and declined.citations == ()
    assert declined.suggestions == ("Which role has more technical interview rounds?", "Guide")
    assert "“Which role has more technical interview rounds?”" in declined.text
    assert "don't cover" in declined.text


def test_declining_far_from_the_documents_says_what_they_are_about():
    declined = not_covered("how long do I boil pasta?", ["AI PM vs ML PM", "The guide"], (_hit("a", "X › Y"),))
    assert declined.suggestions == ()
    assert "They are about: AI PM vs ML PM; The guide." in declined.text


@pytest.mark.parametrize("section", ["Guide › Profile / Best fit", "Guide"])
def test_a_table_header_or_a_missing_heading_suggests_the_document_title(section):
    assert suggest([_hit("a", section, title="Guide")]) == ["Guide"]


def test_a_passage_without_a_heading_suggests_the_label_its_first_line_opens_with():
    row = Hit(Chunk(id="g#7", doc_id="g", doc_title="Guide", section="Guide",
                    text="Salary 2026 (US senior): AI PM $280-420k, ML PM $260-380k"), 0, 0.5, 0.5, 0.0)
    verdict = Hit(Chunk(id="g#8", doc_id="g", doc_title="Guide", section="Guide › Profile / Best fit",
                        text="BAD: A candidate said, “We'll collect more data.”"), 1, 0.5, 0.5, 0.0)
    assert suggest([row]) == ["Salary 2026 (US senior)"]
    assert suggest([verdict]) == ["Guide"]  # "BAD" names no topic: the document's title instead
    declined = not_covered("what do senior AI PMs make in Berlin?", ["Guide"], (row, verdict), nearby=True)
    assert "“Salary 2026 (US senior)” and “Guide”" in declined.text


def test_a_further_sentence_that_cannot_stand_alone_is_left_out_but_a_lead_is_kept():
    leaning = ["That’s an ML PM in all but name, whatever the job title says."]
    assert answer_span(leaning, leaning[0], np.array([0.9]), lead=False)[2] == ""
    assert answer_span(leaning, leaning[0], np.array([0.9]), lead=True)[2] == leaning[0]
    chain = ["ML PMs live in the feedback loop between real-world performance and model updates."] + [
        f"They review dashboard number {i} with the data science team every single week." for i in range(5)]
    sims = np.zeros(len(chain))
    sims[-1] = 1.0
    assert answer_span(chain, " ".join(chain), sims, lead=False)[2] == ""


def test_another_document_whose_own_words_answer_much_worse_is_not_heard_when_the_style_says_so():
    f = Fixture()
    f.passage("guide", "ML PMs own the model itself.", [0.9], score=0.80)
    f.passage("article", "Customer: end user of an ML feature.", [0.4], score=0.60)  # close by score only
    heard = answer(f, "which role owns the model?", Style(other_line_margin=1.0))
    strict = answer(f, "which role owns the model?", Style(other_line_margin=0.2))
    assert [s.citation for s in heard.sentences] == [1, 2]
    assert [s.text for s in strict.sentences] == ["ML PMs own the model itself."]
    assert [c.doc_id for c in strict.citations] == ["guide", "article"]  # still cited, below the answer
