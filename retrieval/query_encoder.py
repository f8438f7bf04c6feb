"""The fast query path: an ONNX export of the sentence-transformers model, run with onnxruntime and tokenizers.

sentence-transformers stays the embedding library of record: it embeds every passage of the index, and at
index build the same model (transformer, mean or CLS pooling, L2 normalisation, as its own pipeline does) is
exported beside the index so that a process answering questions need not import torch and transformers
(about 5 cpu-s). The export is checked against sentence-transformers on probe texts when it is written, and
again at every load (size, CRC-32, one probe), so a damaged or stale file is never used.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

FOLDER = "query-encoder"  # inside the index folder, beside the generations
RECORD = "encoder.json"  # written last, by one rename: names the files of the export in use
FORMAT = 1
# Texts the export must encode as sentence-transformers does: short, long (past the model's length limit),
# punctuation and non-ASCII. The first one is checked again at every load.
PROBES = (
    "does a Series A startup hire ML PMs?",
    "How should I prepare for a product-sense interview at a company that trains its own models? " * 12,
    "Gehälter, «titles» & $150k—what’s normal?",
    "x",
)
MIN_PROBE_COSINE = 0.9999
_POOLING = ("mean", "cls")


class EncoderUnavailable(Exception):
    """The ONNX query encoder cannot be used (missing, damaged, stale or not exportable); the message says why."""


def model_fingerprint(target: str) -> str:
    """What identifies the model's files: for a local folder each file's path, size and mtime (one stat each,
    cheap enough for every start); for a hub name the name (its cache is not looked up without the hub)."""
    root = Path(target)
    if not root.is_dir():
        return f"name:{target}"
    digest = zlib.crc32(str(root.resolve()).encode())
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".cache" not in path.parts:
            st = path.stat()
            digest = zlib.crc32(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}".encode(), digest)
    return f"files:{digest:08x}"


def read_record(folder: Path) -> dict | None:
    """The record of the export in `folder`, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads((Path(folder) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def is_current(folder: Path, model: str, fingerprint: str) -> bool:
    """Whether `folder` holds the outcome of exporting this model as it is now (an export, or the reason there
    is none: a model that cannot be exported is not tried again at every start)."""
    record = read_record(folder)
    return record is not None and record.get("model") == model and record.get("fingerprint") == fingerprint


def export(st_model, folder: Path, model: str, fingerprint: str) -> bool:
    """Export a loaded SentenceTransformer's query pipeline to `folder` and check it; record the outcome.

    Returns:
        True when the export is written and encodes the probes as sentence-transformers does; False (with
        the reason recorded, for the query embedder to say once) when the model's pipeline cannot be exported.

    Raises:
        OSError: the folder cannot be written (nothing is recorded then).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.time_ns()
    names = {"model": f"model-{stamp}.onnx", "tokenizer": f"tokenizer-{stamp}.json"}
    try:
        spec = _pipeline_spec(st_model)
        _export_onnx(st_model, folder / names["model"], spec["inputs"], spec["pooling"])
        tokenizer = st_model[0].tokenizer
        (folder / names["tokenizer"]).write_text(tokenizer.backend_tokenizer.to_str(), encoding="utf-8")
        record = dict(spec, format=FORMAT, model=model, fingerprint=fingerprint, exportable=True, files=names,
                      sizes={k: (folder / n).stat().st_size for k, n in names.items()},
                      crc={k: _file_crc(folder / n) for k, n in names.items()}, created_at=time.time())
        expected = np.asarray(st_model.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True),
                              dtype=np.float32)
        record["probe"] = [float(x) for x in expected[0]]
        encoder = OnnxQueryEncoder(folder, threads=1, record=record)
        cosines = np.sum(encoder.embed(PROBES) * expected, axis=1)
        if float(cosines.min()) < MIN_PROBE_COSINE:
            raise EncoderUnavailable(f"its vectors differ from sentence-transformers' (cosine {cosines.min():.6f})")
    except OSError:  # the folder, not the model: nothing is recorded, the next build tries again
        for name in names.values():
            (folder / name).unlink(missing_ok=True)
        raise
    except Exception as exc:  # noqa: BLE001 - the model's pipeline cannot be exported: answer with sentence-transformers
        for name in names.values():
            (folder / name).unlink(missing_ok=True)
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}"
        # said once, by the query embedder that falls back to sentence-transformers
        logger.debug("The model %s could not be exported to ONNX (%s).", model, reason)
        _write_record(folder, {"format": FORMAT, "model": model, "fingerprint": fingerprint, "exportable": False,
                               "reason": reason, "created_at": time.time()})
        return False
    _write_record(folder, record)
    logger.info("Exported the query encoder of %s to %s (%d dims; probe cosine >= %.6f).", model, folder,
                spec["dim"], float(cosines.min()))
    return True


def _pipeline_spec(st_model) -> dict:
    """What the export must reproduce, or EncoderUnavailable when the pipeline is not transformer + pooling
    (+ normalisation): anything else (a dense layer, prompts, another backend) is left to sentence-transformers."""
    modules = list(st_model)
    kinds = [type(m).__name__ for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise EncoderUnavailable(f"its pipeline is {' + '.join(kinds)}, not Transformer + Pooling (+ Normalize)")
    transformer, pooling = modules[0], modules[1]
    mode = pooling.get_config_dict().get("pooling_mode")
    if mode not in _POOLING:
        raise EncoderUnavailable(f"its pooling is {mode!r}, not mean or cls")
    prompts = getattr(st_model, "prompts", None) or {}
    if any(prompts.values()) or getattr(st_model, "default_prompt_name", None):
        raise EncoderUnavailable("it adds prompts to the texts it encodes")
    tokenizer = transformer.tokenizer
    if not getattr(tokenizer, "is_fast", False) or getattr(tokenizer, "backend_tokenizer", None) is None:
        raise EncoderUnavailable("its tokenizer has no fast (tokenizers) version")
    max_length = min(int(st_model.max_seq_length or tokenizer.model_max_length), int(tokenizer.model_max_length))
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    if inputs[:2] != ["input_ids", "attention_mask"]:
        raise EncoderUnavailable(f"its tokenizer gives {tokenizer.model_input_names}")
    dimension = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
    return {"pooling": mode, "max_length": max_length, "inputs": inputs,
            "lower_case": bool(getattr(transformer, "do_lower_case", False)),
            "pad_id": int(tokenizer.pad_token_id or 0), "pad_token": str(tokenizer.pad_token or "[PAD]"),
            "dim": int(dimension())}


def _export_onnx(st_model, path: Path, inputs: list[str], pooling: str) -> None:
    """torch.onnx.export of transformer + pooling + L2 normalisation, with dynamic batch and length."""
    import torch

    auto_model = st_model[0].auto_model

    class QueryPipeline(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.auto_model = auto_model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            hidden = self.auto_model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:  # sentence-transformers' mean pooling: padded positions excluded
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    sample = st_model[0].tokenizer(["a question", "a somewhat longer question than that"], padding=True,
                                   return_tensors="pt")
    args = tuple(sample[name] for name in inputs)
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about Python conditions on shapes
        torch.onnx.export(
            QueryPipeline().eval(), args, str(path), input_names=inputs, output_names=["embedding"],
            dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in inputs}, "embedding": {0: "batch"}},
            opset_version=17, dynamo=False, external_data=False,
        )


def _file_crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            crc = zlib.crc32(block, crc)
    return crc


def _write_record(folder: Path, record: dict) -> None:
    """Switch to a new record in one rename, then remove the files no record names."""
    tmp = folder / f".{RECORD}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / RECORD)
    keep = set(record.get("files", {}).values()) | {RECORD}
    for path in folder.iterdir():
        if path.name not in keep and path.name.startswith(("model-", "tokenizer-")):
            path.unlink(missing_ok=True)


class OnnxQueryEncoder:
    """Encodes texts with an export written by `export`; loads in a fraction of a second (no torch)."""

    def __init__(self, folder: Path, threads: int = 1, record: dict | None = None):
        """Load and verify the export in `folder`.

        Args:
            threads: onnxruntime's intra-op threads; 1 for serving, where concurrent questions share the cores.
            record: the record to load (by default the one in `folder`).

        Raises:
            EncoderUnavailable: there is no usable export (the message says why).
        """
        folder = Path(folder)
        record = record or read_record(folder)
        if record is None:
            raise EncoderUnavailable(f"there is no query encoder in {folder}")
        if not record.get("exportable"):
            raise EncoderUnavailable(f"the model {record.get('model')} could not be exported ({record.get('reason')})")
        try:
            import onnxruntime
            import tokenizers

            blobs = {}
            for key, name in record["files"].items():
                data = (folder / name).read_bytes()
                if [len(data), zlib.crc32(data)] != [record["sizes"][key], record["crc"][key]]:
                    raise EncoderUnavailable(f"{name} does not match its record (damaged)")
                blobs[key] = data
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # no busy-waiting between questions: spinning threads would burn the CPU other work needs
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
            options.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(blobs["model"], options, providers=["CPUExecutionProvider"])
            # two tokenizers, neither changed after this: padding is a tokenizer's state, questions come on threads
            self._tokenizer = tokenizers.Tokenizer.from_str(blobs["tokenizer"].decode("utf-8"))
            self._batch_tokenizer = tokenizers.Tokenizer.from_str(blobs["tokenizer"].decode("utf-8"))
        except EncoderUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a file onnxruntime cannot read is a damaged export
            raise EncoderUnavailable(f"it cannot be loaded ({type(exc).__name__}: {str(exc)[:160]})") from None
        self._tokenizer.no_padding()
        self._batch_tokenizer.enable_padding(pad_id=int(record["pad_id"]), pad_token=str(record["pad_token"]))
        for tokenizer in (self._tokenizer, self._batch_tokenizer):
            tokenizer.enable_truncation(int(record["max_length"]))
        self._inputs = list(record["inputs"])
        self._lower_case = bool(record.get("lower_case"))
        self.dim = int(record["dim"])
        self.model = str(record["model"])
        self.threads = threads
        if "probe" in record:
            cosine = float(self.embed(PROBES[:1])[0] @ np.asarray(record["probe"], dtype=np.float32))
            if cosine < MIN_PROBE_COSINE:
                raise EncoderUnavailable(f"it no longer encodes as sentence-transformers did (cosine {cosine:.6f})")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text (sentence-transformers strips texts first, so do we)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = [t.strip().lower() if self._lower_case else t.strip() for t in texts]
        encodings = [self._tokenizer.encode(texts[0])] if len(texts) == 1 else self._batch_tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        vectors = self._session.run(None, {name: feeds[name] for name in self._inputs})[0]
        return np.ascontiguousarray(vectors, dtype=np.float32)
