"""The `embedding` job: L2-normalised sentence vectors from a local sentence-transformers model.

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

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ai_worker.config import EmbeddingSettings
from ai_worker.errors import INVALID_INPUT, PermanentError, TransientError
from ai_worker.jobs.context import JobContext

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

MODEL_UNAVAILABLE = "embedding_model_unavailable"
DEVICE_UNAVAILABLE = "embedding_device_unavailable"
VECTOR_FORMAT = "float32-le"  # the by-reference object: raw little-endian float32, row-major [count, dim]
MODEL_MARKERS: Final = ("modules.json", "config.json")  # a sentence-transformers or plain transformers directory
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

_MODELS: dict[tuple[str, str], SentenceTransformer] = {}


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


def load_model(path: str, device: str) -> SentenceTransformer:
    """The model at local `path` on `device`, loaded once per job process."""
    key = (path, device)
    if key not in _MODELS:
        model_dir = Path(path)
        if not any((model_dir / marker).is_file() for marker in MODEL_MARKERS):
            raise TransientError(
                MODEL_UNAVAILABLE,
                f"AI_WORKER_EMBEDDING_MODEL={path!r} is not a local model directory (no {' or '.join(MODEL_MARKERS)})",
            )
        # Read once at import by huggingface_hub/transformers: set before importing them, whatever the caller did.
        os.environ.update(HF_ENVIRONMENT)
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
        if device == "cuda":
            model.half()
        model.eval()
        _MODELS[key] = model
    return _MODELS[key]


def embed(model: SentenceTransformer, texts: list[str], batch_size: int) -> np.ndarray:
    """float32 vectors of unit length, one row per text."""
    import numpy as np

    vectors = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # An all-zero row (possible for an empty text with some poolings) stays zero instead of becoming NaN.
    normalized: np.ndarray = vectors / np.where(norms == 0, 1.0, norms)
    return normalized
