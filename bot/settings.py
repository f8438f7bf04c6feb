"""Settings from the environment (explicit arguments win), validated once, with messages that say what to set."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable to set."""


def default_corpus_dir() -> Path:
    """./corpus when the working folder has one, else the corpus shipped beside this package."""
    local = Path.cwd() / "corpus"
    return local if local.is_dir() else PROJECT_ROOT / "corpus"


@dataclass(frozen=True)
class Settings:
    """Where the corpus, index and store live, and which embedding model to use."""

    corpus_dir: Path
    data_dir: Path
    model: str | None = None

    @property
    def index_dir(self) -> Path:
        """One index per corpus folder, so that two corpora never overwrite each other's index."""
        import hashlib

        key = hashlib.sha1(str(self.corpus_dir.resolve()).encode()).hexdigest()[:8]
        return self.data_dir / "index" / f"{self.corpus_dir.resolve().name}-{key}"

    @property
    def store_path(self) -> Path:
        return Path(os.environ.get("ADVISOR_STORE") or self.data_dir / "advisor.sqlite3")

    @classmethod
    def from_env(cls, corpus: str | None = None, data_dir: str | None = None, model: str | None = None) -> "Settings":
        env = os.environ
        return cls(
            corpus_dir=Path(corpus or env.get("ADVISOR_CORPUS") or default_corpus_dir()).expanduser(),
            data_dir=Path(data_dir or env.get("ADVISOR_DATA_DIR") or Path.cwd() / ".advisor").expanduser(),
            model=model or env.get("ADVISOR_MODEL") or None,
        )


def require_env(name: str, prefix: str = "", hint: str = "") -> str:
    """The value of a required variable, or a SettingsError saying exactly what to set."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set. {hint}".strip())
    if prefix and not value.startswith(prefix):
        raise SettingsError(f"{name} does not look right: it should start with '{prefix}'. {hint}".strip())
    return value
