"""Helpers more than one test module uses: recorded payloads, documents, free ports and `advisor` on the fake model."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import sys
from pathlib import Path

import discord
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from bot.core import Advisor
from retrieval.fake_embedder import NAME as FAKE_MODEL

FIXTURES = Path(__file__).parent / "fixtures"
DOCUMENTS = FIXTURES / "documents"
SLACK_FIXTURES = FIXTURES / "slack"
DISCORD_FIXTURES = FIXTURES / "discord"

# `advisor ARGS` as a subprocess; with `fake_model_env` it runs on the fake embedder, selected by name
ADVISOR = [sys.executable, "-m", "bot.cli"]


def fake_model_env(**settings: str) -> dict:
    """This process's environment without any SLACK_/DISCORD_/ADVISOR_ variable, plus ADVISOR_MODEL=fake:hashing,
    HF_HUB_OFFLINE=1 and `settings`: what an `advisor` subprocess on the fake model is run with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "ADVISOR_"))}
    env.update(ADVISOR_MODEL=FAKE_MODEL, HF_HUB_OFFLINE="1", **settings)
    return env


# -- documents -------------------------------------------------------------------------------------------

ARTICLE = DOCUMENTS / "career-switch-article.html"
NAV_ONLY = DOCUMENTS / "navigation-only.html"


NEGOTIATION_LINES = [
    "Salary negotiation for product managers",
    "Negotiate the level before the number. A higher level moves every",
    "band of the offer, while a higher number inside a level is capped.",
    "Ask the recruiter for the salary band in writing before the final round.",
]


def make_pdf(path: Path, pages: list[list[str]], title: str = "", author: str = "", password: str = "") -> Path:
    """A real PDF with a text layer (Helvetica text drawn line by line), written by pypdf."""
    writer = PdfWriter()
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        if not lines:
            continue  # a page with no text layer, like a scan
        font = writer._add_object(DictionaryObject({
            NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"), NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        }))
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
    if title or author:
        writer.add_metadata({k: v for k, v in (("/Title", title), ("/Author", author)) if v})
    if password:
        writer.encrypt(password, algorithm="RC4-128")
    with open(path, "wb") as f:
        writer.write(f)
    return path


ARTICLE_ID = "breaking-into-product-management-from-engineering"
NEW_QUESTION = "how long do engineers shadow a product manager before an internal transfer?"


# -- Slack ------------------------------------------------------------------------------------------------

QUIET = 0.3  # how long to wait to be sure nothing (more) is posted


def fixture(name: str, **replace) -> dict:
    """A recorded Slack payload from tests/fixtures/slack/, with each key of `replace` replaced by its value."""
    text = (SLACK_FIXTURES / name).read_text()
    for key, value in replace.items():
        text = text.replace(key, value)
    return json.loads(text)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- answers -------------------------------------------------------------------------------------------

def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def assert_well_formed(answer, advisor: Advisor) -> None:
    """Whatever is answered: numbered citations, each used, each quoting the passage it names."""
    if answer.abstained:
        assert answer.citations == () and answer.sentences == ()
        assert "don't cover" in answer.text
        return
    assert answer.citations, "an answer always cites"
    assert [c.number for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    cited = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
    assert set(cited) == {c.number for c in answer.citations}
    assert re.search(r"\[\d+\]\.?$", answer.text), "the answer ends on a citation"
    chunks = {c.id: c for c in advisor.engine.retriever.index.chunks}
    for citation in answer.citations:
        chunk = chunks[citation.chunk_id]
        assert (citation.doc_id, citation.title, citation.section) == (chunk.doc_id, chunk.doc_title, chunk.section)
        for piece in citation.quote.split("…"):
            assert normalise(piece) in normalise(chunk.text), (piece, chunk.text)
    for sentence in answer.sentences:
        assert 1 <= sentence.citation <= len(answer.citations)


# -- Discord ----------------------------------------------------------------------------------------------

GUILD = "1100000000000000000"
CHANNEL = "1110000000000000000"
THREAD = "1110000000000000500"
ASHA, RAVI = "1000000000000000001", "1000000000000000002"


@contextlib.asynccontextmanager
async def discord_api(monkeypatch):
    """The mock Discord HTTP API on 127.0.0.1, with discord.py's routes pointed at it for the test."""
    from tests.mock_discord_api import MockDiscordAPI

    async with MockDiscordAPI() as server:
        monkeypatch.setattr(discord.http.Route, "BASE", server.base)
        yield server


def open_test_store(tmp_path):
    """A SQLite store in the test's folder with a fixed salt (close it after)."""
    from bot.store import Store

    return Store(tmp_path / "advisor.sqlite3", salt="test")


def payload(name: str, **subs) -> dict:
    """A recorded payload, with {{key}} placeholders (e.g. the answer id in a button's custom_id) filled in."""
    text = (DISCORD_FIXTURES / f"{name}.json").read_text()
    for key, value in subs.items():
        text = text.replace("{{" + key + "}}", value)
    return json.loads(text)


def deliver(client: discord.Client, event: str, data: dict) -> None:
    """Hand a gateway dispatch to discord.py exactly as its websocket reader does."""
    client._connection.parsers[event](data)


def custom_ids(message: dict) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row["components"]]


def answer_id_of(message: dict) -> str:
    return next(c for c in custom_ids(message) if c.startswith("advisor:fb:up:")).rsplit(":", 1)[1]


# -- the store, read from outside -------------------------------------------------------------------------

def query(store, sql: str, params: tuple = ()) -> list:
    """Rows of `sql` read through a connection of the test's own to the store's database (its public `path` or
    `url`), as another process would see them; SQLite rows also index by column name."""
    if store.shared:
        import psycopg

        with psycopg.connect(store.url) as conn:
            return conn.execute(sql, params).fetchall()
    with contextlib.closing(sqlite3.connect(f"{store.path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql, params).fetchall()


def dump(store) -> str:
    """Every row of every table of the store, as text."""
    if store.shared:
        tables = [r[0] for r in query(store, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return "\n".join(str(row) for t in tables for row in query(store, f"SELECT * FROM {t}"))
    with contextlib.closing(sqlite3.connect(f"{store.path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        return "\n".join(db.iterdump())

