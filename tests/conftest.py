"""Shared fixtures: a clean environment, a fast advisor on a fake embedder, and the real model once per session."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.core import Advisor
from bot.variables import BY_NAME
from retrieval.answer import Style
from retrieval.calibration import Calibration
from retrieval.engine import Engine
from retrieval.fake_embedder import NAME as FAKE_MODEL, HashingEmbedder

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CORPUS = ROOT / "corpus"
SHARED_EVAL = ROOT.parent / "shared" / "eval"

_SECRET_PREFIXES = ("SLACK_", "DISCORD_", "ADVISOR_")
# a PostgreSQL server the tests may use (.ci/run sets it); read now, before clean_env clears ADVISOR_*
TEST_DATABASE_URL = os.environ.get("ADVISOR_TEST_DATABASE_URL", "").strip()


@pytest.fixture(autouse=True)
def clean_env(tmp_path_factory, monkeypatch):
    """No real tokens or user settings leak into a test; data goes to a temp folder."""
    for name in list(os.environ):
        if name.startswith(_SECRET_PREFIXES) or name in BY_NAME:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path_factory.mktemp("advisor-data")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
    # a command run in-process left its log handler on the root logger, writing to this test's captured
    # stderr, which is closed now: the next test's log lines would fail there
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_advisor", False)]:
        root.removeHandler(handler)


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
    """`advisor` commands run in-process with ADVISOR_MODEL=fake:hashing; the list holds every embedder made."""
    from retrieval import embedding

    embedders: list[HashingEmbedder] = []
    make = embedding.NAMED_MODELS[FAKE_MODEL]

    def recording():
        embedders.append(make())
        return embedders[-1]

    monkeypatch.setitem(embedding.NAMED_MODELS, FAKE_MODEL, recording)
    monkeypatch.setenv("ADVISOR_MODEL", FAKE_MODEL)
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


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session: ADVISOR_TEST_DATABASE_URL, else a throwaway one on 127.0.0.1 started
    here (and stopped after) when the server binaries are installed; else the test is skipped (failed under CI)."""
    if TEST_DATABASE_URL:
        yield TEST_DATABASE_URL
        return
    from tests import pg_server

    if pg_server.binaries() is None:
        message = "PostgreSQL server binaries not installed (apt-get install postgresql), no ADVISOR_TEST_DATABASE_URL"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    url, folder = pg_server.start()
    try:
        yield url
    finally:
        pg_server.stop(folder)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of a new, empty database on the session's server, dropped after the test."""
    import psycopg

    name = f"advisor_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield urlunsplit(urlsplit(postgres_server)._replace(path=f"/{name}"))
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request, tmp_path):
    """Opens the store under test, SQLite or PostgreSQL (the same place each call: reopening sees the same data).

    Call it as `open_store(salt=..., hash_user_ids=...)`; every store it opened is closed after the test.
    """
    if request.param == "postgres":
        from bot.store.postgres import PostgresStore

        url = request.getfixturevalue("postgres_url")

        def make(**kwargs):
            return PostgresStore(url, **kwargs)
    else:
        from bot.store import Store

        def make(**kwargs):
            return Store(tmp_path / "data" / "advisor.sqlite3", **kwargs)

    opened = []

    def opener(**kwargs):
        opened.append(make(**kwargs))
        return opened[-1]

    opener.kind = request.param
    yield opener
    for store in opened:
        try:
            store.close()
        except Exception:  # noqa: BLE001 - a test may have closed it already
            pass
