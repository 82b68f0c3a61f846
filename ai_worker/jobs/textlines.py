"""Printed text lines with the PP-OCR ONNX models that the `rapidocr` wheel ships (Apache-2.0): detect and read.

Small API, shared by the page jobs:
- `recognise(crops)` -> `[(text, confidence)]` for grayscale crops of single text lines (PP-OCRv6 small recogniser:
  digits, Latin, punctuation, CJK ideographs, circled numbers; not Hangul).
- `detect(gray)` -> text-line boxes `[x0, y0, x1, y1)` in page pixels (PP-OCRv6 small DB detector).

The models are the files inside the installed `rapidocr` package (`rapidocr/models/*.onnx`), located without
importing rapidocr and run directly through onnxruntime: nothing is ever downloaded, and nothing heavy is imported
until the first call. Sessions are created once per process, single-threaded by default
(`AI_WORKER_OCR_THREADS` overrides): the page jobs budget one core each.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ai_worker.errors import PermanentError

if TYPE_CHECKING:
    import numpy as np

OCR_UNAVAILABLE = "ocr_model_unavailable"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_HEIGHT = 48  # the recogniser's input height
REC_MAX_WIDTH = 960  # longer crops are squeezed to this width
REC_BATCH = 1  # one crop per run: a batch pads crops to its widest, and the padding changes what is read
DET_MAX_SIDE = 960  # the page is shrunk so its long side is at most this for detection
DET_THRESHOLD = 0.3  # text probability that counts as text
DET_MIN_SCORE = 0.5  # mean probability a detected line must reach
DET_UNCLIP = 1.6  # DB shrinks text regions; boxes are grown back by area * ratio / perimeter

_lock = threading.Lock()
_sessions: dict[str, Any] = {}
_charset: list[str] = []


def models_dir() -> Path:
    """The folder of ONNX models inside the installed rapidocr package (not imported)."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise PermanentError(OCR_UNAVAILABLE, "the rapidocr package (PP-OCR models) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _session(name: str) -> Any:
    with _lock:
        session = _sessions.get(name)
        if session is not None:
            return session
        import onnxruntime as ort

        path = models_dir() / name
        if not path.is_file():
            raise PermanentError(OCR_UNAVAILABLE, f"PP-OCR model {path} is missing")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("AI_WORKER_OCR_THREADS", "1"))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        if name == REC_MODEL:
            meta = session.get_modelmeta().custom_metadata_map
            _charset[:] = ["", *meta["character"].splitlines(), " "]  # CTC blank first, space last
        _sessions[name] = session
        return session


def _rec_input(crop: np.ndarray, width: int) -> np.ndarray:
    import cv2
    import numpy as np

    h, w = crop.shape[:2]
    scaled = max(1, min(width, round(w * REC_HEIGHT / max(1, h))))
    resized = cv2.resize(
        crop, (scaled, REC_HEIGHT), interpolation=cv2.INTER_AREA if h > REC_HEIGHT else cv2.INTER_CUBIC
    )
    tensor = np.zeros((3, REC_HEIGHT, width), np.float32)
    tensor[:, :, :scaled] = (resized.astype(np.float32) / 127.5 - 1.0)[None]
    return tensor


def recognise(crops: list[np.ndarray]) -> list[tuple[str, float]]:
    """The text of each grayscale line crop and its mean character confidence (0 for an empty read)."""
    import numpy as np

    if not crops:
        return []
    session = _session(REC_MODEL)
    widths = [min(REC_MAX_WIDTH, max(REC_HEIGHT, round(c.shape[1] * REC_HEIGHT / max(1, c.shape[0])))) for c in crops]
    order = sorted(range(len(crops)), key=lambda i: widths[i])
    results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
    for start in range(0, len(order), REC_BATCH):
        batch = order[start : start + REC_BATCH]
        width = max(widths[i] for i in batch)
        width = -(-width // 8) * 8
        tensor = np.stack([_rec_input(crops[i], width) for i in batch])
        probs = session.run(None, {session.get_inputs()[0].name: tensor})[0]
        best = probs.argmax(axis=2)
        conf = probs.max(axis=2)
        for row, i in enumerate(batch):
            results[i] = _ctc_decode(best[row], conf[row])
    return results


def _ctc_decode(best: np.ndarray, conf: np.ndarray) -> tuple[str, float]:
    chars: list[str] = []
    scores: list[float] = []
    previous = -1
    for index, score in zip(best.tolist(), conf.tolist(), strict=True):
        if index != previous and index != 0 and index < len(_charset):
            chars.append(_charset[index])
            scores.append(score)
        previous = index
    return "".join(chars), (sum(scores) / len(scores) if scores else 0.0)


def detect(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Text-line boxes of a grayscale page, [x0, y0, x1, y1) in its pixels, top to bottom."""
    import cv2
    import numpy as np

    session = _session(DET_MODEL)
    height, width = gray.shape[:2]
    scale = min(1.0, DET_MAX_SIDE / max(height, width))
    h32 = max(32, round(height * scale / 32) * 32)
    w32 = max(32, round(width * scale / 32) * 32)
    small = cv2.resize(gray, (w32, h32), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    tensor = ((small[None] - mean) / std)[None].astype(np.float32)
    prob = session.run(None, {session.get_inputs()[0].name: tensor})[0][0, 0]
    count, labels, stats, _ = cv2.connectedComponentsWithStats((prob > DET_THRESHOLD).astype(np.uint8), connectivity=4)
    sx, sy = width / w32, height / h32
    boxes: list[tuple[int, int, int, int]] = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if min(w, h) < 2 or float(prob[labels == label].mean()) < DET_MIN_SCORE:
            continue
        grow = area * DET_UNCLIP / (2 * (w + h))
        boxes.append(
            (
                max(0, int((x - grow) * sx)),
                max(0, int((y - grow) * sy)),
                min(width, int(np.ceil((x + w + grow) * sx))),
                min(height, int(np.ceil((y + h + grow) * sy))),
            )
        )
    return sorted(boxes, key=lambda b: (b[1], b[0]))
