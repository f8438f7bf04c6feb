"""Settings from the environment (explicit arguments win), validated once, with messages that say what to set."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.errors import AdvisorError

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LLM_TIMEOUT = 5.0  # seconds a generated answer may take before the extractive one is shown
INDEX_CHECK_SECONDS = 5.0  # a running bot looks for a newer index this often: a readlink, so cheap
DATABASE_URL_ENV = "ADVISOR_DATABASE_URL"  # the shared PostgreSQL store; unset: SQLite in the data folder


class SettingsError(AdvisorError):
    """A setting is missing or malformed; the message names the variable to set."""


def default_corpus_dir() -> Path:
    """./corpus when the working folder has one, else the shipped corpus: the checkout's corpus/ folder, or
    the `advisor_corpus` data package a plain (non-editable) install puts in site-packages."""
    local = Path.cwd() / "corpus"
    if local.is_dir():
        return local
    checkout = PROJECT_ROOT / "corpus"
    if checkout.is_dir():
        return checkout
    import importlib.util

    spec = importlib.util.find_spec("advisor_corpus")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else checkout


@dataclass(frozen=True)
class Settings:
    """Where the corpus, index and store live, and which embedding model to use."""

    corpus_dir: Path
    data_dir: Path
    model: str | None = None
    llm_url: str = ""  # an OpenAI-compatible chat-completions endpoint; "" = extractive answers only
    llm_model: str = ""
    llm_api_key: str = field(default="", repr=False)
    llm_timeout: float = LLM_TIMEOUT
    query_threads: int = 1  # CPU threads per question's encoding (ADVISOR_TORCH_THREADS); the index build uses all
    index_check_seconds: float = INDEX_CHECK_SECONDS  # ADVISOR_INDEX_CHECK_SECONDS
    database_url: str = field(default="", repr=False)  # holds a password: never shown

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
            query_threads=threads_from_env(),
            index_check_seconds=index_check_seconds(),
            database_url=database_url_from_env(),
            **llm_from_env(),
        )


def index_check_seconds() -> float:
    """ADVISOR_INDEX_CHECK_SECONDS: how often a running advisor looks for a newer index (default 5 s)."""
    raw = os.environ.get("ADVISOR_INDEX_CHECK_SECONDS", "").strip()
    if not raw:
        return INDEX_CHECK_SECONDS
    try:
        value = float(raw)
        if value >= 0:
            return value
    except ValueError:
        pass
    logger.warning("ADVISOR_INDEX_CHECK_SECONDS should be a number of seconds such as 5 (0 checks before every "
                   "question); using %g.", INDEX_CHECK_SECONDS)
    return INDEX_CHECK_SECONDS


def threads_from_env() -> int:
    """ADVISOR_TORCH_THREADS: CPU threads that encode one question (default 1, best when the cores are shared)."""
    raw = os.environ.get("ADVISOR_TORCH_THREADS", "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"ADVISOR_TORCH_THREADS must be a whole number of threads, 1 or more (it is '{raw}').")
    return int(raw)
def database_url_from_env() -> str:
    """ADVISOR_DATABASE_URL, checked: "" when unset, else a postgresql:// URL. Errors never repeat the URL (it may
    hold a password)."""
    from urllib.parse import urlsplit

    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if not url:
        return ""
    hint = "it should look like postgresql://USER:PASSWORD@HOST:5432/DATABASE (or unset it for SQLite)."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise SettingsError(f"{DATABASE_URL_ENV} does not look right (its port is not a number): {hint}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise SettingsError(f"{DATABASE_URL_ENV} does not look right: {hint}")
    if not parts.hostname and "host=" not in parts.query:
        raise SettingsError(f"{DATABASE_URL_ENV} names no host: {hint}")
    return url


def llm_from_env() -> dict:
    """ADVISOR_LLM_URL, _MODEL, _API_KEY and _TIMEOUT, checked; all empty when ADVISOR_LLM_URL is unset."""
    from urllib.parse import urlsplit

    env = os.environ
    url = env.get("ADVISOR_LLM_URL", "").strip()
    model = env.get("ADVISOR_LLM_MODEL", "").strip()
    if not url:
        if model:
            raise SettingsError("ADVISOR_LLM_MODEL is set but ADVISOR_LLM_URL is not: set ADVISOR_LLM_URL to an "
                                "OpenAI-compatible endpoint (e.g. http://localhost:11434/v1), "
                                "or unset ADVISOR_LLM_MODEL.")
        return {}
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError("ADVISOR_LLM_URL does not look right: it should be an http(s) URL such as "
                            "http://localhost:11434/v1 or https://api.openai.com/v1.")
    if not model:
        raise SettingsError("ADVISOR_LLM_MODEL is not set: name the model ADVISOR_LLM_URL should use "
                            "(e.g. llama3.1:8b or gpt-4o-mini).")
    raw_timeout = env.get("ADVISOR_LLM_TIMEOUT", "").strip() or str(LLM_TIMEOUT)
    try:
        timeout = float(raw_timeout)
    except ValueError:
        timeout = 0.0
    if not 0 < timeout <= 120:
        raise SettingsError("ADVISOR_LLM_TIMEOUT should be a number of seconds between 0 and 120, such as 5.")
    return {"llm_url": url, "llm_model": model, "llm_api_key": env.get("ADVISOR_LLM_API_KEY", "").strip(),
            "llm_timeout": timeout}


def require_env(name: str, prefix: str = "", hint: str = "") -> str:
    """The value of a required variable, or a SettingsError saying exactly what to set."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set. {hint}".strip())
    if prefix and not value.startswith(prefix):
        raise SettingsError(f"{name} does not look right: it should start with '{prefix}'. {hint}".strip())
    return value
