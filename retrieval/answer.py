"""Extractive answers: the best sentences of the retrieved passages, each cited, or a plain "not covered"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from retrieval.chunking import split_sentences
from retrieval.index_store import LoadedIndex
from retrieval.lexical import holds_phrases, phrase_share, phrases, tokenize
from retrieval.ranking import centre
from retrieval.search import Hit, SearchResult
from retrieval.vocabulary import Answer, AnswerSentence, Citation

# A quote under the answer: about three lines of a Slack or Discord message, enough to read the passage's
# point around the sentence used, short enough that three quotes stay under the 1,000 characters shown.
MAX_QUOTE_CHARS = 260
# A sentence of the short answer (a line, a list intro with its items): longer ones are cut to their closest
# sentence, since a chat's first line is read and a paragraph is skipped. Set by hand with the quote length.
MAX_ANSWER_SENTENCE_CHARS = 280
# A further passage of the same document is worth a sentence only when it scores this close to the best (in
# the ranker's units, cosine-like) and says something the lead does not. Set by hand, not fitted.
SAME_SOURCE_MARGIN = 0.1
# Passages cited in all, those below the short answer without a sentence of their own included: more of what
# was found, to check and read on (one more when another document's view took a place: see Style).
MAX_CITED = 3
LEAD_LINE = 0.5  # weight of how well a passage's best line answers, choosing the lead (0.5 and 1 read alike)
MAX_LEANING_CHARS = 360  # a sentence read with what it leans on may run this long
MIN_STANDALONE_CHARS = 40  # a shorter line ("Not X: the title.") is read with the sentence after it
REDUNDANT = 0.85  # a sentence this similar to one already shown says the same again

# A sentence that opens like this leans on one before it ("That's an ML PM ...", "But Y: ...") and does not
# stand alone in a chat: it is shown with the sentence it leans on, or not at all.
_LEANS = re.compile(r"^\W*(?:that|this|these|those|it|they|he|she|but|and|so|also|however|conversely|instead|"
                    r"then|not x|but y)\b", re.IGNORECASE)


# A sentence about the text itself or its author's act of writing ("In this guide I compare the three roles ...",
# "I recommend reading this carefully ...", "Let's dive in"): it frames the document and never answers, yet it
# names every topic the document covers and so sits close to many questions. It is never a sentence of the
# answer when its passage says anything else, and a passage that says nothing else does not lead. The
# patterns are the grammar of such framing, written by hand, not fitted to the labelled questions.
_FRAMES = re.compile(
    r"\b(?:in|throughout) this (?:guide|article|post|piece|essay|series|section|chapter)\b"
    r"|\bthis (?:guide|article|post|piece|essay) (?:will|covers|explains|walks|looks|is about)\b"
    r"|\b(?:I|we)(?:'ll| will| am going to|'m going to| are going to)? (?:compare|cover|explain|walk you|show you|"
    r"discuss|explore|dive|break down)\b"
    r"|\blet's (?:dive|take a look|explore|get started|begin|start)\b|\bread on\b|\bkeep reading\b"
    r"|\bI recommend reading\b|\b(?:I|we) (?:often |frequently |constantly )?get asked\b", re.IGNORECASE)
FRAMING_PENALTY = 1.0  # below any sentence that says something: cosines and word shares stay under it


def frames_the_text(sentence: str) -> bool:
    """Whether a sentence talks about its document rather than its subject ("In this guide I compare ...")."""
    return bool(_FRAMES.search(sentence))


def leans_on_previous(sentence: str) -> bool:
    """Whether a sentence opens by pointing back at one the reader may not have been shown."""
    return bool(_LEANS.match(sentence))


@dataclass(frozen=True)
class Style:
    """The composer's choices that `advisor calibrate` makes on labelled questions (see bot/calibration.py)."""

    # the lead is the best of the passages within this score of the top one by its score plus LEAD_LINE
    # times how well its best line answers: the passage whose own words answer best
    lead_margin: float = 0.05
    # another document's view is heard when its passage scores this close to the best: where two documents
    # disagree (salaries, how technical AI PM is), the answer shows both positions
    other_margin: float = 0.35
    # ... and when its own best line answers nearly as well as the lead's (within this): a view on the point
    # asked, not a passage that only shares the role names
    other_line_margin: float = 1.0
    # extra weight of BM25 when choosing which passage of another document speaks: its position on the
    # point asked ("Salaries reflect the gap: ...") shares the question's words where its most similar
    # passage may share only the role names
    other_lexical: float = 0.2
    # a sentence's closeness to the question blends its cosine with its cosine once the corpus's shared
    # direction is removed (this share), so that "ML PMs live in ..." does not win on the role names alone
    sentence_centred: float = 0.5
    # weight of the question's phrases (two of its words side by side) in choosing a passage's line, beside
    # its words' LINE_LEXICAL: "Practice system design ..." over "... a structured preparation system"
    line_phrase: float = 0.0
    # weight of a line whose label names what the question names ("AI Platform PM: owns the internal AI
    # infrastructure ..." for "What's an AI Platform PM?", over "Build internal AI infra: AI Platform PM")
    label_line: float = 0.0
    # sentences in the short answer: the lead, then another document's view (and with 3, a close passage of
    # the lead's document that says something new); a passage without a sentence is still cited below it
    max_sentences: int = 2
    # one more passage cited when another document's view took one of the places
    extra_for_other: int = 1
    # the quotes of the passages cited without a sentence of their own: shorter, they back the answer up
    further_quote_chars: int = 160


MAX_SUGGESTIONS = 2  # headings offered when declining: the closest two, as questions to ask instead


def not_covered(question: str, titles: list[str], hits: tuple = (), nearby: bool = False) -> Answer:
    """The plain abstention: nothing invented, and where to look instead. For a question near what the
    documents cover (`nearby`), the headings of the closest passages, to ask about instead; otherwise what
    the documents are about."""
    suggestions = suggest(hits) if nearby else []
    if suggestions:
        close = " and ".join(f"“{s}”" for s in suggestions)
        text = ("The documents I know don't cover this, so I won't guess. The nearest they come is "
                f"{close}: ask about that, or add a document that covers your question.")
    else:
        known = "; ".join(titles[:5]) + (f" and {len(titles) - 5} more" if len(titles) > 5 else "")
        text = (
            "The documents I know don't cover this, so I won't guess. "
            f"They are about: {known}. Try rephrasing, or add a document that covers it."
        )
    return Answer(question=question, text=text, abstained=True, hits=tuple(hits), suggestions=tuple(suggestions))


# The label a line opens with ("Salary 2026 (US senior): AI PM $280-420k, ..."): what a table row or a
# "Healthcare: cautious. ..." line is about. Shorter ones ("BAD:", "Not X:") name no topic.
_LABEL = re.compile(r"^(?:- )?([^.:;!?\n]{8,60}):(?:\s|$)")


def topic_label(text: str) -> str:
    """The label a passage's first line opens with, or "" when it opens with none."""
    match = _LABEL.match(text.strip())
    return match.group(1).strip() if match else ""


def suggest(hits, limit: int = MAX_SUGGESTIONS) -> list[str]:
    """The headings nearest a question the documents do not answer, once each: the section of each closest
    passage (a question heading as it stands, "Do AI PMs need to understand ML models?"); when the passage
    has no heading of its own (or only a table's header row), the label its first line opens with (a table
    row's "Salary 2026 (US senior)"), else its document's title."""
    out: list[str] = []
    for hit in hits:
        chunk = hit.chunk
        section = chunk.section.split(" › ")[-1] if chunk.section and chunk.section != chunk.doc_title else ""
        heading = section if len(section) > 3 and " / " not in section \
            else topic_label(chunk.text) or chunk.doc_title
        if heading not in out:
            out.append(heading)
        if len(out) >= limit:
            break
    return out


def _join(sentences: list[str]) -> str:
    """Sentences as one line of prose for the short answer; list items ("- x") read "intro: x; y; z"."""
    text = ""
    for sentence in sentences:
        if sentence.startswith("- "):
            item = sentence[2:].strip()
            text = f"{text} {item}" if not text or text.endswith(":") else f"{text.rstrip('.')}; {item}"
        else:
            text = f"{text} {sentence}" if text else sentence
    return text.strip()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _lines(text: str) -> list[list[int]]:
    """The passage's sentences (as `split_sentences` numbers them) grouped by the line they stand on: a
    line ("Healthcare: cautious. AI PM and ML PM both valued; ...") is one thought of its document."""
    units, k = [], 0
    for line in text.split("\n"):
        n = len(split_sentences(line))
        if n:
            units.append(list(range(k, k + n)))
            k += n
    return units


def _quote(sentences: list[str], lo: int, hi: int, limit: int) -> str:
    """The sentences that answer (lo..hi), widened with neighbours while the quote stays short enough."""
    while True:
        grown = False
        for candidate in (hi + 1, lo - 1):
            if 0 <= candidate < len(sentences):
                a, b = min(lo, candidate), max(hi, candidate)
                if len(" ".join(sentences[a:b + 1])) <= limit:
                    lo, hi, grown = a, b, True
                    break
        if not grown:
            break
    text = _clip(" ".join(sentences[lo:hi + 1]), limit)  # verbatim: a quote is the passage's own words
    prefix = "… " if lo > 0 else ""
    suffix = " …" if hi < len(sentences) - 1 else ""
    return f"{prefix}{text}{suffix}"


def _list_answer(sentences: list[str], best: int) -> tuple[int, int, str]:
    """A list intro ("the loop includes:") carries its items; an item carries its intro."""
    text = sentences[best]
    if text.endswith(":") and best + 1 < len(sentences):
        items = []
        for following in sentences[best + 1:]:
            if not following.startswith("- ") and items:
                break
            items.append(following)
            if len(_join([text, *items])) > MAX_ANSWER_SENTENCE_CHARS or not following.startswith("- "):
                break
        return best, best + len(items), _join([text, *items])
    if text.startswith("- ") and best > 0:
        at = next((i for i in range(best - 1, -1, -1) if not sentences[i].startswith("- ")), None)
        if at is not None:
            return at, best, f"{sentences[at].rstrip(':')}: {text[2:].strip()}"
        return best, best, text[2:].strip()
    return best, best, text


def answer_span(sentences: list[str], text: str, sims: np.ndarray, before: str = "",
                lead: bool = True, within: np.ndarray | None = None) -> tuple[int, int, str]:
    """The words of a passage that answer: the line holding its sentence closest to the question, made to
    stand alone. Returns the first and last sentence used and the text.

    A line that leans on the one before ("This shows ...", "But Y: ...") brings it along, or, at the top of
    the passage, the passage's predecessor `before`; a line too long to read in a chat gives its closest
    sentence, with its neighbour when that sentence is a fragment or leans on it. A list's intro carries its
    items. Quotes stay verbatim: only whole sentences of the passage are used. A further sentence (not the
    `lead`) that cannot be made to stand alone comes back empty: it is left out. A line cut to one sentence
    is cut to its best by `within` (each sentence's own words counted, `sentence_scores(cut=True)`) when given.
    """
    best = int(np.argmax(sims)) if len(sims) else 0
    if not sentences:
        return 0, 0, ""
    if sentences[best].startswith("- ") or (sentences[best].endswith(":") and best + 1 < len(sentences)
                                             and sentences[best + 1].startswith("- ")):
        lo, hi, out = _list_answer(sentences, best)
        return lo, hi, _clip(out, MAX_ANSWER_SENTENCE_CHARS)
    units = _lines(text)
    unit = next((u for u in units if best in u), [best])
    lo, hi = unit[0], unit[-1]
    if len(" ".join(sentences[lo:hi + 1])) > MAX_ANSWER_SENTENCE_CHARS:
        lo = hi = best = unit[int(np.argmax(within[unit]))] if within is not None else best
        if (len(sentences[best]) < 60 or sentences[best].endswith(":")) and best + 1 <= unit[-1]:
            hi = best + 1
    if _dangling_intro(sentences, units, lo, hi):
        hi -= 1  # "Owns data products ... offerings. Day-to-day:" before a line that is not its list: left off
    elif (sentences[hi].endswith(":") or len(" ".join(sentences[lo:hi + 1])) < MIN_STANDALONE_CHARS) \
            and hi + 1 < len(sentences):
        hi += 1  # "Day-to-day:" says nothing until what follows it
    while hi > lo and sentences[hi].endswith(":") and hi + 1 == len(sentences):
        hi -= 1  # ... and when nothing follows it in the passage, it introduces nothing: left off the end
    if not lead and sentences[hi].endswith(":") and hi + 1 == len(sentences):
        return lo, hi, ""  # a further sentence that only introduces what the passage does not hold
    start = lo
    while leans_on_previous(sentences[lo]) and lo > 0:
        # bring what it leans on: the line before, whole, since a line is one thought ("AI Research PM: owns
        # ... Requires technical depth ..." before "These roles aren't mainstream yet ..."), or its last sentence
        line = next((u for u in units if u[-1] == lo - 1), None)
        whole = line is not None and len(" ".join(sentences[line[0]:hi + 1])) <= MAX_LEANING_CHARS
        lo = line[0] if whole else lo - 1
    out = " ".join(sentences[lo:hi + 1])
    if lo < start and len(out) > MAX_LEANING_CHARS:
        if not lead:
            return lo, hi, ""  # too long to read with what it leans on: a further sentence is left out
        # "ML PMs live in the feedback loop ... … They decide if a 0.5% improvement is worth the compute cost."
        out = f"{sentences[lo]} … {' '.join(sentences[start:hi + 1])}"
    if leans_on_previous(out) and before and not leans_on_previous(before) \
            and len(before) + len(out) < MAX_LEANING_CHARS:
        out = f"{before} {out}"  # what it leans on, if that stands alone ("They ..." before "Not X: ..." does not)
    if leans_on_previous(out) and not lead:
        return lo, hi, ""  # nothing to lean on: left out rather than shown meaning nothing
    if out == " ".join(sentences[lo:hi + 1]):
        hi = _with_commentary(sentences, units, lo, hi)
        out = " ".join(sentences[lo:hi + 1])
    return lo, hi, _clip(out, MAX_LEANING_CHARS)


def _dangling_intro(sentences: list[str], units: list[list[int]], lo: int, hi: int) -> bool:
    """Whether the words that answer end, after a sentence of their own, in an intro ("Day-to-day:") that closes
    its line and is followed by a line that is not its list: what it introduced is not in the passage (a line
    that is only an intro, "Some skills are specific:", still reads on into the line after it)."""
    if not (lo < hi and sentences[hi].endswith(":") and hi + 1 < len(sentences)):
        return False
    closes_line = any(u[-1] == hi for u in units)
    return closes_line and not sentences[hi + 1].startswith("- ")


def _with_commentary(sentences: list[str], units: list[list[int]], lo: int, hi: int) -> int:
    """The last sentence of the words that answer once the lines after them that lean on them come along:
    "BAD: A candidate said, “I'd improve the chatbot by adding more responses.”" is judged by the line after it
    ("This shows a feature-level mindset. Adding responses doesn't fix ..."), which means nothing alone and
    completes the line it follows; while the whole stays as short as a sentence read with what it leans on may
    run (MAX_LEANING_CHARS)."""
    while hi + 1 < len(sentences):
        unit = next((u for u in units if hi in u), [hi])
        # the rest of a line cut short goes on sentence by sentence ("... “own training data pipeline.”"
        # then "That's an ML PM, but ..."); after the line's end, by whole lines
        after = [hi + 1] if hi + 1 in unit else next((u for u in units if u[0] == hi + 1), None)
        if after is None or not leans_on_previous(sentences[after[0]]):
            return hi
        following = [sentences[i] for i in after]
        if any(s.startswith("- ") or s.endswith(":") for s in following) \
                or len(" ".join(sentences[lo:after[-1] + 1])) > MAX_LEANING_CHARS:
            return hi
        hi = after[-1]
    return hi


@dataclass(frozen=True)
class _Part:
    """One passage chosen for the answer: its hit, the words that answer and where they sit."""

    hit: Hit
    lo: int
    hi: int
    text: str
    vector: np.ndarray  # the closest sentence's vector, to tell a sentence that only repeats another
    line_score: float = 0.0  # how well its best line answers (`sentence_scores`' best)


LINE_LEXICAL = 0.2  # weight of the question's words in choosing a passage's line, as BM25's in the fusion


def _overlap(words: set[str], wanted: dict[str, float]) -> float:
    total = sum(wanted.values())
    return sum(wanted[t] for t in words if t in wanted) / total if total else 0.0


def sentence_scores(sentences: list[str], vectors: np.ndarray, question_vector: np.ndarray,
                    wanted: dict[str, float], lines: list[list[int]] | None = None,
                    mean: np.ndarray | None = None, centred_share: float = 0.0,
                    asked: tuple = (), phrase_weight: float = 0.0, cut: bool = False,
                    label_weight: float = 0.0) -> np.ndarray:
    """How well each sentence of a passage answers: its cosine with the question, plus the share of the
    question's content words its line uses, each weighed by its rarity (`wanted`: stem -> idf), and the share
    of the question's phrases it holds (`asked`, `retrieval.lexical.phrases`): the fusion's own blend, so that
    the line with the rare "Series" wins over one with the everywhere "PM" for "does a Series A startup hire
    ML PMs?", and "Practice system design ..." over "... a structured preparation system" for a system design
    prompt. A sentence that frames its document ("In this guide ...") comes last. With `cut`, a line too long
    for a chat, which is cut to its sentence that answers, has each sentence's own words counted instead. With
    `label_weight`, a line whose label names what the question names gains that much (`names_the_asked`)."""
    sims = vectors @ question_vector if len(vectors) else np.zeros(0)
    if mean is not None and len(sims):
        centred = centre(vectors, mean) @ centre(question_vector, mean)
        sims = (1 - centred_share) * sims + centred_share * centred
    if not len(sims):
        return sims
    sims = sims - FRAMING_PENALTY * np.array([frames_the_text(s) for s in sentences], dtype=float)
    if not wanted:
        return sims
    boost = np.zeros(len(sims))
    units = []
    for line in lines or [[i] for i in range(len(sims))]:
        units.extend([[i] for i in line] if cut and _too_long(sentences, line) else [line])
    for unit in units:
        tokens = [t for i in unit for t in tokenize(sentences[i])]
        boost[unit] = LINE_LEXICAL * _overlap(set(tokens), wanted)
        if phrase_weight:
            boost[unit] += phrase_weight * phrase_share(holds_phrases(tokens), asked, wanted)
    if label_weight:
        for line in lines or []:
            if names_the_asked(sentences[line[0]], wanted):
                boost[line] += label_weight
    return sims + boost


MIN_LABEL_WORDS = 3  # a label of fewer words ("Data PM", "ML PM") names a role that most lines are about


def names_the_asked(sentence: str, wanted: dict) -> bool:
    """Whether a line opens with a label ("AI Platform PM: ...") of three or more words, all of them the question's:
    the line says what the thing the question names is or does."""
    label = set(tokenize(topic_label(sentence)))
    return len(label) >= MIN_LABEL_WORDS and label <= set(wanted)


def _too_long(sentences: list[str], line: list[int]) -> bool:
    """Whether a line is too long for a chat's answer sentence, and so is cut to one of its sentences."""
    return len(" ".join(sentences[i] for i in line)) > MAX_ANSWER_SENTENCE_CHARS


@dataclass(frozen=True)
class _Asked:
    """What composing one answer needs: the search, the index, the question's words by rarity, the style."""

    result: SearchResult
    index: LoadedIndex
    wanted: dict[str, float]
    style: Style
    phrases: tuple = ()  # the question's phrases (pairs of stems side by side), for choosing a line
    scores: dict = field(default_factory=dict)  # (chunk row, cut) -> `sentence_scores`: a passage may be tried twice

    def sentence_scores(self, hit: Hit, cut: bool = False) -> np.ndarray:
        """How well each sentence of the hit's passage answers (computed once per passage); with `cut`, each
        sentence's own words counted where a line is too long for a chat (`sentence_scores(cut=True)`)."""
        sentences, lines = self.index.sentences[hit.position], _lines(hit.chunk.text)
        if cut and not any(_too_long(sentences, line) for line in lines):
            return self.sentence_scores(hit)  # no line to cut: the same scores, not computed again
        key = (hit.position, cut)
        if key not in self.scores:
            start, end = self.index.sentence_rows[hit.position]
            self.scores[key] = sentence_scores(
                sentences, self.index.vectors[start:end], self.result.query_vector, self.wanted, lines,
                self.result.corpus_mean, self.style.sentence_centred, self.phrases, self.style.line_phrase, cut=cut,
                label_weight=self.style.label_line)
        return self.scores[key]


def _part(hit: Hit, asked: _Asked, lead: bool = False) -> _Part:
    index = asked.index
    start, end = index.sentence_rows[hit.position]
    sentences = index.sentences[hit.position]
    sims = asked.sentence_scores(hit)
    previous = index.chunks[hit.position - 1] if hit.position > 0 else None
    before = ""
    if previous is not None and previous.doc_id == hit.chunk.doc_id and previous.section == hit.chunk.section:
        before = (index.sentences[hit.position - 1] or [""])[-1]
    lo, hi, text = answer_span(sentences, hit.chunk.text, sims, before, lead, asked.sentence_scores(hit, cut=True))
    best = int(np.argmax(sims)) if len(sims) else 0
    vector = index.vectors[start + best] if end > start else index.vectors[hit.position]
    return _Part(hit, lo, hi, text, vector, float(sims.max()) if len(sims) else 0.0)


def _adds(part: _Part, shown: list[_Part]) -> bool:
    """Whether a passage says something the shown ones do not."""
    return bool(part.text) and all(float(part.vector @ s.vector) < REDUNDANT and part.text not in s.text
                                   and s.text not in part.text for s in shown)


def _select(asked: _Asked) -> tuple[list[_Part], list[Hit]]:
    """The passages the short answer says something from, and further passages to cite.

    Of the passages scoring close to the best, the one whose own line answers best leads; a close one of
    the same document follows when it adds something; and the document that best answers apart from the
    lead's is heard when its best passage (among all candidates, not only the hits) is close enough, so
    that where two documents disagree both positions are shown.
    """
    found = asked.result.hits
    # a passage that only frames its document ("In this guide I compare ...") neither leads nor is cited below
    hits = [h for h in found if not _only_frames(asked, h)] or found
    top = hits[0].score
    lead = _part(hits[0], asked, lead=True)
    margin = asked.style.lead_margin
    rivals = [_part(h, asked, lead=True) for h in hits[1:3] if margin and h.score >= top - margin]
    # a close rival whose words stand alone leads before one that leans on what the reader was not shown
    lead = max([lead, *rivals], key=lambda p: (not leans_on_previous(p.text), p.hit.score + LEAD_LINE * p.line_score))
    parts = [lead]
    for hit in hits:
        if len(parts) >= asked.style.max_sentences - 1 or hit.score < top - SAME_SOURCE_MARGIN:
            break
        if hit.chunk.doc_id == lead.hit.chunk.doc_id and hit.position != lead.hit.position:
            part = _part(hit, asked)
            if _adds(part, parts):
                parts.append(part)
    other = _other_view(asked, lead)
    if other is not None:
        part = _part(other, asked)
        if _adds(part, parts) and part.line_score >= lead.line_score - asked.style.other_line_margin:
            parts.append(part)
    parts = parts[: asked.style.max_sentences]
    used = {p.hit.position for p in parts}
    room = MAX_CITED + (asked.style.extra_for_other if len({p.hit.chunk.doc_id for p in parts}) > 1 else 0)
    further = [h for h in hits if h.position not in used][: max(0, room - len(parts))]
    return parts, further


def _only_frames(asked: _Asked, hit: Hit) -> bool:
    """Whether every sentence of the hit's passage frames its document rather than saying something."""
    sentences = asked.index.sentences[hit.position]
    return bool(sentences) and all(frames_the_text(s) for s in sentences)


def _other_view(asked: _Asked, lead: _Part) -> Hit | None:
    """Another document's passage on the question, if another document answers closely enough: among the
    close candidates of other documents, the best by score with its words counted twice over (BM25's
    weight again), since a document's position on the point asked ("Salaries reflect the gap: ...")
    shares the question's words where its most similar passage may only share its role names."""
    result = asked.result
    top = result.hits[0].score
    close = [h for doc, hits in result.by_document.items() if doc != lead.hit.chunk.doc_id
             for h in hits if h.score >= top - asked.style.other_margin and not _only_frames(asked, h)]
    if not close:
        return None
    return max(close, key=lambda h: h.score + asked.style.other_lexical * h.lexical)


def compose(question: str, result: SearchResult, index: LoadedIndex, idf=None, style: Style = Style()) -> Answer:
    """Lead with the words that best answer, add a sentence only where it adds (another document's view,
    a close passage saying something else), attribute once per document, and cite every passage shown."""
    if not result.hits:
        return not_covered(question, sorted({c.doc_title for c in index.chunks}))
    tokens = tokenize(question)
    stems = sorted(set(tokens))
    wanted = dict(zip(stems, idf(stems) if idf is not None else np.ones(len(stems))))
    asked = _Asked(result, index, wanted, style, tuple(sorted(phrases(tokens))))
    parts, further = _select(asked)
    citations: list[Citation] = []
    sentences: list[AnswerSentence] = []
    for part in parts:
        number = len(citations) + 1
        chunk = part.hit.chunk
        citations.append(Citation(number=number, doc_id=chunk.doc_id, title=chunk.doc_title, section=chunk.section,
                                  quote=_quote(index.sentences[part.hit.position], part.lo, part.hi, MAX_QUOTE_CHARS),
                                  chunk_id=chunk.id))
        sentences.append(AnswerSentence(text=part.text, citation=number))
    for hit in further:
        chunk = hit.chunk
        sents = index.sentences[hit.position]
        scores = asked.sentence_scores(hit)  # the line that answers best, as the answer's own are chosen
        best = int(np.argmax(scores)) if len(scores) else 0
        citations.append(Citation(number=len(citations) + 1, doc_id=chunk.doc_id, title=chunk.doc_title,
                                  section=chunk.section, quote=_quote(sents, best, best, style.further_quote_chars),
                                  chunk_id=chunk.id))
    multi = len({c.doc_id for c in citations[: len(sentences)]}) > 1
    parts_text, labelled = [], set()
    for s in sentences:
        cite = citations[s.citation - 1]
        lead = ""
        if multi and cite.doc_id not in labelled:  # one attribution per document
            lead = f"“{short_title(cite.title)}”: "
            labelled.add(cite.doc_id)
        parts_text.append(f"{lead}{s.text} [{s.citation}]")
    text = " ".join(parts_text)
    if further:  # cited below without a sentence of their own: more of what was found, to read on
        text += " See also " + ", ".join(f"[{c.number}]" for c in citations[len(sentences):]) + "."
    return Answer(
        question=question, text=text, citations=tuple(citations),
        sentences=tuple(sentences), hits=tuple(result.hits),
    )


def short_title(title: str) -> str:
    """"AI PM vs ML PM: what the titles really mean" -> "AI PM vs ML PM", for attributions."""
    return title.split(":")[0].strip() if len(title) > 40 else title
