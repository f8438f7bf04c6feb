"""The `advisor` command's entry point: the parser from each command's module, and errors mapped to one line."""

from __future__ import annotations

import argparse
import os
import sys

from bot import logs
from bot.cli import ask, calibrate, corpus, evaluate, index, report, serve, store
from bot.cli.common import EXIT_USAGE
from retrieval.errors import AdvisorError

__all__ = ["EXIT_USAGE", "build_parser", "main"]

COMMANDS = (ask, index, evaluate, calibrate, serve, corpus, report, store)  # in the order `advisor --help` lists them


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
    for command in COMMANDS:
        command.register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        logs.setup(args.verbose)  # ADVISOR_LOG_FORMAT=json|text; tokens and secrets redacted
        return args.func(args)
    except AdvisorError as exc:  # bad input, settings, files: one line saying what to do, never a traceback
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
