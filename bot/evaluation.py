"""`advisor eval`: answer a labelled question set, write what each user would see, and score it."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

from bot.core import Advisor
from retrieval.answer import leans_on_previous
from retrieval.errors import AdvisorError
from retrieval.vocabulary import Question

_TRANSLATE = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
    "\u2212": "-", "\u00a0": " ", "|": " ", "*": " ", "#": " ", "_": " ", "`": " ",
})


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").translate(_TRANSLATE).lower()
    return re.sub(r"\s+", " ", text).strip()


def contains(passage: str, evidence: str) -> bool:
    """Evidence matching as in shared/eval/score.py: exact after normalising, or 90% of its words in a window."""
    p, e = _normalise(passage), _normalise(evidence)
    if e and e in p:
        return True
    ew, pw = re.findall(r"[a-z0-9$%+.-]+", e), re.findall(r"[a-z0-9$%+.-]+", p)
    if not ew or len(pw) < len(ew) * 0.9:
        return False
    width = 2 * len(ew) + 2
    for start in range(0, max(1, len(pw) - len(ew) + 1)):
        pool: dict[str, int] = {}
        for w in pw[start:start + width]:
            pool[w] = pool.get(w, 0) + 1
        got = 0
        for w in ew:
            if pool.get(w, 0):
                pool[w] -= 1
                got += 1
        if got >= len(ew) * 0.9:
            return True
    return False


def short_answer_sentences(text: str) -> list[str]:
    """The short answer's cited sentences, each without the “Document”: label an attribution puts first."""
    parts = [p.strip() for p in re.split(r"\[\d+\]", text or "") if p.strip()]
    return [re.sub(r'^[“"][^”"]{1,120}[”"]:\s*', "", p) for p in parts]


def to_result(qid: str, answer) -> dict:
    """One results line: exactly the passages retrieved and the answer shown."""
    return {
        "id": qid,
        "abstained": answer.abstained,
        "hits": [{"text": h.chunk.text, "source": h.chunk.doc_id} for h in answer.hits],
        "answer": {
            "text": answer.text,
            "citations": [{"text": c.quote, "source": c.doc_id} for c in answer.citations],
        },
    }


def _sides(result: dict, evidence: list[str]) -> set[str]:
    """The documents whose cited passages show one of the evidence strings: both, when a conflict is shown."""
    return {c["source"] for c in result["answer"]["citations"] for e in evidence if contains(c["text"], e)}


def score(results: list[dict], gold: list[dict]) -> dict:
    """The figures of shared/eval/score.py (a conflict's sides read from the citations, not the source files)."""
    by_id = {r["id"]: r for r in results}
    answerable = [g for g in gold if g.get("kind") != "out_of_scope"]
    oos = [g for g in gold if g.get("kind") == "out_of_scope"]
    hits = {1: 0, 3: 0, 5: 0}
    shows = first = false_abstain = conflicts = conflicts_both = sentences = leaning = 0
    reciprocal = 0.0
    shown_sizes = []
    for g in answerable:
        r = by_id[g["id"]]
        passages = [h["text"] for h in r["hits"]]
        rank = next((i for i, p in enumerate(passages, 1) if any(contains(p, e) for e in g["evidence"])), None)
        for k in hits:
            hits[k] += bool(rank and rank <= k)
        reciprocal += 1 / rank if rank else 0.0
        shown = r["answer"]["text"] + "\n" + "\n".join(c["text"] for c in r["answer"]["citations"])
        false_abstain += r["abstained"]
        if not r["abstained"]:
            shows += any(contains(shown, e) for e in g["evidence"])
            shown_sizes.append(len(shown))
            # what a chat reader reads first: the short answer up to its first citation mark
            head = re.split(r"\[\d+\]", r["answer"]["text"], maxsplit=1)[0]
            first += any(contains(head, e) for e in g["evidence"])
            for sentence in short_answer_sentences(r["answer"]["text"]):
                sentences += 1
                leaning += leans_on_previous(sentence)
        if g.get("kind") == "conflict":
            conflicts += 1
            conflicts_both += not r["abstained"] and len(_sides(r, g["evidence"])) >= 2
    n = max(1, len(answerable))
    shown_sizes.sort()
    figures = {f"hit@{k}": round(v / n, 3) for k, v in hits.items()}
    figures.update({
        "mrr": round(reciprocal / n, 3),
        "answer_shows_evidence": round(shows / n, 3),
        "answer_first": round(first / n, 3),
        "leaning_sentences": round(leaning / max(1, sentences), 3),
        "false_abstain": round(false_abstain / n, 3),
        "oos_abstain": round(sum(by_id[g["id"]]["abstained"] for g in oos) / max(1, len(oos)), 3),
        "conflict_shows_both": f"{conflicts_both}/{conflicts}",
        "shown_chars_median": shown_sizes[len(shown_sizes) // 2] if shown_sizes else 0,
    })
    return figures


class QuestionsFileError(AdvisorError, ValueError):
    """The labelled questions file cannot be used; the message names the line."""


def load_questions(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QuestionsFileError(f"{path} does not exist; pass a JSONL file of questions with --questions") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionsFileError(f"{path} cannot be read ({exc.__class__.__name__}); pass a UTF-8 JSONL file") from None
    questions = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                item = json.loads(line)
            except ValueError:
                raise QuestionsFileError(f"{path} line {n} is not JSON; each line must be one JSON object") from None
            if not isinstance(item, dict) or not isinstance(item.get("question"), str) or "id" not in item:
                raise QuestionsFileError(f"{path} line {n} needs an \"id\" and a \"question\"")
            context = item.get("context")
            if context is not None and not (isinstance(context, list) and all(isinstance(c, str) for c in context)):
                raise QuestionsFileError(f"{path} line {n}: \"context\" must be a list of the thread's earlier "
                                         "questions (strings), oldest first")
            questions.append(item)
    return questions


def write_results(path: Path, results: list[dict]) -> None:
    """One JSON line per question: the results format of shared/eval/README.md."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results), encoding="utf-8")


def ask(advisor: Advisor, item: dict):
    """Ask a labelled question as a chat adapter would: after its thread's earlier questions, if any."""
    context = tuple(item.get("context") or ())  # load_questions checked it is a list of strings
    return advisor.answer(Question(text=item["question"], platform="eval", context=context))


def answer_all(advisor: Advisor, gold: list[dict]) -> list[dict]:
    """Every question's results line."""
    return [to_result(g["id"], ask(advisor, g)) for g in gold]


def run_eval(advisor: Advisor, questions_path: Path, out_path: Path) -> dict:
    """Answer every question, write the results file, return the figures."""
    gold = load_questions(questions_path)
    results = answer_all(advisor, gold)
    write_results(out_path, results)
    return score(results, gold) if all("kind" in g for g in gold) else {"questions": len(results)}
