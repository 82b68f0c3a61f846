"""The `embedding` job: L2-normalised sentence vectors from a local sentence-transformers model.

The model runs on `transformers` and torch directly: the tokenizer, the transformer (`AutoModel`), then the pooling
and normalisation the directory's own sentence-transformers configuration declares (`modules.json`, the pooling
module's `config.json`, `sentence_bert_config.json`). Importing sentence-transformers itself would pull
scikit-learn and SciPy into every cold job process for nothing (seconds of CPU); the suite checks that both give
the same vectors.

Guarantees:
- Models load from a local directory only. The Hugging Face offline switches are set before the libraries are
  imported, and a directory that is not a model is refused with `embedding_model_unavailable` (retryable: it is a
  deployment fault, and the DLQ keeps the jobs for a redrive) before any library could look at a hub.
- A loaded model stays warm in the job process between jobs (cache keyed by path and device).
- Device (AI_WORKER_EMBEDDING_DEVICE): `auto` is CUDA with fp16 weights when torch sees a GPU, else CPU in fp32.
  Vectors are always returned as float32 and L2-normalised (re-normalised in fp32 after an fp16 forward pass).
- The same text gives the same vector whatever batch it was in, up to float rounding.
- Inputs are capped (texts per job, characters per text) with `invalid_input` errors naming the cap.
- A result whose inline vectors would exceed AI_WORKER_RESULT_INLINE_MAX_BYTES is stored in the results bucket as
  raw little-endian float32, row-major `[count, dim]`, at `embeddings/<tenant>/<job_id>.f32`, and returned by
  reference (`vectors_ref`). The key depends only on the job, so a redelivered job overwrites the same object.
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ai_worker.config import EmbeddingSettings
from ai_worker.errors import INVALID_INPUT, PermanentError, TransientError
from ai_worker.jobs.context import JobContext

if TYPE_CHECKING:
    import numpy as np
    import torch

MODEL_UNAVAILABLE = "embedding_model_unavailable"
DEVICE_UNAVAILABLE = "embedding_device_unavailable"
VECTOR_FORMAT = "float32-le"  # the by-reference object: raw little-endian float32, row-major [count, dim]
MODEL_MARKERS: Final = ("modules.json", "config.json")  # a sentence-transformers or plain transformers directory
# The sentence-transformers modules this loader runs (`modules.json` "type"); a model declaring any other (a Dense
# projection, a router, ...) is refused rather than embedded wrongly.
TRANSFORMER_MODULE: Final = "sentence_transformers.models.Transformer"
POOLING_MODULE: Final = "sentence_transformers.models.Pooling"
NORMALIZE_MODULE: Final = "sentence_transformers.models.Normalize"
POOLING_MODES: Final = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
# No hub, no telemetry, and no progress bars in the JSON log stream (all read once, at import).
HF_ENVIRONMENT: Final = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}

# A small request for `ai-worker demo` and the README: two paraphrases and one unrelated sentence, Korean and English.
DEMO_PAYLOAD: Final[dict[str, Any]] = {
    "texts": [
        "The student solved the quadratic equation.",
        "A quadratic equation was solved by the student.",
        "오늘 점심은 김치찌개입니다.",
    ]
}


@dataclass(frozen=True)
class Encoder:
    """A loaded model: tokenizer, transformer (eval mode, on `device`; fp16 on CUDA) and its pooling."""

    tokenizer: Any
    model: Any
    device: str
    max_length: int
    pooling: str  # one of POOLING_MODES
    lowercase: bool
    inputs: frozenset[str]  # the tokenizer outputs the model's forward takes (not every model takes token_type_ids)


_MODELS: dict[tuple[str, str], Encoder] = {}


def handle(ctx: JobContext) -> dict[str, Any]:
    settings = ctx.settings.embedding
    texts = read_texts(ctx, settings)
    device = resolve_device(settings.device)
    model = load_model(settings.model, device)
    return _result(ctx, settings, embed(model, texts, settings.batch_size), device)


def handle_batch(ctxs: list[JobContext]) -> list[dict[str, Any] | Exception]:
    """Several embedding jobs in one model call: the worker hands a job process up to N pending embedding jobs
    (`engine.DEFAULT_BATCH_SIZES`), their texts are encoded together at `batch_size` and split back, so many small
    jobs keep the model as busy as one big one. Each job gets its own result or error (a job with invalid texts
    fails alone); an error of the model itself (unavailable, no device) is raised for the whole call."""
    if not ctxs:
        return []
    settings = ctxs[0].settings.embedding
    texts_per_job: list[list[str] | Exception] = []
    for ctx in ctxs:
        try:
            texts_per_job.append(read_texts(ctx, settings))
        except (PermanentError, TransientError) as exc:
            texts_per_job.append(exc)
    every_text = [text for texts in texts_per_job if isinstance(texts, list) for text in texts]
    if not every_text:
        return [t for t in texts_per_job if isinstance(t, Exception)]  # every job failed on its own
    device = resolve_device(settings.device)
    model = load_model(settings.model, device)
    vectors = embed(model, every_text, settings.batch_size)
    out: list[dict[str, Any] | Exception] = []
    offset = 0
    for ctx, texts in zip(ctxs, texts_per_job, strict=True):
        if isinstance(texts, Exception):
            out.append(texts)
            continue
        part, offset = vectors[offset : offset + len(texts)], offset + len(texts)
        try:
            out.append(_result(ctx, settings, part, device))
        except (PermanentError, TransientError) as exc:  # e.g. storing a large result failed
            out.append(exc)
    return out


def _result(ctx: JobContext, settings: EmbeddingSettings, vectors: np.ndarray, device: str) -> dict[str, Any]:
    """The job's result: vectors inline when small, else stored next to the results and referenced."""
    meta = {
        "model": Path(settings.model).name,
        "dim": int(vectors.shape[1]),
        "count": int(vectors.shape[0]),
        "device": device,
        "dtype": "float32",
        "normalized": True,
    }
    inline = vectors.tolist()
    if _json_size_bound(vectors) <= settings.inline_max_bytes or len(json.dumps(inline)) <= settings.inline_max_bytes:
        return {**meta, "vectors": inline}
    key = f"embeddings/{ctx.job.tenant}/{ctx.job.job_id}.f32"
    ref = ctx.blobs.put(key, vectors.astype("<f4").tobytes(), "application/octet-stream")
    ctx.log.info("embedding result by reference: %s (%d bytes)", ref.get("s3_uri"), ref.get("bytes"))
    return {**meta, "vectors_ref": {**ref, "format": VECTOR_FORMAT, "shape": list(vectors.shape)}}


def _json_size_bound(vectors: np.ndarray) -> int:
    """An upper bound of `len(json.dumps(vectors.tolist()))`, without encoding: a float's repr has at most 24
    characters, and json.dumps puts ", " between items and "[]" around each list. Encoding a few thousand floats
    only to measure them costs as much CPU as a small batch of texts does in the model."""
    rows, dim = vectors.shape
    return rows * (dim * 26 + 2) + 2


def read_texts(ctx: JobContext, settings: EmbeddingSettings) -> list[str]:
    """`payload.texts`, or a JSON input file (a list, or an object with `texts`) for lists too big for a message."""
    texts: Any = ctx.payload.get("texts")
    if texts is None:
        try:
            doc = json.loads(ctx.read_input())
        except ValueError as exc:
            raise PermanentError(INVALID_INPUT, f"input file is not JSON: {exc}") from exc
        texts = doc.get("texts") if isinstance(doc, dict) else doc
    if not isinstance(texts, list) or not texts:
        raise PermanentError(INVALID_INPUT, "texts must be a non-empty list of strings")
    if len(texts) > settings.max_texts:
        raise PermanentError(INVALID_INPUT, f"{len(texts)} texts, the limit is {settings.max_texts} per job")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise PermanentError(INVALID_INPUT, f"texts[{i}] is {type(text).__name__}, expected a string")
        if len(text) > settings.max_chars:
            raise PermanentError(
                INVALID_INPUT, f"texts[{i}] has {len(text)} characters, the limit is {settings.max_chars}"
            )
    return texts


def resolve_device(setting: str) -> str:
    """`cuda` or `cpu` for AI_WORKER_EMBEDDING_DEVICE (auto | cpu | cuda)."""
    if setting == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if setting == "cuda":
        raise TransientError(DEVICE_UNAVAILABLE, "AI_WORKER_EMBEDDING_DEVICE=cuda but torch sees no CUDA device")
    return "cpu"


def load_model(path: str, device: str) -> Encoder:
    """The model at local `path` on `device`, loaded once per job process."""
    key = (path, device)
    if key not in _MODELS:
        model_dir = Path(path)
        if not any((model_dir / marker).is_file() for marker in MODEL_MARKERS):
            raise TransientError(
                MODEL_UNAVAILABLE,
                f"AI_WORKER_EMBEDDING_MODEL={path!r} is not a local model directory (no {' or '.join(MODEL_MARKERS)})",
            )
        layout = read_layout(model_dir)
        # Read once at import by huggingface_hub/transformers: set before importing them, whatever the caller did.
        os.environ.update(HF_ENVIRONMENT)
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(layout.transformer_dir), local_files_only=True)
        model = AutoModel.from_pretrained(str(layout.transformer_dir), local_files_only=True)
        # fp16 on CUDA, fp32 on CPU, whatever dtype the checkpoint was saved in (transformers 5 loads it as saved).
        model.to(device)
        if device == "cuda":
            model.half()
        else:
            model.float()
        model.eval()
        limits = [layout.max_seq_length or tokenizer.model_max_length]
        positions = getattr(model.config, "max_position_embeddings", -1)
        if isinstance(positions, int) and positions > 0:
            limits.append(positions)
        inputs = frozenset(inspect.signature(model.forward).parameters)
        _MODELS[key] = Encoder(tokenizer, model, device, min(limits), layout.pooling, layout.lowercase, inputs)
    return _MODELS[key]


@dataclass(frozen=True)
class Layout:
    """What a model directory's sentence-transformers configuration says: where the transformer is, how to pool."""

    transformer_dir: Path
    pooling: str
    max_seq_length: int | None
    lowercase: bool


def read_layout(model_dir: Path) -> Layout:
    """The layout of a sentence-transformers directory (`modules.json`: Transformer, Pooling, optional Normalize),
    or of a plain transformers one (no `modules.json`: mean pooling, as sentence-transformers defaults to)."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        return Layout(model_dir, "mean_tokens", None, lowercase=False)
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        by_type = {m["type"]: model_dir / m.get("path", "") for m in modules}
        unknown = sorted(set(by_type) - {TRANSFORMER_MODULE, POOLING_MODULE, NORMALIZE_MODULE})
        if unknown or TRANSFORMER_MODULE not in by_type:
            raise ValueError(f"modules {unknown or ['(no Transformer)']} are not supported")
        transformer_dir = by_type[TRANSFORMER_MODULE]
        st_config = _json_or_empty(transformer_dir / "sentence_bert_config.json")
        pooling = "mean_tokens"
        if POOLING_MODULE in by_type:
            pooling_config = _json_or_empty(by_type[POOLING_MODULE] / "config.json")
            prefix = "pooling_mode_"
            chosen = [k.removeprefix(prefix) for k, v in pooling_config.items() if k.startswith(prefix) and v]
            if len(chosen) != 1 or chosen[0] not in POOLING_MODES:
                raise ValueError(f"pooling {chosen} is not one of {', '.join(POOLING_MODES)}")
            pooling = chosen[0]
        max_seq_length = st_config.get("max_seq_length")
        return Layout(
            transformer_dir,
            pooling,
            int(max_seq_length) if max_seq_length else None,
            lowercase=bool(st_config.get("do_lower_case")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TransientError(MODEL_UNAVAILABLE, f"{modules_file}: {exc}") from exc


def _json_or_empty(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return doc


def embed(encoder: Encoder, texts: list[str], batch_size: int) -> np.ndarray:
    """float32 vectors of unit length, one row per text. Texts are encoded longest first, `batch_size` at a time (as
    sentence-transformers does: batches of similar lengths carry little padding), and put back in order."""
    import numpy as np
    import torch

    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    vectors = np.empty((len(texts), 0), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = [texts[i].lower() if encoder.lowercase else texts[i] for i in rows]
            tokens = encoder.tokenizer(
                batch, padding=True, truncation=True, max_length=encoder.max_length, return_tensors="pt"
            ).to(encoder.device)
            fed = {name: value for name, value in tokens.items() if name in encoder.inputs}
            hidden = encoder.model(**fed).last_hidden_state.float()  # pooled in fp32 after an fp16 pass
            pooled = _pool(hidden, tokens["attention_mask"], encoder.pooling).cpu().numpy()
            if vectors.shape[1] == 0:
                vectors = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            vectors[rows] = pooled
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # An all-zero row (possible for an empty text with some poolings) stays zero instead of becoming NaN.
    normalized: np.ndarray = vectors / np.where(norms == 0, 1.0, norms)
    return normalized


def _pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """One vector per text from its token vectors `[batch, tokens, dim]`, padding excluded."""
    import torch

    if mode == "cls_token":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max_tokens":
        return torch.where(mask > 0, hidden, torch.finfo(hidden.dtype).min).max(dim=1).values
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return summed / (counts.sqrt() if mode == "mean_sqrt_len_tokens" else counts)
