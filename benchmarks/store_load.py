"""The store under many concurrent writers: processes x threads saving answers, verdicts and racing event claims.

    python benchmarks/store_load.py     # SQLite in a temporary folder, and PostgreSQL: ADVISOR_DATABASE_URL, else
                                        # a throwaway server on 127.0.0.1 (fsync on) when the binaries exist
    python benchmarks/store_load.py --processes 8 --threads 8 --writes 200

Every writer saves `--writes` answers and a verdict on each, and claims the same `--writes` event ids as every other
writer (each id must be won exactly once, as a Slack retry reaching several replicas is). At the end the store is
counted: nothing lost, nothing doubled. Prints throughput and per-call latency (p50 / p95 / max, ms) per operation.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _open(target: str):
    if target.startswith("postgres"):
        from bot.store.postgres import PostgresStore

        return PostgresStore(target, salt="load", pool_size=8)
    from bot.store import Store

    return Store(target, salt="load")


def _writer(target: str, process: int, threads: int, writes: int, start, results) -> None:
    """One process: its own store (connection or pool), `threads` threads writing at once."""
    from retrieval.vocabulary import Question
    from retrieval.vocabulary import Answer, AnswerSentence, Citation

    store = _open(target)
    answer = Answer("does a Series A startup hire ML PMs?", "Rarely. [1]",
                    (Citation(1, "guide", "A guide", "Hiring", "Series A startups rarely hire ML PMs.", "guide#1"),),
                    sentences=(AnswerSentence("Rarely.", 1),))
    timings: dict[str, list[float]] = {"save_answer": [], "save_feedback": [], "claim_event": []}
    won: list[str] = []
    errors: list[str] = []

    def work(thread: int) -> None:
        for i in range(writes):
            answer_id = f"p{process}-t{thread}-{i}"
            question = Question(answer.question, user=f"U{process}-{thread}", platform="slack", channel="C1",
                                thread=f"{process}.{thread}")
            try:
                for name, call in (("save_answer", lambda: store.save_answer(answer_id, question, answer, 0.01)),
                                   ("save_feedback", lambda: store.save_feedback(answer_id, i % 2 == 0,
                                                                                f"R{thread}", "slack")),
                                   ("claim_event", lambda: store.claim_event(f"slack:Ev{i}"))):
                    started = time.perf_counter()
                    result = call()
                    timings[name].append(time.perf_counter() - started)
                    if name == "claim_event" and result:
                        won.append(f"slack:Ev{i}")
            except Exception as exc:  # noqa: BLE001 - counted and reported: a lost write is the finding
                errors.append(f"{type(exc).__name__}: {exc}")

    start.wait(120)
    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    store.close()
    results.put((timings, won, errors))


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(target: str, processes: int = 4, threads: int = 4, writes: int = 50) -> dict:
    """Run the load against `target` (a SQLite path or a postgresql:// URL); returns the figures and the counts."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(processes + 1), context.Queue()
    _open(target).close()  # the schema, once, before the writers race
    workers = [context.Process(target=_writer, args=(target, p, threads, writes, start, results))
               for p in range(processes)]
    for w in workers:
        w.start()
    start.wait(120)
    began = time.perf_counter()
    gathered = [results.get(timeout=600) for _ in workers]
    seconds = time.perf_counter() - began
    for w in workers:
        w.join(60)
    timings: dict[str, list[float]] = {}
    won, errors = [], []
    for t, w, e in gathered:
        for name, values in t.items():
            timings.setdefault(name, []).extend(values)
        won += w
        errors += e
    store = _open(target)
    answers, feedback = store.count("answers"), store.count("feedback")
    store.close()
    writers = processes * threads
    calls = sum(len(v) for v in timings.values())
    return {
        "writers": writers, "seconds": round(seconds, 2), "calls_per_second": round(calls / seconds),
        "answers": answers, "expected_answers": writers * writes, "feedback": feedback,
        "events_won": len(won), "distinct_events_won": len(set(won)), "expected_events": writes, "errors": errors,
        "latency_ms": {name: (round(statistics.median(v) * 1000, 2), round(_ms(v, 0.95), 2), round(max(v) * 1000, 2))
                       for name, v in timings.items() if v},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--writes", type=int, default=100, help="answers (and verdicts, and claims) per writer")
    args = parser.parse_args()
    targets, stop_server = [], None
    folder = tempfile.mkdtemp(prefix="advisor-store-load-")
    targets.append(("SQLite", str(Path(folder) / "advisor.sqlite3")))
    url = os.environ.get("ADVISOR_DATABASE_URL", "").strip()
    if not url:
        from tests import pg_server

        if pg_server.binaries() is not None:
            url, server = pg_server.start(durable=True)  # commits flushed, as in production
            stop_server = lambda: pg_server.stop(server)  # noqa: E731
    if url:
        targets.append(("PostgreSQL", url))
    try:
        print(f"{args.processes} processes x {args.threads} threads, {args.writes} answers + verdicts + claims each; "
              f"{os.cpu_count()} cores")
        print("| store | writers | calls/s | answers | verdicts | events won (distinct / expected) | errors | "
              "save_answer ms p50/p95/max | save_feedback | claim_event |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        failed = False
        for name, target in targets:
            f = run(target, args.processes, args.threads, args.writes)
            lat = f["latency_ms"]
            latency = " | ".join("/".join(f"{x:g}" for x in lat[k]) for k in ("save_answer", "save_feedback",
                                                                                 "claim_event"))
            print(f"| {name} | {f['writers']} | {f['calls_per_second']:,} | "
                  f"{f['answers']:,} / {f['expected_answers']:,} | {f['feedback']:,} | "
                  f"{f['events_won']} ({f['distinct_events_won']} / {f['expected_events']}) | "
                  f"{len(f['errors'])} | {latency} |")
            failed |= bool(f["errors"]) or f["answers"] != f["expected_answers"] or f["feedback"] != f["answers"] \
                or f["events_won"] != f["expected_events"] or f["distinct_events_won"] != f["expected_events"]
            for error in f["errors"][:5]:
                print(f"  {name} error: {error}")
        return 1 if failed else 0
    finally:
        if stop_server is not None:
            stop_server()


if __name__ == "__main__":
    sys.exit(main())
