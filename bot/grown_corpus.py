"""A corpus grown with more documents: the shipped one plus a folder of others, kept in step in one folder."""

from __future__ import annotations

import shutil
from pathlib import Path


class CorpusClash(ValueError):
    """Both folders hold a file at the same place: one would hide the other."""


def grow_corpus(corpus: Path, added: Path, target: Path) -> Path:
    """Copy the files of the corpus and of `added` (their subfolders too) into `target`, only those changed
    since the last copy, and remove those neither folder holds now, so that an index of `target` is rebuilt
    only for what changed. Returns `target`; a file at the same place in both folders is refused."""
    sources: dict[Path, Path] = {}
    for folder in (Path(corpus), Path(added)):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                place = path.relative_to(folder)
                if place in sources:
                    raise CorpusClash(f"{sources[place]} and {path} would be the same document of the grown "
                                      "corpus; rename one of them")
                sources[place] = path
    target.mkdir(parents=True, exist_ok=True)
    for stale in sorted(target.rglob("*")):
        if stale.is_file() and stale.relative_to(target) not in sources:
            stale.unlink()
    for place, path in sources.items():
        copy = target / place
        if not copy.exists() or copy.read_bytes() != path.read_bytes():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
    return target
