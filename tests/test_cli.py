"""The `advisor` command: in-process with the fake embedder, plus real runs of the console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings
from retrieval.index_store import IndexStore
from tests.commands import assert_one_line_error, run
from tests.conftest import SHIPPED_CORPUS

QUESTION = "does a Series A startup hire ML PMs?"
ADVISOR = Path(sys.executable).with_name("advisor")


def index_dir(corpus: Path, data: Path) -> Path:
    return Settings(corpus_dir=corpus, data_dir=data).index_dir


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (os.readlink(p) if p.is_symlink() else p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.name != ".lock" and (p.is_symlink() or p.is_file())}


# --- refusals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("question", ["   ", "", "\n\t"])
def test_blank_question_exits_2_with_one_line(capsys, fake_model, question, data_dir):
    assert_one_line_error(*run(capsys, "ask", question, "--data-dir", data_dir), "empty")
    assert fake_model == [], "refused before the model or index is touched"
    assert not data_dir.exists()


def test_ten_thousand_character_question_exits_2(capsys, fake_model, data_dir):
    assert_one_line_error(*run(capsys, "ask", "x" * 10_000, "--data-dir", data_dir), "10,000", "2,000")
    assert fake_model == []


def test_missing_corpus_folder_exits_2_saying_what_to_do(capsys, fake_model, tmp_path, data_dir):
    missing = tmp_path / "no-such-corpus"
    code, out, err = run(capsys, "ask", QUESTION, "--corpus", missing, "--data-dir", data_dir)
    assert_one_line_error(code, out, err, str(missing), "does not exist", "--corpus")


def test_corpus_of_only_a_binary_file_exits_2(capsys, fake_model, tmp_path, data_dir):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "scan.md").write_bytes(b"\x89PNG\x00\x00binary")
    code, out, err = run(capsys, "ask", QUESTION, "--corpus", corpus, "--data-dir", data_dir)
    assert_one_line_error(code, out, err, str(corpus), "no readable")


def test_nonexistent_model_path_exits_2_with_message(capsys, corpus_dir, data_dir):
    # the real embedder class: a missing path must be refused without trying to load anything
    code, out, err = run(capsys, "ask", QUESTION, "--corpus", corpus_dir, "--data-dir", data_dir,
                         "--model", "/nonexistent/path")
    assert_one_line_error(code, out, err, "/nonexistent/path", "does not exist", "--model")


def test_no_command_prints_help_and_exits_2(capsys):
    code, out, _ = run(capsys)
    assert code == 2 and "ask" in out and "index" in out


# --- damaged index --------------------------------------------------------------------------------

def test_damaged_index_exits_2_and_is_left_alone_until_advisor_index(capsys, fake_model, corpus_dir, data_dir):
    code, out, _ = run(capsys, "index", "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0 and "Indexed" in out
    folder = index_dir(corpus_dir, data_dir)
    faiss_file = IndexStore(folder).current_generation() / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:50])
    before = snapshot(folder)

    code, out, err = run(capsys, "ask", QUESTION, "--corpus", corpus_dir, "--data-dir", data_dir)
    assert_one_line_error(code, out, err, "damaged", "advisor index")
    assert snapshot(folder) == before

    code, out, _ = run(capsys, "index", "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0
    code, out, _ = run(capsys, "ask", QUESTION, "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0 and out.strip()


def test_garbage_manifest_exits_2(capsys, fake_model, corpus_dir, data_dir):
    assert run(capsys, "index", "--corpus", corpus_dir, "--data-dir", data_dir)[0] == 0
    folder = index_dir(corpus_dir, data_dir)
    (IndexStore(folder).current_generation() / "manifest.json").write_text("\x00garbage")
    before = snapshot(folder)
    assert_one_line_error(*run(capsys, "ask", QUESTION, "--corpus", corpus_dir, "--data-dir", data_dir),
                          "advisor index")
    assert snapshot(folder) == before


# --- answers --------------------------------------------------------------------------------------

def test_ask_json_has_the_answer_fields(capsys, fake_model, corpus_dir, data_dir):
    code, out, err = run(capsys, "ask", "--json", QUESTION, "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0
    data = json.loads(out)
    assert {"question", "abstained", "text", "citations"} <= set(data)
    assert data["question"] == QUESTION and isinstance(data["abstained"], bool)
    assert isinstance(data["citations"], list)
    assert "Indexed" in err, "the first ask builds the index and says so on stderr"


def test_question_words_are_joined(capsys, fake_model, corpus_dir, data_dir):
    code, out, _ = run(capsys, "ask", "--json", "does", "a", "Series", "A", "startup", "hire", "ML", "PMs?",
                       "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0 and json.loads(out)["question"] == QUESTION


def test_ask_text_lists_numbered_citations(capsys, fake_model, corpus_dir, data_dir):
    code, out, _ = run(capsys, "ask", QUESTION, "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0
    _, out_json, _ = run(capsys, "ask", "--json", QUESTION, "--corpus", corpus_dir, "--data-dir", data_dir)
    answer = json.loads(out_json)
    for citation in answer["citations"]:
        assert f"[{citation['number']}] {citation['title']}" in out


def test_second_ask_reuses_the_index(capsys, fake_model, corpus_dir, data_dir):
    run(capsys, "ask", QUESTION, "--corpus", corpus_dir, "--data-dir", data_dir)
    code, _, err = run(capsys, "ask", QUESTION, "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0 and "Indexed" not in err
    assert fake_model[-1].texts_embedded == 1, "only the question is embedded"


def test_index_reports_passages_and_documents(capsys, fake_model, corpus_dir, data_dir):
    code, out, _ = run(capsys, "index", "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0 and "from 2 documents" in out
    code, out, _ = run(capsys, "index", "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0 and "0 newly embedded" in out


def test_skipped_files_are_warned_about_and_the_rest_answers(capsys, fake_model, corpus_dir, data_dir):
    (corpus_dir / "scan.md").write_bytes(b"\x00\x01binary")
    code, out, err = run(capsys, "ask", QUESTION, "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0 and out.strip()
    assert "warning:" in err and "scan.md" in err


def test_corpus_comes_from_the_environment(capsys, fake_model, corpus_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("ADVISOR_CORPUS", str(tmp_path / "env-corpus-missing"))
    code, out, err = run(capsys, "ask", QUESTION)
    assert_one_line_error(code, out, err, "env-corpus-missing")


def test_eval_writes_results_and_prints_figures(capsys, fake_model, corpus_dir, data_dir, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in [
        {"id": "q1", "question": QUESTION, "kind": "lookup",
         "evidence": ["True ML PMs emerge at Series B+"]},
        {"id": "q2", "question": "how long do I boil pasta?", "kind": "out_of_scope", "evidence": []},
    ]) + "\n")
    out_file = tmp_path / "out" / "results.jsonl"
    code, out, _ = run(capsys, "eval", "--questions", questions, "--out", out_file,
                       "--corpus", corpus_dir, "--data-dir", data_dir)
    assert code == 0
    results = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [r["id"] for r in results] == ["q1", "q2"]
    assert {"abstained", "hits", "answer"} <= set(results[0])
    assert "hit@3" in out and "oos_abstain" in out


def test_eval_with_a_malformed_questions_file_exits_2(capsys, fake_model, corpus_dir, data_dir, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "q1", "question": "ok"}\n{not json\n')
    code, out, err = run(capsys, "eval", "--questions", questions, "--out", tmp_path / "o.jsonl",
                         "--corpus", corpus_dir, "--data-dir", data_dir)
    assert_one_line_error(code, out, err, "line 2")
    assert fake_model == [] and not data_dir.exists(), "refused before the model loads or anything is indexed"


def test_eval_with_a_missing_questions_file_exits_2(capsys, fake_model, corpus_dir, data_dir, tmp_path):
    code, out, err = run(capsys, "eval", "--questions", tmp_path / "nope.jsonl", "--out", tmp_path / "o.jsonl",
                         "--corpus", corpus_dir, "--data-dir", data_dir)
    assert_one_line_error(code, out, err, "does not exist")
    assert fake_model == [] and not data_dir.exists()


# --- the real console script ----------------------------------------------------------------------

def run_script(*argv, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADVISOR_", "SLACK_", "DISCORD_"))}
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([str(ADVISOR), *map(str, argv)], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=Path(SHIPPED_CORPUS).parent)


def test_script_error_is_exactly_one_line(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "scan.md").write_bytes(b"\x00\x01binary")
    proc = run_script("ask", QUESTION, "--corpus", corpus, "--data-dir", tmp_path / "data", timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("advisor: "), proc.stderr


@pytest.mark.model
def test_script_answers_with_the_real_model(real_advisor, tmp_path):
    """The installed `advisor` script, real model and FAISS, reusing the session's index (no re-embedding)."""
    assert ADVISOR.exists(), "the console script is installed in the venv"
    data = tmp_path / "data"
    target = index_dir(SHIPPED_CORPUS, data)
    shutil.copytree(real_advisor.engine.store.folder, target, symlinks=True)
    generation = os.readlink(target / "current")

    proc = run_script("ask", "--json", QUESTION, "--corpus", SHIPPED_CORPUS, "--data-dir", data)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Indexed" not in proc.stderr, "an up-to-date index is reused"
    assert os.readlink(target / "current") == generation
    answer = json.loads(proc.stdout)
    assert answer["question"] == QUESTION and answer["abstained"] is False
    assert answer["citations"] and "[1]" in answer["text"]
    assert {c["doc_id"] for c in answer["citations"]} <= {"ai-pm-vs-ml-pm", "ai-ml-data-pm-guide"}


# --- the answer store at start, and questions that are not valid text ---------------------------------------

def _serve(capsys, monkeypatch, platform: str, data: Path) -> tuple[int, str, str]:
    """`advisor serve slack --http` (against a mock Web API) or `serve discord`, on the data folder `data`."""
    if platform == "discord":
        monkeypatch.setenv("DISCORD_TOKEN", "MTIz.NDU2.Nzg5")
        return run(capsys, "serve", "discord", "--data-dir", data)
    from tests.mock_slack_api import BOT_TOKEN, SECRET, MockSlackAPI

    with MockSlackAPI() as api:
        monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
        monkeypatch.setenv("SLACK_API_URL", api.url)
        return run(capsys, "serve", "slack", "--http", "--port", "0", "--data-dir", data)


@pytest.mark.parametrize("platform", ["slack", "discord"])
def test_serve_with_a_corrupt_store_exits_2_naming_the_file(capsys, monkeypatch, fake_model, tmp_path, platform):
    data = tmp_path / "data"
    data.mkdir()
    store = data / "advisor.sqlite3"
    store.write_bytes(b"these bytes were never a database " * 100)
    code, out, err = _serve(capsys, monkeypatch, platform, data)
    assert code == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("advisor: ") and str(store) in last and "move it aside" in last, err
    assert fake_model == [], "refused before the model loads"
    assert store.read_bytes() == b"these bytes were never a database " * 100


@pytest.mark.parametrize("salt", ["", "pepper"])
def test_serve_on_a_read_only_data_folder_exits_2_naming_the_store(tmp_path, salt):
    """A data folder the service user cannot write (root ignores permissions: as root, without that capability)."""
    from tests.conftest import ROOT

    data = tmp_path / "data"
    data.mkdir(mode=0o555)
    command = [sys.executable, "-m", "bot.cli", "serve", "discord"]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root, and no setpriv to give up root's right to write anywhere")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "ADVISOR_"))}
    env.update(DISCORD_TOKEN="MTIz.NDU2.Nzg5", ADVISOR_DATA_DIR=str(data), ADVISOR_USER_SALT=salt, HF_HUB_OFFLINE="1")
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"advisor: The store {data / 'advisor.sqlite3'} cannot be opened"), proc.stderr
    assert f"make {data} writable" in proc.stderr


@pytest.mark.model
def test_a_question_that_is_not_valid_text_is_answered(capsys, monkeypatch, real_advisor, real_embedder, tmp_path):
    """Invalid UTF-8 on the command line reaches Python as lone surrogates, which the tokenizer refuses."""
    import bot.core

    data = tmp_path / "data"
    shutil.copytree(real_advisor.engine.store.folder, index_dir(SHIPPED_CORPUS, data), symlinks=True)
    monkeypatch.setattr(bot.core, "load_embedder", lambda model=None: real_embedder)
    code, out, err = run(capsys, "ask", "--json", "--corpus", SHIPPED_CORPUS, "--data-dir", data,
                         f"{QUESTION} \udcff\udcfe \ud800")
    assert code == 0 and "Traceback" not in err, err
    answer = json.loads(out)
    assert answer["question"] == f"{QUESTION} \ufffd\ufffd \ufffd" and not answer["abstained"] and answer["citations"]


def test_a_reader_that_stops_early_is_not_an_error(fake_model, corpus_dir, monkeypatch, capsys):
    """`advisor ask ... | head -1`: the closed pipe ends the command quietly, not as a file error."""
    import sys

    from bot.cli.entry import main

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["ask", "--corpus", str(corpus_dir), "does a Series A startup hire ML PMs?"]) == 0
    assert "advisor:" not in capsys.readouterr().err


def test_the_fake_model_by_name_runs_the_real_command_without_torch_or_an_export(tmp_path):
    """`ADVISOR_MODEL=fake:hashing advisor ask`: the named test double, no torch, no ONNX export beside the index."""
    from tests.support import ADVISOR as ADVISOR_MODULE, fake_model_env

    data = tmp_path / "data"
    env = fake_model_env(ADVISOR_CORPUS=str(SHIPPED_CORPUS), ADVISOR_DATA_DIR=str(data))
    proc = subprocess.run([sys.executable, "-X", "importtime", *ADVISOR_MODULE[1:], "ask", "--json", QUESTION],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    assert "retrieval.fake_embedder" in imported
    assert not {"torch", "sentence_transformers", "onnxruntime"} & imported
    assert json.loads(proc.stdout)["citations"]
    index = index_dir(SHIPPED_CORPUS, data)
    assert IndexStore(index).read_manifest().model == "fake:hashing"
    assert not list(index.rglob("*.onnx")), "the fake has no query encoder to export"
