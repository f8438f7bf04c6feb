"""`advisor calibrate`: fit the ranking, the answer style and when to say "not covered" on labelled questions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path


def register(sub, common) -> None:
    """Add `calibrate` to the `advisor` parser (`common` holds the shared options)."""
    cal = sub.add_parser("calibrate", parents=[common],
                         help="fit the ranking, the answer style and when to say 'not covered' on a labelled set")
    cal.add_argument("--questions", required=True, help="JSONL with kind=out_of_scope for questions to refuse")
    cal.add_argument("--out", help="where to save (default: DATA_DIR/calibration/MODEL.json, used from then on "
                          "with that model)")
    cal.add_argument("--folds", type=int, default=0,
                     help="first fit on all folds but one and score the one left out, for each of N folds, "
                          "and print those figures (default 0: no cross-validation)")
    cal.add_argument("--grown-with", metavar="FOLDER",
                     help="also choose the ranking on the corpus with FOLDER's documents added (e.g. the "
                          "repository's benchmarks/distractors), so that it holds when a team adds documents; "
                          "that corpus's index is kept in DATA_DIR/calibration-grown")
    cal.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args) -> int:
    from bot.calibration import calibrate
    from bot.cli.common import prepared_advisor, settings
    from bot.settings import SettingsError

    if args.folds == 1 or args.folds < 0:
        raise SettingsError("--folds must be 0 (no cross-validation) or 2 or more, e.g. --folds 5")
    from retrieval.calibration import calibration_file

    advisor = prepared_advisor(args)
    # default: the data folder, one file per model (never into the installed package)
    out = Path(args.out) if args.out else calibration_file(settings(args).data_dir, advisor.engine.embedder.name)
    grown = grown_advisor(args, advisor) if args.grown_with else None
    report = calibrate(advisor, Path(args.questions), out=out, folds=args.folds, grown=grown)
    for key, value in report.items():
        if isinstance(value, dict) and key not in ("abstainer", "style"):
            print(f"{key}:")
            for name, figure in value.items():
                print(f"  {name:26} {figure}")
        else:
            print(f"{key:14} {value}")
    return 0


def grown_advisor(args, advisor):
    """An advisor over the corpus with the documents of --grown-with added, sharing the advisor's model."""
    from bot.cli.common import prepared_advisor, settings
    from bot.grown_corpus import CorpusClash, grow_corpus
    from bot.settings import SettingsError

    added = Path(args.grown_with).expanduser()
    if not added.is_dir():
        what = "not a folder" if added.exists() else "no such folder"
        raise SettingsError(f"--grown-with {added}: {what}; pass a folder of documents to add "
                            "(e.g. benchmarks/distractors)")
    base = settings(args)
    folder = base.data_dir / "calibration-grown"
    try:
        corpus = grow_corpus(base.corpus_dir, added, folder / "corpus")
    except CorpusClash as exc:
        raise SettingsError(f"--grown-with {added}: {exc}") from None
    return prepared_advisor(args, replace(base, corpus_dir=corpus, data_dir=folder), advisor.engine.embedder,
                            corpus_name="the grown corpus")
