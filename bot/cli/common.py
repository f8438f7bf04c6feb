"""What the commands share: settings from the options, warnings on stderr, the progress bar, a prepared advisor."""

from __future__ import annotations

import sys

from bot.settings import Settings

EXIT_USAGE = 2


def settings(args) -> Settings:
    """The settings, the common options (--corpus, --data-dir, --model) over the environment."""
    return Settings.from_env(corpus=args.corpus, data_dir=args.data_dir, model=args.model)


def warn(warnings) -> None:
    """Warnings the user must see (a skipped file), once each, on stderr."""
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def progress_bar():
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


def prepared_advisor(args, chosen: Settings | None = None, embedder=None, corpus_name: str = ""):
    """The advisor with its index loaded or built (skipped files warned about, a rebuild said, naming the
    corpus when given); by default of the options' settings, with a model of its own."""
    from bot.core import Advisor

    advisor = Advisor.from_settings(chosen or settings(args), embedder=embedder)
    status = advisor.prepare(progress=progress_bar())
    warn(status.warnings)
    if status.rebuilt:
        named = f"{corpus_name}: " if corpus_name else ""
        print(f"Indexed {named}{status.chunks} passages ({status.embedded} newly embedded).", file=sys.stderr)
    return advisor
