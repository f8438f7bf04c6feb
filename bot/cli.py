"""The `advisor` command: thin subcommands that load settings, configure logging and run."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from bot import logs
from bot.settings import Settings, SettingsError

logger = logging.getLogger("advisor")

EXIT_USAGE = 2


def _settings(args) -> Settings:
    return Settings.from_env(corpus=args.corpus, data_dir=args.data_dir, model=args.model)


def warn(warnings) -> None:
    """Warnings the user must see (a skipped file), once each, on stderr."""
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _progress_bar():
    """A tqdm progress callback for index builds, shown only on a terminal."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="text", desc="Embedding", disable=not sys.stderr.isatty() or total == 0)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def _advisor(args):
    from bot.core import Advisor

    advisor = Advisor.from_settings(_settings(args))
    status = advisor.prepare(progress=_progress_bar())
    warn(status.warnings)
    if status.rebuilt:
        print(f"Indexed {status.chunks} passages ({status.embedded} newly embedded).", file=sys.stderr)
    return advisor


def cmd_ask(args) -> int:
    from bot.core import Question
    from bot.render_text import to_text
    from retrieval.engine import check_question

    text = " ".join(args.question)
    check_question(text)  # fail fast, before the model loads
    advisor = _advisor(args)
    answer = advisor.answer(Question(text=text, platform="cli"))
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(to_text(answer))
    return 0


def cmd_index(args) -> int:
    from bot.core import Advisor

    advisor = Advisor.from_settings(_settings(args))
    status = advisor.prepare(force=True, progress=_progress_bar())
    warn(status.warnings)
    print(f"Indexed {status.chunks} passages from {len(advisor.engine.documents)} documents "
          f"({status.embedded} newly embedded, the rest reused) into {advisor.engine.store.folder}.")
    from bot.corpus_follow import tell_other_hosts

    note = tell_other_hosts(_settings(args), advisor.engine)  # hosts sharing ADVISOR_DATABASE_URL rebuild to it
    if note:
        print(note)
    return 0


def cmd_eval(args) -> int:
    from bot.evaluation import load_questions, run_eval

    load_questions(Path(args.questions))  # a malformed file fails before the model loads
    advisor = _advisor(args)
    figures = run_eval(advisor, Path(args.questions), Path(args.out))
    for key, value in figures.items():
        print(f"{key:26} {value}")
    return 0


def cmd_calibrate(args) -> int:
    from bot.calibration import calibrate

    if args.folds == 1 or args.folds < 0:
        raise SettingsError("--folds must be 0 (no cross-validation) or 2 or more, e.g. --folds 5")
    from retrieval.calibration import calibration_file

    advisor = _advisor(args)
    # default: the data folder, one file per model (never into the installed package)
    out = Path(args.out) if args.out else calibration_file(_settings(args).data_dir, advisor.engine.embedder.name)
    report = calibrate(advisor, Path(args.questions), out=out, folds=args.folds)
    for key, value in report.items():
        if isinstance(value, dict) and key not in ("abstainer", "style"):
            print(f"{key}:")
            for name, figure in value.items():
                print(f"  {name:26} {figure}")
        else:
            print(f"{key:14} {value}")
    return 0


def cmd_serve(args) -> int:
    """Run one platform adapter; each adapter module has a `run(settings, args)`."""
    import importlib

    module = importlib.import_module(f"bot.{args.platform}_adapter")
    return module.run(_settings(args), args) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="advisor", description="Career advice for PMs, answered from documents with citations.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", help="corpus folder (default: $ADVISOR_CORPUS or ./corpus)")
    common.add_argument("--data-dir", help="where the index and store live (default: $ADVISOR_DATA_DIR or ./.advisor)")
    common.add_argument("--model",
                        help="sentence-transformers model name or folder (default: all-MiniLM-L6-v2, offline)")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = sub.add_parser("ask", parents=[common], help="answer one question")
    ask.add_argument("question", nargs="+", help="the question")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.set_defaults(func=cmd_ask)

    index = sub.add_parser("index", parents=[common], help="rebuild the index now")
    index.set_defaults(func=cmd_index)

    ev = sub.add_parser("eval", parents=[common], help="answer a labelled question set and score it")
    ev.add_argument("--questions", required=True, help="JSONL of questions (id, question, kind, evidence)")
    ev.add_argument("--out", required=True, help="where to write one result line per question")
    ev.set_defaults(func=cmd_eval)

    cal = sub.add_parser("calibrate", parents=[common],
                         help="fit the ranking, the answer style and when to say 'not covered' on a labelled set")
    cal.add_argument("--questions", required=True, help="JSONL with kind=out_of_scope for questions to refuse")
    cal.add_argument("--out", help="where to save (default: DATA_DIR/calibration/MODEL.json, used from then on "
                          "with that model)")
    cal.add_argument("--folds", type=int, default=0,
                     help="first fit on all folds but one and score the one left out, for each of N folds, "
                          "and print those figures (default 0: no cross-validation)")
    cal.set_defaults(func=cmd_calibrate)

    serve = sub.add_parser("serve", help="run the bot on a platform")
    platforms = serve.add_subparsers(dest="platform", metavar="PLATFORM", required=True)
    slack = platforms.add_parser("slack", parents=[common], help="the Slack app (Socket Mode, or --http)")
    slack.add_argument("--http", action="store_true", help="serve the HTTP Events API instead of Socket Mode")
    slack.add_argument("--port", type=int, default=3000, help="HTTP port with --http (default 3000)")
    slack.add_argument("--host", default="127.0.0.1",
                       help="address to listen on with --http (default 127.0.0.1; 0.0.0.0 in a container)")
    platforms.add_parser("discord", parents=[common], help="the Discord app")
    platforms.add_parser("console", parents=[common], help="chat in this terminal")
    serve.set_defaults(func=cmd_serve)
    chat = sub.add_parser("chat", parents=[common], help="chat in this terminal (same as `serve console`)")
    chat.set_defaults(func=cmd_serve, platform="console")

    from bot import cli_corpus, cli_report  # each registers its own subcommands
    from bot.store import command as store_command

    cli_corpus.register(sub, common)
    cli_report.register(sub, common)
    store_command.register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    from bot.evaluation import QuestionsFileError
    from bot.report import ReportError
    from bot.store import StoreError
    from retrieval.corpus_admin import CorpusChangeError
    from retrieval.documents import CorpusError
    from retrieval.embedding import ModelError
    from retrieval.engine import QuestionError
    from retrieval.index_store import IndexDamagedError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        logs.setup(args.verbose)  # ADVISOR_LOG_FORMAT=json|text; tokens and secrets redacted
        return args.func(args)
    except (QuestionError, CorpusError, ModelError, IndexDamagedError, SettingsError, QuestionsFileError,
            ReportError, CorpusChangeError, StoreError) as exc:
        print(f"advisor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `advisor ask ... | head`: the reader has all it wanted
        try:  # and Python's own flush at exit must not complain either
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0
    except OSError as exc:
        print(f"advisor: {exc.strerror or exc} ({exc.filename or 'file'}); check the path and its permissions.",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
