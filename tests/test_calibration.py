"""`advisor calibrate`: folds that keep each kind of question spread, and figures from questions held out of the fit."""

from __future__ import annotations

import contextlib
import json

import pytest

import bot.calibration as calibration
from bot.calibration import calibrate, cross_validate, folds_of
from retrieval.calibration import Calibration

KINDS = ["lookup"] * 7 + ["paraphrase"] * 5 + ["conflict"] * 3 + ["out_of_scope"] * 5


def labelled(kinds=KINDS) -> list[dict]:
    questions = {
        "lookup": "does a Series A startup hire ML PMs?", "paraphrase": "what does an ML PM do all day?",
        "conflict": "is ML PM or AI PM better pay?", "out_of_scope": "how long do I boil fresh pasta?",
    }
    evidence = {"lookup": ["True ML PMs emerge at Series B+"], "paraphrase": ["ML PM spends 30% of their time"],
                "conflict": ["AI PM pays slightly more on average"], "out_of_scope": []}
    return [{"id": f"q{i}", "kind": k, "question": f"{questions[k]} ({i})", "evidence": evidence[k]}
            for i, k in enumerate(kinds)]


def labelled_file(tmp_path):
    """The labelled questions as the JSONL file `advisor calibrate --questions` reads."""
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in labelled()))
    return path


def test_every_question_is_in_exactly_one_fold_and_each_kind_is_spread():
    gold = labelled()
    folds = folds_of(gold, 5)
    assert sorted(i for f in folds for i in f) == list(range(len(gold)))
    for kind in set(KINDS):
        per_fold = [sum(gold[i]["kind"] == kind for i in f) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1, (kind, per_fold)
    assert folds_of(gold, 5) == folds and folds_of(gold, 5, seed=1) != folds


def test_each_question_is_answered_by_a_calibration_fitted_without_it(fake_advisor, monkeypatch):
    gold = labelled()
    fitted_on: list[set[str]] = []
    answered_by: dict[str, int] = {}
    fit = calibration.fit_calibration
    answer_all = calibration.answer_all

    fitting = []

    def recording_fit(advisor, items, grown=None):
        fitted_on.append({g["id"] for g in items})
        fitting.append(True)
        try:
            return fit(advisor, items, grown)
        finally:
            fitting.pop()

    def recording_answer_all(advisor, items):
        if not fitting:  # the fit answers its own questions to choose a style: not a held-out answer
            for item in items:
                assert item["id"] not in answered_by, f"{item['id']} answered twice"
                answered_by[item["id"]] = len(fitted_on) - 1
        return answer_all(advisor, items)

    monkeypatch.setattr(calibration, "fit_calibration", recording_fit)
    monkeypatch.setattr(calibration, "answer_all", recording_answer_all)
    held_out = cross_validate(fake_advisor, gold, 4)
    figures, results = held_out.figures, held_out.results
    assert len(fitted_on) == 4 and sorted(answered_by) == sorted(g["id"] for g in gold)
    for qid, fit_number in answered_by.items():
        assert qid not in fitted_on[fit_number], f"{qid} was answered by a fit that saw it"
    assert [r["id"] for r in results] == [g["id"] for g in gold]
    assert {"hit@3", "answer_first", "oos_abstain"} <= set(figures)


def test_calibrate_saves_what_it_fitted_and_reports_both_figures(fake_advisor, tmp_path):
    questions = labelled_file(tmp_path)
    out = tmp_path / "calibration.json"
    before = fake_advisor.engine.abstainer
    report = calibrate(fake_advisor, questions, out=out, folds=3)
    assert {"cross-validated", "in-sample"} <= set(report)
    saved = Calibration.read(out)
    assert saved.abstainer == fake_advisor.engine.abstainer != before  # in use from now on
    assert saved.ranker == fake_advisor.engine.retriever.ranker
    assert saved.style == fake_advisor.engine.style
    assert saved.model == fake_advisor.engine.embedder.name
    assert "cross-validated" not in calibrate(fake_advisor, questions, out=out)


@pytest.mark.parametrize("folds", ["1", "-2"])
def test_one_fold_is_refused_with_what_to_pass(folds, capsys, fake_model, tmp_path):
    from bot.cli.entry import main

    code = main(["calibrate", "--questions", str(tmp_path / "x.jsonl"), "--folds", folds])
    assert code == 2
    assert "--folds must be 0" in capsys.readouterr().err


def test_the_command_saves_into_the_data_folder_for_its_model_not_the_package(fake_model, tmp_path, corpus_dir):
    from bot.cli.entry import main
    from retrieval.calibration import SHIPPED_FILE, calibration_file

    shipped = SHIPPED_FILE.read_bytes()
    questions = labelled_file(tmp_path)
    data = tmp_path / "data"
    assert main(["calibrate", "--questions", str(questions), "--data-dir", str(data),
                 "--corpus", str(corpus_dir)]) == 0
    saved = calibration_file(data, "fake:hashing")
    assert Calibration.read(saved).model == "fake:hashing"
    assert SHIPPED_FILE.read_bytes() == shipped
    assert Calibration.for_model("fake:hashing", data) == Calibration.read(saved)  # used from then on


def test_the_ranker_is_chosen_on_the_answers_on_both_corpora(fake_advisor, monkeypatch):
    from retrieval.ranking import Ranker

    plain, phrased = Ranker(weights={"dense": 1.0}), Ranker(weights={"dense": 1.0, "phrase": 0.2})
    monkeypatch.setattr(calibration, "candidate_rankers", lambda: [plain, phrased])
    grown = object()  # stands in for the grown corpus's advisor: `using` and the answers are stubbed
    answered = []

    @contextlib.contextmanager
    def using(advisor, fitted):
        answered.append((advisor, fitted.ranker))
        yield

    def figures(results, items):  # the phrases help only on the grown corpus, where the distractors are
        advisor, ranker = answered[-1]
        first = 0.7 if advisor is grown and ranker is phrased else 0.5
        return {"answer_first": first, "answer_shows_evidence": 0.8, "conflict_shows_both": "1/2",
                "shown_chars_median": 1500 if advisor is grown else 900}

    monkeypatch.setattr(calibration, "using", using)
    monkeypatch.setattr(calibration, "answer_all", lambda advisor, items: [])
    monkeypatch.setattr(calibration, "score", figures)
    items = labelled()
    assert calibration.choose_ranker(fake_advisor, items) is plain  # a tie keeps the plainest
    assert calibration.choose_ranker(fake_advisor, items, grown) is phrased  # longer there, yet still counted
    assert {a for a, _ in answered} == {fake_advisor, grown}


def test_grow_corpus_copies_both_folders_and_keeps_the_copy_in_step(tmp_path):
    from bot.grown_corpus import grow_corpus

    corpus, added, target = tmp_path / "corpus", tmp_path / "added", tmp_path / "grown"
    corpus.mkdir(), added.mkdir()
    (corpus / "a.txt").write_text("founding")
    (added / "b.md").write_text("# added")
    grow_corpus(corpus, added, target)
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "b.md"]
    (added / "b.md").write_text("# added, edited")
    (added / "c.md").write_text("# new")
    (corpus / "a.txt").rename(corpus / "renamed.txt")
    grow_corpus(corpus, added, target)
    assert sorted(p.name for p in target.iterdir()) == ["b.md", "c.md", "renamed.txt"]
    assert (target / "b.md").read_text() == "# added, edited"
    stamp = (target / "b.md").stat().st_mtime_ns
    (added / "b.md").touch()
    grow_corpus(corpus, added, target)
    assert (target / "b.md").stat().st_mtime_ns == stamp  # an unchanged file is not copied again
    (added / "team").mkdir()
    (added / "team" / "notes.md").write_text("# notes")
    grow_corpus(corpus, added, target)
    assert (target / "team" / "notes.md").read_text() == "# notes"  # subfolders, as the corpus is read


def test_a_file_in_both_folders_is_refused_rather_than_one_hiding_the_other(tmp_path):
    from bot.grown_corpus import CorpusClash, grow_corpus

    corpus, added = tmp_path / "corpus", tmp_path / "added"
    corpus.mkdir(), added.mkdir()
    (corpus / "guide.md").write_text("# founding")
    (added / "guide.md").write_text("# a team's own")
    with pytest.raises(CorpusClash, match="rename one"):
        grow_corpus(corpus, added, tmp_path / "grown")


def test_the_command_calibrates_on_a_grown_corpus_and_reports_its_figures(fake_model, tmp_path, corpus_dir, capsys):
    from bot.cli.entry import main

    questions = labelled_file(tmp_path)
    added = tmp_path / "added"
    added.mkdir()
    (added / "negotiation.md").write_text("# Negotiating a PM offer\n\nAsk for the band before you name a number.\n")
    data = tmp_path / "data"
    assert main(["calibrate", "--questions", str(questions), "--data-dir", str(data), "--corpus", str(corpus_dir),
                 "--grown-with", str(added), "--folds", "2"]) == 0
    out = capsys.readouterr().out
    assert "cross-validated, grown corpus:" in out and "in-sample, grown corpus:" in out and "phrase weight" in out
    grown = data / "calibration-grown" / "corpus"
    assert sorted(p.name for p in grown.iterdir()) == sorted([*(p.name for p in corpus_dir.iterdir()), "negotiation.md"])


def test_a_missing_grown_folder_is_refused_with_what_to_pass(fake_model, tmp_path, corpus_dir, capsys):
    from bot.cli.entry import main

    questions = labelled_file(tmp_path)
    code = main(["calibrate", "--questions", str(questions), "--data-dir", str(tmp_path / "data"),
                 "--corpus", str(corpus_dir), "--grown-with", str(tmp_path / "nowhere")])
    assert code == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "notes.md").write_text("# a file, not a folder")
    code = main(["calibrate", "--questions", str(questions), "--data-dir", str(tmp_path / "data"),
                 "--corpus", str(corpus_dir), "--grown-with", str(tmp_path / "notes.md")])
    assert code == 2
    assert "not a folder" in capsys.readouterr().err
