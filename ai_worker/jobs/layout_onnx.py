"""Question detection with an ONNX model through onnxruntime (CUDA first where the GPU image provides it).

Model contract (documented in the README): one input, NCHW float32 in [0, 1], 1 or 3 channels (grey replicated),
its height/width taken from the model when static, else `DEFAULT_INPUT_SIZE`; the page is resized to it without
letterboxing. Outputs, in order: boxes `[1, N, 4]` (or `[N, 4]`) as normalised [x0, y0, x1, y1] in [0, 1], and
scores `[1, N]` (or `[N]`). Detections under the score threshold are dropped, overlaps are suppressed by NMS
(`NMS_IOU`), and the survivors are put in reading order (columns left to right, top to bottom within a column).

Sessions are cached per model file (path and modification time), so a warm job process loads a model once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort

from ai_worker.errors import PermanentError

MODEL_INVALID = "segmentation_model_invalid"  # the configured model is missing or breaks the contract
DEFAULT_INPUT_SIZE = 1024  # for models with dynamic spatial dimensions
NMS_IOU = 0.5  # a detection overlapping a better one by more than this is the same question
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")

_sessions: dict[str, tuple[float, ort.InferenceSession]] = {}


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # page pixels, [x0, y0, x1, y1), x1/y1 exclusive
    score: float


def _session(path: str) -> ort.InferenceSession:
    try:
        mtime = os.stat(path).st_mtime
    except OSError as exc:
        raise PermanentError(MODEL_INVALID, f"segmentation model {path!r} cannot be read: {exc}") from exc
    cached = _sessions.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    available = set(ort.get_available_providers())
    providers = [p for p in PREFERRED_PROVIDERS if p in available]
    try:
        session = ort.InferenceSession(path, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise PermanentError(MODEL_INVALID, f"segmentation model {path!r} does not load: {exc}") from exc
    _sessions[path] = (mtime, session)
    return session


def _input_tensor(gray: np.ndarray, shape: list[int | str | None]) -> np.ndarray:
    if len(shape) != 4:
        raise PermanentError(MODEL_INVALID, f"model input must be NCHW, got shape {shape}")
    channels = shape[1] if isinstance(shape[1], int) else 3
    if channels not in (1, 3):
        raise PermanentError(MODEL_INVALID, f"model input must have 1 or 3 channels, got {channels}")
    height = shape[2] if isinstance(shape[2], int) else DEFAULT_INPUT_SIZE
    width = shape[3] if isinstance(shape[3], int) else DEFAULT_INPUT_SIZE
    small = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return np.ascontiguousarray(np.broadcast_to(small, (1, channels, height, width)))


def detect(gray: np.ndarray, model_path: str, min_score: float) -> list[list[Detection]]:
    """Run the model on a page and return its questions, NMS-filtered, as columns in reading order."""
    session = _session(model_path)
    model_input = session.get_inputs()[0]
    outputs = session.run(None, {model_input.name: _input_tensor(gray, list(model_input.shape))})
    if len(outputs) < 2:
        raise PermanentError(MODEL_INVALID, f"model must output boxes and scores, got {len(outputs)} output(s)")
    boxes = np.asarray(outputs[0], np.float32).reshape(-1, 4) if np.size(outputs[0]) % 4 == 0 else None
    scores = np.asarray(outputs[1], np.float32).reshape(-1)
    if boxes is None or len(boxes) != len(scores):
        raise PermanentError(
            MODEL_INVALID, f"model outputs {np.shape(outputs[0])} and {np.shape(outputs[1])} are not [N,4] and [N]"
        )
    height, width = gray.shape
    return columns(decode(boxes, scores, width, height, min_score))


def decode(boxes: np.ndarray, scores: np.ndarray, width: int, height: int, min_score: float) -> list[Detection]:
    """Normalised boxes -> page pixels, score threshold, then NMS (best first)."""
    pixels = np.clip(boxes, 0.0, 1.0) * np.array([width, height, width, height], np.float32)
    keep = (scores >= min_score) & (pixels[:, 2] > pixels[:, 0]) & (pixels[:, 3] > pixels[:, 1])
    pixels, scores = pixels[keep], scores[keep]
    if len(scores) == 0:
        return []
    xywh = [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in pixels]
    kept = cv2.dnn.NMSBoxes(xywh, scores.tolist(), min_score, NMS_IOU)
    order = np.asarray(kept, np.int64).reshape(-1)
    return [Detection(_int_box(pixels[i]), float(scores[i])) for i in order]


def _int_box(box: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    return x0, y0, x1, y1


def columns(detections: list[Detection]) -> list[list[Detection]]:
    """Reading order: columns are groups of boxes whose horizontal extents overlap, left to right; each column's
    boxes top to bottom."""
    groups: list[tuple[int, list[Detection]]] = []  # (right edge, members)
    for det in sorted(detections, key=lambda d: d.box[0]):
        if groups and det.box[0] < groups[-1][0]:
            right, members = groups[-1]
            groups[-1] = (max(right, det.box[2]), [*members, det])
        else:
            groups.append((det.box[2], [det]))
    return [sorted(members, key=lambda d: d.box[1]) for _, members in groups]
