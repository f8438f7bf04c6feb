#!/usr/bin/env python3
"""Retrieval benchmark: prints a markdown table of figures, then stops (a script, not a timed test).

What it measures, side by side with a naive reference pipeline (benchmarks/naive.py: fixed
1,000-character chunks with 200 overlap, the same model, FAISS flat, top-5) on the same questions:

- index build time and throughput,
- query latency p50/p95 with the model already loaded: query embedding, search without the
  embedding, retrieval (`HybridRetriever.search`) and the full answer (`Engine.answer`),
- index load time, process start to first answer (`advisor ask` in a subprocess), peak memory,
- answer quality on ../shared/eval/dev.jsonl when it is there (shipped corpus only).

Corpora: the shipped corpus (real embeddings throughout), then generated corpora of 10,000 and
100,000 chunks whose documents recombine the shipped corpus's sentences under random section names.
Embedding those on this CPU would take far too long, so their index vectors are GENERATED (the real
vectors of the shipped sentences mixed with random unit vectors); the real embedding throughput is
measured on a sample and the real build time extrapolated. Queries always go through the real model.
Every figure is labelled: [real] real embeddings, [gen] generated index vectors, [est] extrapolated.

Each corpus is measured in its own worker process, so that its peak memory is its own.

Usage:
    python benchmarks/bench_retrieval.py                 # shipped corpus + 10k + 100k chunks
    python benchmarks/bench_retrieval.py --quick         # shipped corpus only
    python benchmarks/bench_retrieval.py --sizes 10000 --out /tmp/bench.md
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHIPPED_CORPUS = ROOT / "corpus"
SHARED_EVAL = ROOT.parent / "shared" / "eval"
sys.path.insert(0, str(HERE))  # naive.py sits beside this file

FIRST_QUESTION = "does a Series A startup hire ML PMs?"
TARGET_SHIPPED_MS = 100.0  # full answer p95, shipped corpus, model loaded
TARGET_LARGE_MS = 150.0  # full answer p95 at 100,000 chunks
LARGE = 100_000

# Used when ../shared/eval/dev.jsonl is not there.
BUILTIN_QUESTIONS = [
    "does a Series A startup hire ML PMs?",
    "is ML PM or AI PM better pay?",
    "what is the difference between an AI PM and an ML PM?",
    "do I need to know how to code to be an AI PM?",
    "how should I prepare for an ML PM interview?",
    "what does an ML PM own day to day?",
    "what salary can a senior AI PM expect in 2026?",
    "how do I move from a traditional PM role into AI?",
    "what questions do interviewers ask data PMs?",
    "which companies hire ML PMs?",
    "what are the failure modes of AI products?",
    "is a data PM the same as an analytics PM?",
    "how technical are ML PM interviews at FAANG?",
    "what metrics does an ML PM track?",
    "how do I show ML experience on my resume?",
    "should I take an AI PM title at a startup?",
    "what is model performance ownership?",
    "how important is domain knowledge for AI PMs?",
    "what is the best pizza in Naples?",
    "how do I renew my passport?",
]

_T0 = float(os.environ.get("ADVISOR_BENCH_T0") or time.time())  # workers log on the orchestrator's clock


def log(message: str) -> None:
    print(f"[bench {time.time() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------- memory

def _status_mib() -> dict[str, float]:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def rss_mib() -> float:
    gc.collect()
    return _status_mib().get("VmRSS", float("nan"))


def reset_peak() -> None:
    """Reset the peak RSS (VmHWM) of this process, where Linux allows it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mib() -> float:
    import resource

    status = _status_mib()
    return status.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


# ------------------------------------------------------------------------------------ statistics

def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000.0, q)) if samples else float("nan")


def summary(samples: list[float]) -> dict:
    return {"n": len(samples), "p50": pct(samples, 50), "p95": pct(samples, 95),
            "mean": float(np.mean(samples) * 1000) if samples else float("nan")}


def time_calls(fn, questions: list[str], rounds: int, warmup: int = 3) -> tuple[list[float], list]:
    """Wall times of `fn(q)` over `rounds` passes of the questions, and the first pass's return values."""
    for q in questions[:warmup]:
        fn(q)
    samples, first = [], []
    for r in range(rounds):
        for q in questions:
            t = time.perf_counter()
            value = fn(q)
            samples.append(time.perf_counter() - t)
            if r == 0:
                first.append(value)
    return samples, first


def load_questions(path: Path | None) -> tuple[list[dict], str]:
    if path and path.is_file():
        from bot.evaluation import load_questions as load

        return load(path), str(path)
    return [{"id": f"builtin-{i:02d}", "question": q} for i, q in enumerate(BUILTIN_QUESTIONS, 1)], "built-in list"


# ------------------------------------------------------------------------------- generated corpora

_LIST_PREFIX = re.compile(r"^(?:[-*+•]|\d{1,2}[.)])\s+")


def sentence_pool(chunks) -> list[str]:
    """The distinct sentences of the shipped corpus, made safe to put in a paragraph line."""
    from retrieval.chunking import split_sentences

    seen, pool = set(), []
    for chunk in chunks:
        for s in split_sentences(chunk.text):
            s = _LIST_PREFIX.sub("", s).lstrip("|>#*: ").replace("|", ",").strip()
            if not 25 <= len(s) <= 300:
                continue
            if s[-1] not in ".!?":
                s += "."
            if s not in seen:
                seen.add(s)
                pool.append(s)
    return pool


def generate_corpus(folder: Path, target_chunks: int, pool: list[str], seed: int = 7) -> dict:
    """Write markdown documents of paragraphs recombining `pool` sentences under random sections.

    Each paragraph is one line of 111-480 characters: exactly one chunk for the product's chunker.
    """
    rng = random.Random(seed)
    vocab = sorted({w for s in pool for w in re.findall(r"[A-Za-z]{4,}", s)})
    folder.mkdir(parents=True, exist_ok=True)

    def name(lo: int, hi: int) -> str:
        return " ".join(rng.choice(vocab).capitalize() for _ in range(rng.randint(lo, hi)))

    def paragraph() -> str:
        text = rng.choice(pool)
        while len(text) <= 110 or (rng.random() < 0.4 and len(text) < 300):
            nxt = rng.choice(pool)
            if len(text) + 1 + len(nxt) > 480:
                if len(text) > 110:
                    break
                continue
            text = f"{text} {nxt}"
        return text

    made = docs = chars = 0
    while made < target_chunks:
        lines = [f"# {name(3, 6)}", ""]
        for _ in range(rng.randint(8, 15)):
            lines += [f"## {name(1, 4)}", ""]
            for _ in range(rng.randint(3, 10)):
                if made >= target_chunks:
                    break
                lines += [paragraph(), ""]
                made += 1
        text = "\n".join(lines)
        (folder / f"gen-{docs:05d}.md").write_text(text, encoding="utf-8")
        docs += 1
        chars += len(text)
    return {"files": docs, "paragraphs": made, "chars": chars}


class GeneratedEmbedder:
    """Index vectors without the model: a text's vector is the mean real vector of the shipped
    sentences it holds, mixed with a random unit vector (a random unit vector when it holds none).

    Its `name` is the real model's, so the index it builds is the one `advisor` loads.
    """

    def __init__(self, name: str, dim: int, known: dict[str, np.ndarray], noise: float = 0.35,
                 sentence_noise: float = 0.1):
        from retrieval.chunking import split_sentences

        self.name, self._dim, self.known = name, dim, known
        self.noise, self.sentence_noise = noise, sentence_noise
        self._split = split_sentences
        self.texts = 0

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        rng = np.random.default_rng(zlib.crc32("\x00".join(texts[:2]).encode("utf-8")))
        noise = rng.standard_normal((len(texts), self._dim)).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        out = noise.copy()
        for i, text in enumerate(texts):
            exact = self.known.get(text)
            if exact is not None:
                out[i] = exact + self.sentence_noise * noise[i]
                continue
            parts = [self.known[s] for s in self._split(text) if s in self.known]
            if parts:
                base = np.mean(parts, axis=0)
                out[i] = base / (np.linalg.norm(base) or 1.0) + self.noise * noise[i]
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        self.texts += len(texts)
        return out


class _TimedEmbedder:
    """The real embedder, with the wall time of each call recorded: the model's share of a search."""

    def __init__(self, real):
        self.name, self._real, self.samples = real.name, real, []

    @property
    def dim(self) -> int:
        return self._real.dim

    def embed(self, texts, progress: bool = False) -> np.ndarray:
        t = time.perf_counter()
        out = self._real.embed(texts)
        self.samples.append(time.perf_counter() - t)
        return out


class _FixedVectors:
    """An embedder that returns the query vectors computed beforehand: search cost without the model."""

    def __init__(self, real, vectors: dict[str, np.ndarray]):
        self.name, self._real, self._vectors = real.name, real, vectors

    @property
    def dim(self) -> int:
        return self._real.dim

    def embed(self, texts, progress: bool = False) -> np.ndarray:
        return np.stack([self._vectors[t] for t in texts])


# ------------------------------------------------------------------------------------------ worker

def _score_py(results: Path, gold: Path) -> dict | None:
    script = gold.parent / "score.py"
    if not script.is_file():
        return None
    proc = subprocess.run([sys.executable, str(script), str(results), str(gold), "--json"],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        log(f"score.py failed: {proc.stderr.strip()[:300]}")
        return None
    return json.loads(proc.stdout)


def worker(args) -> dict:
    """Measure one corpus (`shipped` or a chunk count) in this process; returns the figures."""
    import torch

    from bot.evaluation import score, to_result, write_results
    from bot.settings import Settings
    from naive import NaivePipeline, read_raw_documents
    from retrieval.embedding import SentenceTransformerEmbedder
    from retrieval.engine import Engine
    from retrieval.embedded_texts import embedding_texts
    from retrieval.index_store import IndexStore
    from retrieval.lexical import LexicalIndex

    work = Path(args.workdir)
    gold_path = Path(args.questions) if args.questions else None
    gold, gold_name = load_questions(gold_path)
    questions = [g["question"] for g in gold]
    labelled = all("kind" in g and "evidence" in g for g in gold)
    size = args.worker
    shipped = size == "shipped"
    fig: dict = {"corpus": "shipped" if shipped else int(size), "questions": len(questions),
                 "questions_from": gold_name, "rounds": args.rounds, "torch_threads": torch.get_num_threads(),
                 "load_before": os.getloadavg()[0]}

    log(f"[{size}] loading the model")
    rss0 = rss_mib()
    t = time.perf_counter()
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])
    fig["model_load_s"] = time.perf_counter() - t
    fig["rss_model_mib"] = rss_mib()
    fig["model_peak_mib"] = peak_mib()
    fig["rss_python_mib"] = rss0

    if shipped:
        corpus = SHIPPED_CORPUS
        data_dir = work / "data-shipped"
    else:
        corpus = work / f"gen-{size}" / "corpus"
        data_dir = work / f"gen-{size}" / "data"
        shutil.rmtree(corpus.parent, ignore_errors=True)
        log(f"[{size}] generating the corpus")
        ship_chunks = Engine(SHIPPED_CORPUS, work / "unused", embedder).read_corpus()[1]
        pool = sentence_pool(ship_chunks)
        t = time.perf_counter()
        gen = generate_corpus(corpus, int(size), pool)
        fig["generate_s"] = time.perf_counter() - t
        fig["generated"] = gen
        t = time.perf_counter()
        pool_vectors = embedder.embed(pool)
        fig["pool_sentences"] = len(pool)
        fig["pool_embed_s"] = time.perf_counter() - t
        known = dict(zip(pool, pool_vectors))
    index_dir = Settings(corpus_dir=corpus, data_dir=data_dir).index_dir  # where `advisor ask` looks
    fig["data_dir"], fig["corpus_dir"] = str(data_dir), str(corpus)

    # ---- build
    engine = Engine(corpus, index_dir, embedder)
    t = time.perf_counter()
    documents, chunks, _warnings = engine.read_corpus()
    fig["read_chunk_s"] = time.perf_counter() - t
    embedded_rows = len(embedding_texts(chunks)[0])
    fig.update(docs=len(documents), chunks=len(chunks), sentence_rows=embedded_rows - 2 * len(chunks),
               embedded_rows=embedded_rows)
    reset_peak()
    rss_before = rss_mib()
    if shipped:
        log(f"[{size}] building the index with the real model ({fig['embedded_rows']} texts)")
        t = time.perf_counter()
        status = engine.ensure_index(force=True)
        fig["build_s"] = time.perf_counter() - t
        fig["build_embedded"] = status.embedded
        fig["build_texts_per_s"] = status.embedded / fig["build_s"]
        fig["build_kind"] = "real"
    else:
        log(f"[{size}] measuring real embedding throughput on a sample")
        rng = random.Random(3)
        start = rng.randrange(0, max(1, len(chunks) - 64))
        sample_chunks = chunks[start:start + 64]
        sample = embedding_texts(sample_chunks)[0]
        t = time.perf_counter()
        for i in range(0, len(sample), 64):
            embedder.embed(sample[i:i + 64])
        tps = len(sample) / (time.perf_counter() - t)
        fig["sample_texts"], fig["real_texts_per_s"] = len(sample), tps
        fig["real_build_est_s"] = fig["embedded_rows"] / tps
        log(f"[{size}] real embedding: {tps:.0f} texts/s, so ~{fig['real_build_est_s'] / 60:.0f} min for "
            f"{fig['embedded_rows']} texts; building with generated vectors")
        gen_embedder = GeneratedEmbedder(embedder.name, embedder.dim, known)
        stamp = engine.read_corpus_stamped()[3]  # what ensure_index records: the next start needs no re-read
        t = time.perf_counter()
        loaded, embedded = IndexStore(index_dir).build(chunks, gen_embedder, corpus=stamp)
        fig["build_s"] = time.perf_counter() - t
        fig["build_embedded"] = embedded
        fig["build_texts_per_s"] = embedded / fig["build_s"]
        fig["build_kind"] = "gen"
        del loaded
    fig["build_peak_mib"] = peak_mib()
    fig["build_rss_before_mib"] = rss_before
    fig["index_disk_mib"] = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file()) / 2**20

    # ---- load: what every process start does once the index exists
    del engine
    gc.collect()
    rss_before = rss_mib()
    reset_peak()
    log(f"[{size}] loading the built index (Engine.ensure_index)")
    engine = Engine(corpus, index_dir, embedder)
    manifest = engine.store.read_manifest()
    if manifest is None or not manifest.matches(embedder.name, chunks):
        # never let the real model re-embed a generated corpus: that would take hours
        raise SystemExit(f"[{size}] the index just built does not match the corpus; not loading it")
    t = time.perf_counter()
    status = engine.ensure_index()
    fig["ensure_index_s"] = time.perf_counter() - t
    fig["ensure_index_embedded"] = status.embedded
    fig["load_peak_mib"] = peak_mib()
    fig["rss_serving_mib"] = rss_mib()
    fig["rss_index_mib"] = fig["rss_serving_mib"] - rss_before
    retriever = engine.retriever
    loaded = retriever.index
    fig["vectors_mib"] = loaded.vectors.nbytes / 2**20
    fig["faiss_mib"] = loaded.faiss_index.ntotal * loaded.faiss_index.d * 4 / 2**20
    # its parts, timed again on their own
    t = time.perf_counter()
    stamp_current = engine._stamp_current(engine.store.read_manifest())
    fig["load_check_s"] = time.perf_counter() - t
    fig["load_fast_path"] = stamp_current
    t = time.perf_counter()
    IndexStore(index_dir).load()
    fig["load_store_s"] = time.perf_counter() - t
    gc.collect()
    # what a start no longer does when the stamps match (the slow path still does it)
    t = time.perf_counter()
    engine.read_corpus()
    fig["load_read_chunk_s"] = time.perf_counter() - t
    t = time.perf_counter()
    LexicalIndex([c.embed_text for c in loaded.chunks])
    fig["load_bm25_s"] = time.perf_counter() - t
    gc.collect()
    # a running bot's hot swap: load the current generation and install it (Engine.refresh)
    swapper = Engine(corpus, index_dir, embedder)
    t = time.perf_counter()
    swapper.refresh()
    fig["swap_s"] = time.perf_counter() - t
    del swapper
    gc.collect()

    # ---- query latency, model loaded
    rounds = args.rounds if shipped else args.rounds_large
    fig["rounds"] = rounds
    log(f"[{size}] query latency: {len(questions)} questions x {rounds} rounds")
    reset_peak()
    timed = _TimedEmbedder(embedder)
    retriever.embedder = timed
    try:
        fig["retrieval"] = summary(time_calls(lambda q: retriever.search(q, k=5), questions, rounds)[0])
        fig["embed"] = summary(timed.samples[-len(questions) * rounds:])
        retriever.embedder = _FixedVectors(embedder, {q: embedder.embed([q])[0] for q in questions})
        fig["search_only"] = summary(time_calls(lambda q: retriever.search(q, k=5), questions, rounds)[0])
    finally:
        retriever.embedder = embedder
    samples, answers = time_calls(lambda q: engine.answer(q), questions, rounds)
    fig["answer"] = summary(samples)
    fig["abstained"] = sum(a.abstained for a in answers)
    if args.single_thread_check:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        timed = _TimedEmbedder(embedder)
        retriever.embedder = timed
        try:
            fig["answer_1t"] = summary(time_calls(lambda q: engine.answer(q), questions, rounds)[0])
            fig["embed_1t"] = summary(timed.samples[-len(questions) * rounds:])
        finally:
            torch.set_num_threads(threads)
            retriever.embedder = embedder
    fig["query_peak_mib"] = peak_mib()

    # ---- naive reference on the same documents and questions
    log(f"[{size}] naive reference pipeline")
    naive = NaivePipeline(embedder)
    raw = read_raw_documents(corpus)
    nstats = naive.build(raw, vector_embedder=None if shipped else GeneratedEmbedder(embedder.name, embedder.dim, known))
    fig["naive_build"] = nstats
    fig["naive_build_kind"] = "real" if shipped else "gen"
    fig["naive_vectors_mib"] = naive.vectors.nbytes / 2**20
    samples, naive_answers = time_calls(lambda q: naive.answer(q, q), questions, rounds)
    fig["naive_search"] = summary(samples)

    # ---- answer quality (shipped corpus, labelled questions only)
    if shipped and labelled:
        log(f"[{size}] answer quality on {gold_name}")
        # the answers of the first timed round: what the figures above measured
        ours = [to_result(g["id"], a) for g, a in zip(gold, answers)]
        theirs = [dict(r, id=g["id"]) for g, r in zip(gold, naive_answers)]
        out_dir = Path(args.results_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        ours_path, naive_path = out_dir / "results-advisor.jsonl", out_dir / "results-naive.jsonl"
        write_results(ours_path, ours)
        write_results(naive_path, theirs)
        fig["quality"] = {"ours": score(ours, gold), "naive": score(theirs, gold)}
        fig["score_py"] = {"ours": _score_py(ours_path, gold_path), "naive": _score_py(naive_path, gold_path)}
        fig["results_files"] = [str(ours_path), str(naive_path)]
    fig["load_after"] = os.getloadavg()[0]
    # the peak of the whole worker: VmHWM is reset between stages, so take the largest stage peak
    fig["worker_peak_mib"] = max(fig["model_peak_mib"], fig["build_peak_mib"], fig["load_peak_mib"],
                                 fig["query_peak_mib"], peak_mib())
    return fig


# ------------------------------------------------------------------------------------ orchestrator

def run_child(cmd: list[str], timeout: float, env: dict | None = None) -> dict:
    """Run a command; its wall time, exit code, peak RSS (from wait4) and output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=str(ROOT), start_new_session=True)
        deadline = t + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"wall_s": wall, "rc": proc.returncode, "timed_out": timed_out,
                "maxrss_mib": usage.ru_maxrss / 1024, "stdout": out.read().decode("utf-8", "replace"),
                "stderr": err.read().decode("utf-8", "replace")}


def child_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env["HF_HUB_OFFLINE"] = "1"
    return env


def advisor_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "advisor"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "bot.cli"]


def ask(corpus: str, data_dir: str, timeout: float) -> dict:
    cmd = advisor_cmd() + ["ask", "--corpus", corpus, "--data-dir", data_dir, FIRST_QUESTION]
    res = run_child(cmd, timeout, child_env())
    res["rebuilt"] = "Indexed" in res["stderr"]
    res["answered"] = res["rc"] == 0 and bool(res["stdout"].strip())
    if not res["answered"]:
        log(f"advisor ask failed (rc={res['rc']}, timed out={res['timed_out']}): {res['stderr'][-400:]}")
    return res


def run_worker(name: str, args, workdir: Path, timeout: float) -> dict:
    result_file = workdir / f"worker-{name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--workdir", str(workdir),
           "--result", str(result_file), "--rounds", str(args.rounds), "--rounds-large", str(args.rounds_large),
           "--results-dir", str(args.results_dir)]
    if args.questions:
        cmd += ["--questions", args.questions]
    if args.single_thread_check:
        cmd += ["--single-thread-check"]
    log(f"worker {name}: starting (time limit {timeout:.0f}s)")
    env = child_env()
    env["ADVISOR_BENCH_T0"] = str(_T0)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=None, env=env, cwd=str(ROOT),
                            start_new_session=True)
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t > timeout:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if result_file.exists() and not timed_out and proc.returncode == 0:
        fig = json.loads(result_file.read_text())
        fig["worker_wall_s"] = wall
        log(f"worker {name}: done in {wall:.0f}s")
        return fig
    log(f"worker {name}: {'timed out' if timed_out else f'failed (exit {proc.returncode})'}")
    return {"corpus": name, "error": "timed out" if timed_out else f"exit {proc.returncode}", "worker_wall_s": wall}


# ---------------------------------------------------------------------------------------- report

def _ms(s: dict | None, key: str = "p50") -> str:
    return "–" if not s else f"{s[key]:.0f}"


def _pp(s: dict | None) -> str:
    return "–" if not s else f"{s['p50']:.0f} / {s['p95']:.0f}"


def _secs(x) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:.0f}"


def _label(f: dict) -> str:
    return "shipped" if f["corpus"] == "shipped" else f"{int(f['corpus']):,} chunks"


def render(figs: list[dict], starts: dict, meta: dict) -> str:
    ok = [f for f in figs if "error" not in f]
    lines = [
        f"# Retrieval benchmark, {meta['date']}",
        "",
        f"Machine: {meta['machine']}. Torch threads: {meta['threads']}. Load average at start "
        f"{meta['load_start']:.2f}, at end {meta['load_end']:.2f} (other work was running: timings are noisy). "
        f"Questions: {meta['questions']}; latencies over {meta['rounds']} round(s) of them "
        f"({meta['rounds_large']} on generated corpora), model already loaded, in ms as p50 / p95. "
        f"Whole run: {meta['wall_s']:.0f} s.",
        "",
        "Labels: **[real]** index vectors from the real all-MiniLM-L6-v2; **[gen]** generated index vectors "
        "(real vectors of the shipped sentences mixed with random unit vectors; queries still go through the "
        "real model); **[est]** extrapolated from the real model's throughput measured on a sample.",
        "",
    ]
    for f in figs:
        if "error" in f:
            lines += [f"**{f['corpus']}: worker {f['error']} after {f['worker_wall_s']:.0f} s; no figures.**", ""]

    lines += ["## Corpora and index build", "",
              "| corpus | docs | chunks | embedded texts (chunk + window + sentence) | read + chunk (s) "
              "| build (s) | build texts/s | real-model build | on disk (MiB) | naive: chunks | naive: build (s) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for f in ok:
        kind = f["build_kind"]
        if kind == "real":
            real = f"{_secs(f['build_s'])} s [real], {f['build_texts_per_s']:.0f} texts/s"
        else:
            real = (f"~{f['real_build_est_s'] / 60:.0f} min [est] at {f['real_texts_per_s']:.0f} texts/s "
                    f"(sample of {f['sample_texts']})")
        nb = f["naive_build"]
        lines.append(
            f"| {_label(f)} | {f['docs']:,} | {f['chunks']:,} | {f['embedded_rows']:,} | {_secs(f['read_chunk_s'])} "
            f"| {_secs(f['build_s'])} [{kind}] | {f['build_texts_per_s']:,.0f} [{kind}] | {real} "
            f"| {f['index_disk_mib']:.0f} | {nb['chunks']:,} | {_secs(nb['total_s'])} [{f['naive_build_kind']}] |")
    lines += ["", "Build (s) includes embedding, writing and FAISS; for [gen] corpora it is everything but the model. "
              "Generated corpora repeat the shipped sentences, so the index embeds each distinct sentence once; "
              "the [est] figure counts every sentence, as a real corpus would have.", ""]

    lines += ["## Query latency (ms, p50 / p95; model loaded)", "",
              "| corpus | index | query embedding | search without embedding | retrieval (`search`) "
              "| full answer (`Engine.answer`) | target (answer p95) | abstained | naive: embed + FAISS top-5 |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for f in ok:
        target = TARGET_SHIPPED_MS if f["corpus"] == "shipped" else (TARGET_LARGE_MS if f["corpus"] >= LARGE else None)
        verdict = "–" if target is None else \
            f"< {target:.0f}: {'**met**' if f['answer']['p95'] < target else '**missed**'}"
        lines.append(
            f"| {_label(f)} | [{f['build_kind']}] | {_pp(f['embed'])} | {_pp(f['search_only'])} | {_pp(f['retrieval'])} "
            f"| {_pp(f['answer'])} | {verdict} | {f['abstained']}/{f['questions']} | {_pp(f['naive_search'])} |")
    if any("answer_1t" in f for f in ok):
        lines += ["", "Same, with `torch.set_num_threads(1)` (diagnostic, not the product's setting):", "",
                  "| corpus | query embedding | full answer |", "|---|---:|---:|"]
        lines += [f"| {_label(f)} | {_pp(f['embed_1t'])} | {_pp(f['answer_1t'])} |" for f in ok if "answer_1t" in f]
    lines.append("")

    lines += ["## Start and memory", "",
              "| corpus | model load (s) | index load: `ensure_index` (s) | of which corpus check (file stamps) | "
              "`IndexStore.load` (BM25 included) | hot swap: `Engine.refresh` (s) | not done: read + chunk corpus "
              "| not done: BM25 build | index in RSS (MiB) | vectors.npy + FAISS copy (MiB) | RSS serving (MiB) "
              "| peak RSS: build / load / queries (MiB) | worker peak RSS (MiB) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for f in ok:
        check = _secs(f.get("load_check_s")) + ("" if f.get("load_fast_path", True) else " (stale: slow path)")
        lines.append(
            f"| {_label(f)} [{f['build_kind']}] | {_secs(f['model_load_s'])} | {_secs(f['ensure_index_s'])} "
            f"| {check} | {_secs(f['load_store_s'])} | {_secs(f.get('swap_s'))} "
            f"| {_secs(f['load_read_chunk_s'])} | {_secs(f['load_bm25_s'])} "
            f"| {f['rss_index_mib']:.0f} | {f['vectors_mib']:.0f} + {f['faiss_mib']:.0f} | {f['rss_serving_mib']:.0f} "
            f"| {f['build_peak_mib']:.0f} / {f['load_peak_mib']:.0f} / {f['query_peak_mib']:.0f} "
            f"| {f['worker_peak_mib']:.0f} |")
    lines.append("")
    if starts:
        lines += ["Process start to first answer: `advisor ask \"" + FIRST_QUESTION + "\"` in a fresh process "
                  "(wall time, includes Python imports and the model load):", "",
                  "| corpus | run | wall (s) | peak RSS (MiB) | note |", "|---|---|---:|---:|---|"]
        for (corpus, run), r in starts.items():
            note = "timed out" if r["timed_out"] else ("index rebuilt" if r["rebuilt"] else "index reused")
            if not r["answered"] and not r["timed_out"]:
                note = f"failed (exit {r['rc']})"
            lines.append(f"| {corpus} | {run} | {_secs(r['wall_s'])} | {r['maxrss_mib']:.0f} | {note} |")
        lines.append("")

    quality = next((f for f in ok if "quality" in f), None)
    if quality:
        q, sp = quality["quality"], quality.get("score_py") or {}
        lines += [f"## Answer quality on the shipped corpus ({quality['questions_from']})", "",
                  "`bot.evaluation.score` and, where named, `shared/eval/score.py` on the same results files. "
                  "Naive: the top passage is the answer.", "",
                  "| figure | advisor | naive |", "|---|---:|---:|"]
        keys = list(q["ours"])
        if "passage_chars_median" in (sp.get("ours") or {}):  # the one score.py figure bot.evaluation.score lacks
            keys.append("passage_chars_median")
        for key in keys:
            ours = q["ours"].get(key, (sp.get("ours") or {}).get(key, "–"))
            theirs = q["naive"].get(key, (sp.get("naive") or {}).get(key, "–"))
            lines.append(f"| {key} | {ours} | {theirs} |")
        if sp.get("ours") and sp.get("naive"):
            same = all(sp["ours"].get(k) == q["ours"][k] for k in q["ours"] if k in sp["ours"])
            lines += ["", f"score.py agrees with bot.evaluation.score on the shared figures: {'yes' if same else 'NO'}."]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=f"10000,{LARGE}", help="generated corpus sizes in chunks (default 10000,100000)")
    parser.add_argument("--quick", action="store_true", help="shipped corpus only")
    parser.add_argument("--out", help="also write the markdown to this file")
    parser.add_argument("--json", help="also write all figures as JSON to this file")
    parser.add_argument("--questions", default=None, help="questions JSONL (default ../shared/eval/dev.jsonl if present)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the questions per latency figure (shipped)")
    parser.add_argument("--rounds-large", type=int, default=1, help="the same for generated corpora (default 1)")
    parser.add_argument("--budget", type=float, default=600, help="stop starting new phases after this many seconds")
    parser.add_argument("--no-start", action="store_true", help="skip the `advisor ask` process-start runs")
    parser.add_argument("--no-single-thread-check", dest="single_thread_check", action="store_false",
                        help="skip the torch.set_num_threads(1) diagnostic")
    parser.add_argument("--single-thread-check", dest="single_thread_check", action="store_true",
                        default=True, help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (generated corpora, indexes)")
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--results-dir", help="where the two eval results files go (default: the work folder)")
    args = parser.parse_args(argv)
    if args.questions is None and (SHARED_EVAL / "dev.jsonl").is_file():
        args.questions = str(SHARED_EVAL / "dev.jsonl")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.worker:
        import logging

        logging.basicConfig(level=logging.WARNING)
        fig = worker(args)
        Path(args.result).write_text(json.dumps(fig, default=float))
        return 0

    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="advisor-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    args.results_dir = args.results_dir or str(workdir / "results")
    sizes = [] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    log(f"work folder {workdir}; corpora: shipped{''.join(f', {s:,}' for s in sizes)}")

    def remaining() -> float:
        return args.budget - (time.perf_counter() - started)

    figs, starts = [], {}
    try:
        figs.append(run_worker("shipped", args, workdir, timeout=max(60.0, min(300.0, remaining()))))
        if not args.no_start:
            cold = workdir / "start-data"
            log("advisor ask: cold (fresh data dir, builds the index)")
            starts[("shipped", "cold: fresh data dir, builds the index [real]")] = ask(str(SHIPPED_CORPUS), str(cold), 180)
            for n in (1, 2):
                log(f"advisor ask: warm run {n}")
                starts[("shipped", f"warm {n}: index built [real]")] = ask(str(SHIPPED_CORPUS), str(cold), 120)
        for size in sizes:
            limit = remaining() - 30
            if limit < 60:
                log(f"skipping {size:,} chunks: out of time budget")
                figs.append({"corpus": size, "error": "skipped (time budget)", "worker_wall_s": 0.0})
                continue
            fig = run_worker(str(size), args, workdir, timeout=limit)
            figs.append(fig)
            if not args.no_start and "error" not in fig and fig.get("ensure_index_embedded") == 0:
                if remaining() > 60:
                    log(f"advisor ask on {size:,} chunks (index already built)")
                    starts[(f"{size:,} chunks", "warm: index built [gen]")] = ask(
                        fig["corpus_dir"], fig["data_dir"], min(240.0, remaining()))
            shutil.rmtree(workdir / f"gen-{size}", ignore_errors=True)  # up to ~1 GiB each
        meta = {
            "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.node() or 'host'}, {os.cpu_count()} cores, "
                       f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
                       f"Python {platform.python_version()}",
            "threads": next((f["torch_threads"] for f in figs if "torch_threads" in f), "?"),
            "load_start": load_start, "load_end": os.getloadavg()[0],
            "questions": next((f"{f['questions']} from {f['questions_from']}" for f in figs if "questions" in f), "?"),
            "rounds": args.rounds, "rounds_large": args.rounds_large, "wall_s": time.perf_counter() - started,
        }
        report = render(figs, starts, meta)
        print(report)
        if args.out:
            Path(args.out).write_text(report + "\n", encoding="utf-8")
        if args.json:
            slim = {"meta": meta, "figures": figs,
                    "starts": [{"corpus": c, "run": r, **{k: v for k, v in s.items() if k not in ("stdout", "stderr")}}
                               for (c, r), s in starts.items()]}
            Path(args.json).write_text(json.dumps(slim, indent=1, default=float), encoding="utf-8")
        results = next((f.get("results_files") for f in figs if f.get("results_files")), None)
        if results:
            log(f"eval results files: {', '.join(results)}")
    finally:
        if not args.keep:
            keep_results = Path(args.results_dir).resolve().is_relative_to(workdir.resolve())
            for child in workdir.iterdir():
                if keep_results and child.name == "results":
                    continue
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
