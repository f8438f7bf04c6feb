"""Generations of an index folder: written aside, switched to by one atomic rename of `current`, one writer at a
time (a file lock), and readers holding a generation against pruning until they have read it."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
from pathlib import Path

from retrieval.errors import AdvisorError
from retrieval.integrity import fsync_files, fsync_write

logger = logging.getLogger(__name__)

CURRENT = "current"
READERS = ".readers"  # in each generation: readers hold a shared lock on it, pruning needs an exclusive one
MANIFEST = "manifest.json"


class IndexDamagedError(AdvisorError):
    """The index on disk cannot be used; the message says what to do."""


class Generations:
    """One index folder's generations and the `current` link between them."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._depth = 0  # how deep this process is inside `locked()`: the flock is taken once
        self._thread_lock = threading.RLock()

    def damaged(self, why: str) -> IndexDamagedError:
        return IndexDamagedError(
            f"The index in {self.folder} is damaged: {why}. Run `advisor index` to rebuild it."
        )

    @contextlib.contextmanager
    def locked(self):
        """Hold the writers' lock (reentrant within this instance): builds and corpus changes go one at a time."""
        with self._thread_lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / ".lock", "w") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def current_name(self) -> str | None:
        """The generation `current` points at (one readlink: cheap enough to call before every question)."""
        try:
            return os.readlink(self.folder / CURRENT)
        except OSError:
            return None

    def current(self) -> Path | None:
        """The generation folder `current` points at; None when there is no index yet.

        Raises:
            IndexDamagedError: `current` is (or points at) a file rather than a generation folder.
        """
        link = self.folder / CURRENT
        if not link.is_symlink() and not link.exists():
            return None
        gen = self.folder / os.readlink(link) if link.is_symlink() else link
        if gen.exists() and not gen.is_dir():
            raise self.damaged(f"{CURRENT} is a file, not a generation folder")
        return gen

    @contextlib.contextmanager
    def reading(self):
        """The current generation (or None), held against pruning by another process until the block ends."""
        for _ in range(5):
            gen = self.current()
            if gen is None:
                yield None
                return
            try:
                handle = open(gen / READERS, "rb")
            except FileNotFoundError:
                continue  # pruned between reading `current` and opening: read `current` again
            with handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                if (gen / READERS).exists():  # not renamed away for pruning while we waited
                    yield gen
                    return
        raise self.damaged("its current generation keeps disappearing while being read")

    def new(self) -> Path:
        """A fresh folder to write a generation into (published by `publish`, or removed on failure)."""
        tmp = self.folder / f".gen-{time.time_ns()}.tmp"
        tmp.mkdir(parents=True)
        return tmp

    def publish(self, tmp: Path, manifest: bytes) -> Path:
        """Make the files in `tmp` durable, write the manifest last, switch `current` to it in one rename, and
        remove the generations it supersedes."""
        fsync_files(tmp)  # every file the build wrote (bm25s's too): durable before the switch
        fsync_write(tmp / MANIFEST, manifest)
        (tmp / READERS).touch()
        gen = self.folder / tmp.name[1:].removesuffix(".tmp")
        os.rename(tmp, gen)
        link_tmp = self.folder / f".{CURRENT}.{gen.name}"
        os.symlink(gen.name, link_tmp)
        os.replace(link_tmp, self.folder / CURRENT)  # the atomic switch
        self._remove_old(keep=gen.name)
        return gen

    def _remove_old(self, keep: str) -> None:
        """Delete superseded generations, except one another process is still loading (left for next time)."""
        for path in self.folder.iterdir():
            if path.name == keep:
                continue
            if path.name.startswith((".gen-", ".trash-")):  # a crashed build's or pruning's leftovers
                shutil.rmtree(path, ignore_errors=True)
            elif path.name.startswith("gen-"):
                self._prune(path)

    def _prune(self, gen: Path) -> None:
        try:
            handle = open(gen / READERS, "rb")
        except OSError:
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("Generation %s is being read by another process; removing it later.", gen.name)
                return
            trash = self.folder / f".trash-{gen.name}"
            try:
                os.rename(gen, trash)  # readers waiting on the lock see it gone and read `current` again
            except OSError:
                return
        shutil.rmtree(trash, ignore_errors=True)
