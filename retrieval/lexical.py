"""The lexical signal: BM25 (bm25s) over stemmed words, and the corpus vocabulary for coverage checks."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

_ACRONYM_PLURAL = re.compile(r"\b([A-Z]{2,})s\b")
# The domain's own abbreviation: documents write "PM" and people ask about "product managers" (or "product
# management", "product mgmt"); spelled out, the words are rare in the documents, so BM25 would rank the one
# passage that spells them out ("... data product manager roles ...") above every passage about PMs.
_PRODUCT_MANAGER = re.compile(r"\bproduct[ -](?:manag(?:ers?|ement)|mgmt)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9][a-z0-9+$%]*(?:[-'][a-z0-9+$%]+)*")

# Question words and chat filler carry no topic; BM25 and coverage ignore them.
STOPWORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
few for from further had hadn't has hasn't have haven't having he her here hers herself him himself his how
i i'm if in into is isn't it it's its itself just let's me more most my myself no nor not of off on once only
or other ought our ours ourselves out over same she should shouldn't so some such than that that's the
their theirs them themselves then there there's these they they're this those through to too under until up
very was wasn't we we're were weren't what what's when where which while who whom why will with won't would
wouldn't you you're your yours yourself yourselves
actually really kind sort like gonna wanna rn u ur pls please thanks hey hi quick q im ive id
also even much many get got go going want need know think tell say said make way thing things lot
""".split())

# Career vocabulary that people and documents spell differently; a query word brings its kin into BM25.
SYNONYMS = [
    {"pay", "salary", "salaries", "compensation", "tc", "earn", "paid", "pays", "money", "earnings", "wage", "wages"},
    {"job", "role", "position", "gig", "posting"},
    {"title", "name", "titles"},
    {"interview", "loop", "rounds"},
    {"older", "established", "emerged", "existed"},
    {"switch", "transition", "move", "pivot"},
    {"junior", "entry-level", "entry"},
    {"senior", "experienced"},
    {"company", "companies", "employer"},
    {"bias", "unfair", "unfairly", "fairness", "skew"},
]

logger = logging.getLogger(__name__)
_local = threading.local()  # a PyStemmer instance "must not be called concurrently": one per thread


def _stem(words: list[str]) -> list[str]:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer.stemWords(words)


def words(text: str) -> list[str]:
    """Lower-cased words of a text, stopwords removed, unstemmed; a hyphenated word also gives its parts
    ("pm-specific" -> "pm-specific", "pm", "specific"), so "skills specific to ML PM" finds "ML PM-specific:"."""
    out = []
    text = _PRODUCT_MANAGER.sub("PM", text)
    text = _ACRONYM_PLURAL.sub(r"\1", text)  # "PMs", "LLMs", "KPIs": the stemmer knows no acronyms
    for w in _WORD.findall(text.lower().replace("’", "'")):
        parts = w.split("-") if "-" in w else []
        out.extend(x for x in (w, *parts) if x not in STOPWORDS and len(x) > 1)
    return out


_PM = re.compile(r"\bPMs?\b")
PM_SAMPLE = 2000  # passages read, evenly spaced, to tell how a corpus writes the role
# The role spelled out, or as chat says it ("a product person", "product folks"), one (PM) or many (PMs): for the
# embedded question only; BM25's tokens follow the narrower _PRODUCT_MANAGER (bound to TOKENIZER_VERSION)
_ROLE_SPELLED_OUT = re.compile(
    r"\bproduct[ -](?:(?P<one>manager|person|folk|management|mgmt)|managers|people|folks|ppl)\b", re.IGNORECASE)


def in_pm_words(text: str) -> str:
    """The text with the role spelled out ("product managers", "product management", "a product person") written
    "PM" or "PMs", as documents that abbreviate it write it."""
    return _ROLE_SPELLED_OUT.sub(lambda m: "PM" if m.group("one") else "PMs", text)


def writes_pm(texts: Sequence[str], sample: int = PM_SAMPLE) -> bool:
    """Whether a corpus writes the role "PM" more often than it spells it out (from up to `sample` passages)."""
    step = max(1, len(texts) // sample)
    read = texts[::step]
    return sum(len(_PM.findall(t)) for t in read) > sum(len(_PRODUCT_MANAGER.findall(t)) for t in read)


def tokenize(text: str) -> list[str]:
    """Stemmed content words: what BM25 indexes and queries with."""
    return _stem(words(text))


@functools.cache
def _synonym_stems() -> dict[str, frozenset[str]]:
    """Each stemmed career word and its kin, built whole before any thread can see it."""
    kin: dict[str, set[str]] = {}
    for group in SYNONYMS:
        stems = set(_stem(sorted(group)))
        for stem in stems:
            kin.setdefault(stem, set()).update(stems)
    return {stem: frozenset(group) for stem, group in kin.items()}


def expand(tokens: list[str]) -> list[str]:
    """The query's stemmed words plus their synonyms (each synonym once)."""
    synonyms = _synonym_stems()
    extra = {s for t in tokens for s in synonyms.get(t, ())} - set(tokens)
    return tokens + sorted(extra)


def phrases(tokens: Sequence[str]) -> set[tuple[str, str]]:
    """A question's phrases: each two of its words that stand next to each other (stopwords aside)."""
    return {(a, b) for a, b in zip(tokens, tokens[1:]) if a != b}


def holds_phrases(tokens: Sequence[str]) -> set[tuple[str, str]]:
    """The word pairs a text holds in order, next to each other or with one word between: "practice ML
    system design" holds the phrase "system design" of a question and also "practice system"."""
    return set(zip(tokens, tokens[1:])) | set(zip(tokens, tokens[2:]))


def phrase_share(held: set | frozenset, asked: Sequence[tuple[str, str]], rarity: dict[str, float]) -> float:
    """The share of the question's phrases (`asked`) a text holds (`held`, `holds_phrases`), each phrase
    weighed by the rarity of its two words (stem -> idf)."""
    if not asked:
        return 0.0
    weights = [rarity.get(a, 1.0) + rarity.get(b, 1.0) for a, b in asked]
    return sum(w for pair, w in zip(asked, weights) if pair in held) / sum(weights)


@functools.lru_cache(maxsize=4096)  # a passage comes back as a candidate often: ~7 ms a question uncached
def _held_phrases(text: str) -> frozenset[tuple[str, str]]:
    return frozenset(holds_phrases(tokenize(text)))


# Bump when `tokenize` (stopwords, splitting, stemming) or `expand`'s synonyms give other tokens: a saved BM25
# index records it and is rebuilt for another. A test pins the tokens of the shipped corpus per version, so a
# change that alters them fails until this is bumped; an edit that alters none (a comment) costs no rebuild.
TOKENIZER_VERSION = "2"


@functools.cache
def code_version() -> str:
    """The tokenizer's version and the bm25s version: a saved index made by other tokenising code is not reused."""
    from importlib.metadata import version  # the installed bm25s's, without importing it (and scipy)

    return f"{TOKENIZER_VERSION}:bm25s-{version('bm25s')}"


def texts_digest(texts: Sequence[str]) -> str:
    """Fingerprint of the texts an index was built from: a saved index is only reused for the same texts."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(len(texts)).encode())
    for text in texts:
        digest.update(b"\x00" + text.encode("utf-8"))
    return digest.hexdigest()


def _bm25_names(prefix: str) -> dict[str, str]:
    return {f"{part}_name": f"{prefix}{part}.{ext}" for part, ext in (
        ("data", "npy"), ("indices", "npy"), ("indptr", "npy"), ("vocab", "json"), ("params", "json"), ("nnoc", "npy"))}


class SavedScores:
    """A BM25 index saved by bm25s, read and scored with numpy alone, exactly as bm25s scores it.

    bm25s builds and saves the index; answering only sums rows of its matrix of precomputed scores, and
    `import bm25s` brings scipy with it (about 0.1 s of every start), so a loaded index does without it.
    """

    def __init__(self, folder: Path, prefix: str):
        names = _bm25_names(prefix)
        folder = Path(folder)
        params = json.loads((folder / names["params_name"]).read_text(encoding="utf-8"))
        self.vocab_dict: dict[str, int] = json.loads((folder / names["vocab_name"]).read_text(encoding="utf-8"))
        self.dtype, self.int_dtype = np.dtype(params["dtype"]), np.dtype(params["int_dtype"])
        self.scores = {part: np.load(folder / names[f"{part}_name"], allow_pickle=False)
                       for part in ("data", "indices", "indptr")}
        self.scores["num_docs"] = int(params["num_docs"])
        nnoc = folder / names["nnoc_name"]  # only BM25L and BM25+ write one
        self.nonoccurrence = np.load(nnoc, allow_pickle=False) if nnoc.exists() else None

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        """bm25s's `BM25.get_scores` (tokens the index lacks are left out), in the same order of additions."""
        ids = np.asarray([self.vocab_dict[t] for t in tokens if t in self.vocab_dict], dtype=self.int_dtype)
        data, indices, indptr = self.scores["data"], self.scores["indices"], self.scores["indptr"]
        scores = np.zeros(self.scores["num_docs"], dtype=self.dtype)
        for start, end in zip(indptr[ids], indptr[ids + 1]):
            np.add.at(scores, indices[start:end], data[start:end])
        if self.nonoccurrence is not None:
            scores += self.nonoccurrence[ids].sum()
        return scores


class LexicalIndex:
    """BM25 over chunk texts, scoring every chunk for a query."""

    def __init__(self, texts: Sequence[str]):
        import bm25s  # builds the index; a saved one is read without it (`SavedScores`)

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG

        tokens = [tokenize(t) or ["\u2205"] for t in texts]
        self.vocabulary = frozenset(t for doc in tokens for t in doc)
        self._bm25 = bm25s.BM25()
        self._bm25.index(tokens, show_progress=False)
        self.size = len(texts)
        self.digest = texts_digest(texts)
        self.code = code_version()

    def built_from(self, texts: Sequence[str]) -> bool:
        """Whether this index (say, one loaded from disk) scores exactly as one built from `texts` now would."""
        if self.size != len(texts) or self.digest != texts_digest(texts):
            return False
        if self.code != code_version():
            logger.info("The saved BM25 index was made by other tokenising code; rebuilding it in memory "
                        "(`advisor index` saves a new one).")
            return False
        return True

    def save(self, folder: Path, prefix: str = "bm25.") -> None:
        """Write the BM25 matrix and vocabulary (bm25s's own format) and what they were built from."""
        self._bm25.save(str(folder), show_progress=False, **_bm25_names(prefix))
        meta = {"size": self.size, "texts": self.digest, "code": self.code}
        (Path(folder) / f"{prefix}meta.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, prefix: str = "bm25.") -> "LexicalIndex":
        """Read an index written by `save`; it scores exactly as the one saved (without importing bm25s)."""
        meta = json.loads((Path(folder) / f"{prefix}meta.json").read_text(encoding="utf-8"))
        self = cls.__new__(cls)
        self._bm25 = SavedScores(folder, prefix)
        # bm25s adds an empty token to its vocabulary; ours never holds one (words are 2+ characters)
        self.vocabulary = frozenset(self._bm25.vocab_dict) - {""}
        self.size, self.digest, self.code = int(meta["size"]), str(meta["texts"]), str(meta["code"])
        return self

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for the query and its synonyms (zeros when no word is known)."""
        known = [t for t in expand(tokenize(query)) if t in self.vocabulary]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def idf(self, stems: Sequence[str]) -> np.ndarray:
        """How rare each stem is in the corpus (BM25's idf); a stem the corpus never uses is the rarest."""
        vocab = self._bm25.vocab_dict
        indptr = self._bm25.scores["indptr"]
        n = max(1, self.size)
        df = np.array([indptr[vocab[s] + 1] - indptr[vocab[s]] if s in vocab else 0 for s in stems], dtype=np.float64)
        return np.log(1 + (n - df + 0.5) / (df + 0.5))

    def phrase_matches(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """For each text, the share of the question's phrases it holds (`holds_phrases`), each phrase weighed by
        the rarity of its two words. BM25 counts a word wherever it stands, so a passage with "system" in one
        line and "design" in the next scores as one that says "system design"; this tells them apart."""
        asked = sorted(phrases(tokenize(query)))
        if not asked or not len(texts):
            return np.zeros(len(texts))
        stems = sorted({w for pair in asked for w in pair})
        rarity = dict(zip(stems, self.idf(stems)))
        return np.array([phrase_share(_held_phrases(text), asked, rarity) for text in texts])

    def unknown_names(self, query: str) -> int:
        """Capitalised words (names: "Stripe", "London") the corpus never uses; after the first word."""
        names = re.findall(r"(?<=\s)[A-Z][A-Za-z0-9]+", query)
        return sum(1 for n in names if (_stem([n.lower()]) or [""])[0] not in self.vocabulary)

    def coverage(self, query: str) -> float:
        """Share of the query's content words the corpus uses at all (1.0 for an empty query)."""
        terms = tokenize(query)
        if not terms:
            return 1.0
        return sum(t in self.vocabulary for t in terms) / len(terms)
