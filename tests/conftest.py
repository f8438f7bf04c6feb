"""Shared fixtures: a clean environment, a fast advisor on a fake embedder, and the real model once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.core import Advisor
from retrieval.answer import Style
from retrieval.calibration import Calibration
from retrieval.engine import Engine
from tests.fakes import HashingEmbedder

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CORPUS = ROOT / "corpus"
SHARED_EVAL = ROOT.parent / "shared" / "eval"

_SECRET_PREFIXES = ("SLACK_", "DISCORD_", "ADVISOR_")


@pytest.fixture(autouse=True)
def clean_env(tmp_path_factory, monkeypatch):
    """No real tokens or user settings leak into a test; data goes to a temp folder."""
    for name in list(os.environ):
        if name.startswith(_SECRET_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path_factory.mktemp("advisor-data")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    """A writable copy of the shipped corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(SHIPPED_CORPUS, target)
    return target


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def fake_model(monkeypatch) -> list[HashingEmbedder]:
    """`advisor` commands run in-process with the fast fake embedder; the list holds every embedder made."""
    import bot.core

    embedders: list[HashingEmbedder] = []

    def make(model=None):
        embedders.append(HashingEmbedder())
        return embedders[-1]

    monkeypatch.setattr(bot.core, "SentenceTransformerEmbedder", make)
    return embedders


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """An index and store folder that does not exist yet."""
    return tmp_path / "data"


@pytest.fixture
def fake_advisor(corpus_dir, tmp_path, fake_embedder) -> Advisor:
    """An advisor over the shipped corpus with the fast fake embedder (index built on first use)."""
    # its own calibration: the default ranking and a permissive abstainer, not MiniLM's fitted thresholds, and
    # up to three sentences from three passages, which the tests of generated answers count on
    calibration = Calibration(model=fake_embedder.name, style=Style(max_sentences=3, extra_for_other=0))
    advisor = Advisor(Engine(corpus_dir, tmp_path / "index", fake_embedder, calibration=calibration))
    advisor.prepare()
    return advisor


@pytest.fixture(scope="session")
def real_embedder():
    """The real all-MiniLM-L6-v2 model, loaded once for the whole session."""
    from retrieval.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])
    return embedder


@pytest.fixture(scope="session")
def real_advisor(real_embedder, tmp_path_factory) -> Advisor:
    """An advisor over the shipped corpus with the real model and real FAISS index (built once)."""
    advisor = Advisor(Engine(SHIPPED_CORPUS, tmp_path_factory.mktemp("real-index"), real_embedder))
    advisor.prepare()
    return advisor
