"""A corpus grown with more documents: the shipped one plus a folder of others, kept in step in one folder."""

from __future__ import annotations

import shutil
from pathlib import Path


def grow_corpus(corpus: Path, added: Path, target: Path) -> Path:
    """Copy the corpus's files and those of `added` into `target` (only those changed since the last copy,
    and none left there that neither folder holds now), so that an index of `target` is rebuilt only for
    what changed. Returns `target`."""
    target.mkdir(parents=True, exist_ok=True)
    sources = {p.name: p for folder in (corpus, added) for p in sorted(Path(folder).iterdir()) if p.is_file()}
    for stale in target.iterdir():
        if stale.is_file() and stale.name not in sources:
            stale.unlink()
    for name, path in sources.items():
        copy = target / name
        if not copy.exists() or copy.read_bytes() != path.read_bytes():
            shutil.copyfile(path, copy)
    return target
