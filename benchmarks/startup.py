#!/usr/bin/env python3
"""Start-up and latency-under-load benchmark: prints a markdown report, then stops (a script, not a timed test).

What it measures, on the shipped corpus with the real all-MiniLM-L6-v2:

- **Start-up**: CPU time (user + sys, from wait4) and wall time of a fresh process running
  `advisor ask "does a Series A startup hire ML PMs?"` with the index built, against `python -c "import
  sentence_transformers"`, both on the fast path (questions encoded by the ONNX export) and on the full
  path (sentence-transformers, as for a model that cannot be exported), each repeated and reported as
  median and min (other work on the machine makes single runs noisy).
- **Latency under load**: answer latency p50/p95 (`Advisor.answer`, model loaded, each question once per
  round) and the query encoding alone, for the ONNX encoder and for sentence-transformers, each on 1 and 2
  threads; quiet, then with a second process keeping one core busy while it measures. Each configuration
  runs in its own worker process, so the fast path's workers never import torch.

Usage:
    python benchmarks/startup.py                     # builds an index in a temp folder (about 3 minutes)
    python benchmarks/startup.py --repeat 3 --rounds 1 --data-dir /tmp/advisor-data
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHIPPED_CORPUS = ROOT / "corpus"
QUESTION = "does a Series A startup hire ML PMs?"
OWN_QUESTIONS = [
    "does a Series A startup hire ML PMs?", "what do AI PMs earn compared to ML PMs?", "and at Series B?",
    "how do I prepare for an ML PM interview loop?", "which role has more technical interview rounds?",
    "is a data PM role a good path into AI PM?", "how do I boil pasta?", "what skills matter most for an AI PM?",
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def questions() -> list[str]:
    """The labelled sets' questions from shared/eval beside the checkout (or its folder), else a few of ours."""
    for shared in (ROOT.parent / "shared" / "eval", ROOT.parent.parent / "shared" / "eval"):
        files = [shared / "dev.jsonl", shared / "dev2.jsonl"]
        if all(f.is_file() for f in files):
            return [json.loads(line)["question"] for f in files for line in f.read_text().splitlines() if line.strip()]
    return OWN_QUESTIONS


def advisor_script() -> str:
    script = Path(sys.executable).with_name("advisor")
    return str(script) if script.exists() else shutil.which("advisor") or "advisor"


def timed_run(command: list[str], env: dict) -> tuple[float, float]:
    """(CPU seconds, user + sys, of the process and its children; wall seconds) of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err}")
    return usage.ru_utime + usage.ru_stime, wall


def make_full_path_copy(data: Path, target: Path) -> Path:
    """A copy of the data folder whose query-encoder record says the model could not be exported: what a
    model the export cannot reproduce gets, so questions go to sentence-transformers (the full import)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(data, target, symlinks=True)
    for record_path in target.glob("index/*/query-encoder/encoder.json"):
        record = json.loads(record_path.read_text())
        record.update(exportable=False, reason="benchmark: the full path, on purpose")
        record_path.write_text(json.dumps(record))
    return target


def startup(data: Path, full: Path, env: dict, repeat: int) -> list[dict]:
    runs = {
        "`import sentence_transformers`": [sys.executable, "-c", "import sentence_transformers"],
        "`advisor ask` (ONNX query encoder)": [advisor_script(), "ask", QUESTION, "--data-dir", str(data)],
        "`advisor ask` (full path: sentence-transformers)": [advisor_script(), "ask", QUESTION, "--data-dir",
                                                              str(full)],
    }
    figures = {name: [] for name in runs}
    for i in range(repeat):  # interleaved, so that a burst of other work on the machine hits all alike
        for name, command in runs.items():
            figures[name].append(timed_run(command, env))
        log(f"start-up round {i + 1}/{repeat} done")
    out = []
    for name, samples in figures.items():
        cpu, wall = [s[0] for s in samples], [s[1] for s in samples]
        out.append({"what": name, "cpu_median": statistics.median(cpu), "cpu_min": min(cpu),
                    "wall_median": statistics.median(wall), "wall_min": min(wall)})
    return out


WORKER = r"""
import json, resource, sys, time
import numpy as np
from bot.core import Advisor, Question
from bot.settings import Settings
data, threads, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
questions = json.loads(sys.stdin.read())
advisor = Advisor.from_settings(Settings(corpus_dir=__import__("pathlib").Path(sys.argv[4]),
                                         data_dir=__import__("pathlib").Path(data), query_threads=threads))
advisor.prepare()
engine = advisor.engine
embedder = engine.query_embedder
for q in questions[:5]:
    advisor.answer(Question(text=q))
answer_ms, encode_ms = [], []
cpu0 = time.process_time()
for _ in range(rounds):
    for q in questions:
        t = time.perf_counter(); advisor.answer(Question(text=q)); answer_ms.append((time.perf_counter() - t) * 1000)
cpu_answer = (time.process_time() - cpu0) / len(answer_ms) * 1000
for _ in range(rounds):
    for q in questions:
        t = time.perf_counter(); embedder.embed([q]); encode_ms.append((time.perf_counter() - t) * 1000)
print(json.dumps({"fast": bool(getattr(embedder, "fast", False)), "torch": "torch" in sys.modules,
                  "answer": [float(np.percentile(answer_ms, 50)), float(np.percentile(answer_ms, 95))],
                  "encode": [float(np.percentile(encode_ms, 50)), float(np.percentile(encode_ms, 95))],
                  "cpu_ms_per_answer": cpu_answer}))
"""


def latency(data: Path, full: Path, env: dict, rounds: int) -> list[dict]:
    qs = json.dumps(questions())
    configs = [("ONNX", data, 1), ("ONNX", data, 2), ("sentence-transformers", full, 1),
               ("sentence-transformers", full, 2)]
    out = []
    for loaded in (False, True):
        load_avg = os.getloadavg()[0]
        hog = None
        if loaded:  # a second process keeping one core busy for as long as the measurements run
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.5)
        try:
            for encoder, folder, threads in configs:
                proc = subprocess.run([sys.executable, "-c", WORKER, str(folder), str(threads), str(rounds),
                                       str(SHIPPED_CORPUS)], input=qs, env=env, cwd=ROOT, capture_output=True,
                                      text=True, timeout=900)
                if proc.returncode != 0:
                    raise SystemExit(f"latency worker failed:\n{proc.stderr}")
                fig = json.loads(proc.stdout.strip().splitlines()[-1])
                fig.update(encoder=encoder, threads=threads, load_avg=load_avg,
                           load="+ one core kept busy" if loaded else "as found")
                out.append(fig)
                log(f"latency {fig['load']}, {encoder}, {threads} thread(s): answer p95 {fig['answer'][1]:.1f} ms")
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    return out


def report(start: list[dict], lat: list[dict], build: tuple[float, float] | None, n_questions: int, rounds: int,
           repeat: int, load_before: float) -> str:
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## Start-up and latency under load, {when}", "",
             f"Machine: {platform.node() and 'vm'}, {os.cpu_count()} cores, Python {platform.python_version()}. "
             f"Load average at start {load_before:.2f}, at end {os.getloadavg()[0]:.2f} (other work shares the "
             "cores: timings are noisy; CPU time is the steadier figure).", ""]
    if build is not None:
        lines += [f"Index build of the shipped corpus with the ONNX export (`advisor index`, fresh data folder): "
                  f"{build[0]:.1f} cpu-s, {build[1]:.1f} s wall.", ""]
    ref = next(s for s in start if "import" in s["what"])
    lines += [f"### Start-up: a fresh process, index built ({repeat} runs each, median / min)", "",
              "| process | CPU user+sys (s) | wall (s) | CPU vs `import sentence_transformers` |",
              "|---|---:|---:|---:|"]
    for s in start:
        lines.append(f"| {s['what']} | {s['cpu_median']:.2f} / {s['cpu_min']:.2f} | {s['wall_median']:.2f} / "
                     f"{s['wall_min']:.2f} | {s['cpu_median'] / ref['cpu_median']:.0%} |")
    lines += ["", f"### Latency: {n_questions} questions x {rounds} round(s), model loaded, ms p50 / p95", "",
              "\"as found\": with whatever else runs on the machine (its load average beside it); \"+ one core kept "
              "busy\": a second process spinning on one core as well, for as long as the measurements run.", "",
              "| load (load avg) | query encoder | threads | full answer | query encoding | CPU per answer (ms) | "
              "torch imported |", "|---|---|---:|---:|---:|---:|---|"]
    for f in lat:
        lines.append(f"| {f['load']} ({f['load_avg']:.1f}) | {f['encoder']} | {f['threads']} | "
                     f"{f['answer'][0]:.1f} / {f['answer'][1]:.1f} | {f['encode'][0]:.1f} / {f['encode'][1]:.1f} | "
                     f"{f['cpu_ms_per_answer']:.1f} | "
                     f"{'yes' if f['torch'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="a data folder to use (built there first if it has no index)")
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per start-up figure (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions per latency figure")
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(HF_HUB_OFFLINE="1", ADVISOR_CORPUS=str(SHIPPED_CORPUS))
    work = Path(tempfile.mkdtemp(prefix="advisor-startup-"))
    data = Path(args.data_dir) if args.data_dir else work / "data"
    build = None
    try:
        if not list(data.glob("index/*/query-encoder/encoder.json")):
            log(f"building the index and its ONNX export in {data}")
            build = timed_run([advisor_script(), "index", "--data-dir", str(data)], env)
        timed_run([advisor_script(), "ask", QUESTION, "--data-dir", str(data)], env)  # warm the file cache
        full = make_full_path_copy(data, work / "full-path")
        start = startup(data, full, env, args.repeat)
        lat = latency(data, full, env, args.rounds)
        text = report(start, lat, build, len(questions()), args.rounds, args.repeat, load_before)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
