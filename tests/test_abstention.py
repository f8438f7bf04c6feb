"""Abstention: the calibrated logistic score and the floor on how close the best passage must be."""

from __future__ import annotations

import json

import pytest

from bot.calibration import CENTRED_WEIGHTS, PHRASE_WEIGHTS
from retrieval.abstention import Abstainer, fit
from retrieval.calibration import SHIPPED_FILE, Calibration, calibration_file
from retrieval.ranking import FEATURES, Ranker


def row(dense, fused, coverage=0.8, names=0.0):
    return {"top_dense": dense, "top_fused": fused, "coverage": coverage, "unknown_names": names}


ANSWERABLE = [row(0.32, 0.47), row(0.45, 0.6), row(0.6, 0.75), row(0.7, 0.85), row(0.5, 0.62, 0.4),
              row(0.55, 0.7, names=1.0), row(0.8, 0.95), row(0.4, 0.55)]
OUT_OF_SCOPE = [row(0.19, 0.3), row(0.23, 0.21, 0.0), row(0.5, 0.58, names=1.0), row(0.48, 0.5, 0.25, 1.0)]


def fitted() -> Abstainer:
    return fit(ANSWERABLE + OUT_OF_SCOPE, [1] * len(ANSWERABLE) + [0] * len(OUT_OF_SCOPE))


def test_the_floor_lies_between_the_least_similar_answerable_and_the_out_of_scope_below_it():
    abstainer = fitted()
    assert abstainer.min_dense == pytest.approx((0.23 + 0.32) / 2, abs=1e-4)
    assert not any(abstainer.refuses(r) for r in ANSWERABLE)
    assert all(abstainer.refuses(r) for r in OUT_OF_SCOPE)


def test_a_question_no_passage_is_about_is_refused_even_when_its_words_are_common():
    """Common words and no unknown names (\"the best time of year to buy a used car\") must not be enough."""
    abstainer = fitted()
    weak = row(0.2, 0.5, coverage=1.0)
    assert abstainer.refuses(weak)
    assert not abstainer.refuses({**weak, "top_dense": 0.4})


def test_no_floor_without_out_of_scope_questions_below_the_answerable_ones():
    abstainer = fit(ANSWERABLE + [row(0.5, 0.3, names=2.0)], [1] * len(ANSWERABLE) + [0])
    assert abstainer.min_dense == 0.0


def test_a_calibration_saved_before_the_floor_existed_still_loads(tmp_path):
    old = tmp_path / "calibration.json"
    old.write_text(json.dumps({"weights": {"top_fused": 7.0}, "bias": -2.4, "threshold": 0.5}))
    calibration = Calibration.read(old)
    assert calibration.abstainer.min_dense == 0.0 and not calibration.abstainer.refuses(row(0.1, 0.9))
    assert calibration.ranker == Ranker.default()


def test_the_shipped_calibration_has_a_floor_and_a_chosen_ranker():
    calibration = Calibration.for_model("all-MiniLM-L6-v2")
    assert calibration.model == "all-MiniLM-L6-v2"
    assert 0.1 < calibration.abstainer.min_dense < 0.4
    assert calibration.ranker.weights.get("centred") in CENTRED_WEIGHTS
    # fitted with every signal the ranker has: a signal missing from the saved weights would count for nothing
    assert set(calibration.ranker.weights) == set(FEATURES)
    assert calibration.ranker.weights["phrase"] in PHRASE_WEIGHTS


def test_a_broken_calibration_of_the_data_folder_falls_back_to_the_shipped_one_and_says_so(tmp_path, caplog):
    broken = calibration_file(tmp_path, "all-MiniLM-L6-v2")
    broken.parent.mkdir()
    broken.write_text("{not json")
    assert Calibration.for_model("all-MiniLM-L6-v2", tmp_path) == Calibration.read(SHIPPED_FILE)
    assert "advisor calibrate" in caplog.text


def test_a_model_without_a_calibration_of_its_own_gets_the_safe_default_and_says_so_once(
        tmp_path, caplog, corpus_dir, fake_embedder):
    from retrieval.engine import Engine

    calibration = Calibration.for_model(fake_embedder.name, tmp_path)
    assert calibration.ranker == Ranker.default() and calibration.abstainer == Abstainer.uncalibrated()
    assert calibration.fallback
    engine = Engine(corpus_dir, tmp_path / "index", fake_embedder, calibration=calibration)
    engine.answer("does a Series A startup hire ML PMs?")
    engine.answer("what does an ML PM do?")
    assert caplog.text.count(f"No calibration for the model {fake_embedder.name}") == 1


def test_a_calibration_fitted_in_the_data_folder_wins_for_its_model_only(tmp_path):
    mine = Calibration(ranker=Ranker(weights={"dense": 1.0}), abstainer=Abstainer(weights={}, bias=0.0,
                       threshold=0.4), model="all-mpnet-base-v2")
    mine.save(calibration_file(tmp_path, "all-mpnet-base-v2"))
    assert Calibration.for_model("all-mpnet-base-v2", tmp_path) == mine
    assert Calibration.for_model("all-MiniLM-L6-v2", tmp_path).model == "all-MiniLM-L6-v2"


def test_a_calibration_round_trips(tmp_path):
    saved = Calibration(ranker=Ranker(weights={"dense": 0.5, "centred": 0.2}),
                        abstainer=Abstainer(weights={"top_dense": 3.0}, bias=-1.0, threshold=0.6, min_dense=0.2),
                        model="m")
    saved.save(tmp_path / "c.json")
    assert Calibration.read(tmp_path / "c.json") == saved
