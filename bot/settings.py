"""Settings from the environment (explicit arguments win), validated once, with messages that say what to set."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.variables import BY_NAME, SettingsError, check, value

__all__ = ["INDEX_CHECK_SECONDS", "LLM_TIMEOUT", "PROJECT_ROOT", "Settings", "SettingsError", "default_corpus_dir"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LLM_TIMEOUT = BY_NAME["ADVISOR_LLM_TIMEOUT"].default  # seconds a generated answer may take before the extractive one
INDEX_CHECK_SECONDS = BY_NAME["ADVISOR_INDEX_CHECK_SECONDS"].default  # a readlink, so cheap


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
        return value("ADVISOR_STORE") or self.data_dir / "advisor.sqlite3"

    @classmethod
    def from_env(cls, corpus: str | None = None, data_dir: str | None = None, model: str | None = None) -> "Settings":
        """The settings every command shares; every variable they read is checked first (bot/variables.py)."""
        check("advisor")
        return cls(
            corpus_dir=Path(corpus or value("ADVISOR_CORPUS") or default_corpus_dir()).expanduser(),
            data_dir=Path(data_dir or value("ADVISOR_DATA_DIR") or Path.cwd() / ".advisor").expanduser(),
            model=model or value("ADVISOR_MODEL"),
            query_threads=value("ADVISOR_TORCH_THREADS"),
            index_check_seconds=value("ADVISOR_INDEX_CHECK_SECONDS"),
            database_url=value("ADVISOR_DATABASE_URL"),
            **llm_from_env(),
        )


def llm_from_env() -> dict:
    """ADVISOR_LLM_URL, _MODEL, _API_KEY and _TIMEOUT, checked together; all empty when ADVISOR_LLM_URL is unset."""
    url, model = value("ADVISOR_LLM_URL"), value("ADVISOR_LLM_MODEL")
    if not url:
        if model:
            raise SettingsError("ADVISOR_LLM_MODEL is set but ADVISOR_LLM_URL is not: set ADVISOR_LLM_URL to an "
                                "OpenAI-compatible endpoint (e.g. http://localhost:11434/v1), "
                                "or unset ADVISOR_LLM_MODEL.")
        return {}
    if not model:
        raise SettingsError("ADVISOR_LLM_MODEL is not set: name the model ADVISOR_LLM_URL should use "
                            "(e.g. llama3.1:8b or gpt-4o-mini).")
    return {"llm_url": url, "llm_model": model, "llm_api_key": value("ADVISOR_LLM_API_KEY"),
            "llm_timeout": value("ADVISOR_LLM_TIMEOUT")}
