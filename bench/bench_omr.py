"""omr_grading figures: accuracy on the held-out captures, per case, and CPU time per page on one core.

Usage: python bench/bench_omr.py [--count N] [--seed S] [--speed-only] [--accuracy-only] [--repeat N]

Accuracy: `--count` held-out captures (default 75, cycling clean / scanned / photo, A4 at 300 dpi in colour) from
bench/heldout/omr_captures.py, whose marks and capture effects are written independently of the tuning generator
(tests/jobs/omr/omr_synth.py). Every capture goes through the whole handler; printed: answers right per capture
and per row kind (blank, full, partial, double, erasure, dot), per instrument, partial fills per covered share and
shape, identifiers read right, and how the `needs_review` flag splits right and wrong answers.

Speed: CPU time of one thread (`time.process_time()`, OpenCV and BLAS held to one thread) for the whole handler,
decode included, per held-out capture (median and max per capture kind and format), and for the product's own
100-question sheet rendered at 200 and 300 dpi, as grey PNG, colour PNG with scanner noise (zlib level 6, the
slowest to decode) and JPEG.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import hashlib
import io
import pickle
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ai_worker.config import Settings
from ai_worker.errors import PermanentError
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.imaging import decode_image, image_size
from ai_worker.jobs.omr import handle
from ai_worker.jobs.omr.handler import HALF_DECODE_MIN_SIDE
from ai_worker.jobs.omr.layout import standard_template
from ai_worker.jobs.omr.sheet import render_sheet

sys.path.insert(0, str(Path(__file__).resolve().parent / "heldout"))
import omr_captures

SEED = 20261130
QUESTIONS, CHOICES = 100, 5
BUDGET_MS = 150.0
EDGE_COVER = 0.45  # partial fills under this share of the bubble sit at the default threshold's edge (0.4)


def _run(payload: dict[str, Any], data: bytes, settings: Settings) -> tuple[dict[str, Any], float]:
    start = time.process_time()
    result = handle(JobContext.for_test("omr_grading", payload, data, settings=settings))
    return result, (time.process_time() - start) * 1000


def _share(right: int, total: int) -> str:
    return f"{right:5d}/{total:<5d} {100 * right / total:7.2f} %" if total else f"{0:5d}/{0:<5d}       - "


def accuracy(count: int, seed: int, settings: Settings) -> None:
    print(
        f"held-out captures: {count} (seed {seed}), A4 at {omr_captures.DPI} dpi colour; mark_fill "
        f"{settings.vision.omr_mark_fill}"
    )
    captures = _captures(seed, count)
    found: list[omr_captures.Outcome] = []
    ids: dict[str, list[bool]] = defaultdict(list)
    id_status: dict[str, int] = defaultdict(int)
    times: dict[str, list[float]] = defaultdict(list)
    decode_times: dict[str, list[float]] = defaultdict(list)
    sheet_review = sheet_wrong = sheet_wrong_flagged = 0
    failed: dict[str, int] = defaultdict(int)
    for capture in captures:
        payload = {"question_count": capture.questions, "n_choices": capture.choices}
        try:
            result, ms = _run(payload, capture.data, settings)
        except PermanentError as exc:  # counted as every answer and the identifier wrong
            failed[capture.capture] += 1
            print(f"  {capture.capture} {capture.fmt} capture failed: {exc}")
            result = {
                "answers": [{"marked": None, "needs_review": True, "confidence": 0.0} for _ in capture.rows],
                "identifier": {"value": None, "status": "failed"},
                "needs_review": True,
            }
            ms = float("nan")
        if ms == ms:
            times[f"{capture.capture} {capture.fmt}"].append(ms)
            decode_times[f"{capture.capture} {capture.fmt}"].append(_decode_ms(capture.data, settings))
        rows = omr_captures.outcomes(capture, result)
        found.extend(rows)
        ident = result["identifier"]
        ids[capture.capture].append(ident["value"] == capture.identifier)
        id_status[ident["status"]] += 1
        wrong_here = any(not r.correct for r in rows) or ident["value"] != capture.identifier
        sheet_review += result["needs_review"]
        sheet_wrong += wrong_here
        sheet_wrong_flagged += wrong_here and result["needs_review"]

    def table(title: str, key: Any, values: list[str]) -> None:
        print(f"  {title}")
        for value in values:
            chosen = [r for r in found if key(r) == value]
            print(f"    {value:14s} {_share(sum(r.correct for r in chosen), len(chosen))}")

    total_right = sum(r.correct for r in found)
    print(f"  captures that failed (alignment): {dict(failed) or 0}")
    clear = [r for r in found if r.cover is None or r.cover >= EDGE_COVER]
    print(
        f"  answers right, rows with a partial fill under {EDGE_COVER:.2f} left out: "
        f"{_share(sum(r.correct for r in clear), len(clear))}"
    )
    print(f"  answers right: {_share(total_right, len(found))}")
    table("per capture", lambda r: r.capture, list(omr_captures.CAPTURES))
    table("per row kind", lambda r: r.kind, list(omr_captures.KINDS))
    table("per instrument", lambda r: r.instrument, list(omr_captures.INSTRUMENTS))
    print("  per capture x kind")
    for capture in omr_captures.CAPTURES:
        cells = []
        for kind in omr_captures.KINDS:
            chosen = [r for r in found if r.capture == capture and r.kind == kind]
            cells.append(f"{kind} {sum(r.correct for r in chosen)}/{len(chosen)}")
        print(f"    {capture:8s} " + "  ".join(cells))
    partials = [r for r in found if r.cover is not None]
    print("  partial fills (rows with a partial mark), by the smallest covered share in the row")
    for low, high in ((0.0, 0.4), (0.4, 0.45), (0.45, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.9)):
        chosen = [r for r in partials if r.cover is not None and low <= r.cover < high]
        print(f"    {low:.2f}-{high:.2f}      {_share(sum(r.correct for r in chosen), len(chosen))}")
    table(
        "partial fills by shape (rows with one partial)",
        lambda r: r.shapes[0] if len(r.shapes) == 1 else "",
        list(omr_captures.SHAPES),
    )
    print("  identifiers read right")
    for capture in omr_captures.CAPTURES:
        print(f"    {capture:14s} {_share(sum(ids[capture]), len(ids[capture]))}")
    all_ids = [v for values in ids.values() for v in values]
    print(f"    {'all':14s} {_share(sum(all_ids), len(all_ids))}   statuses {dict(id_status)}")
    wrong = [r for r in found if not r.correct]
    print("  needs_review (per answer: confidence < 0.7)")
    print(f"    wrong answers flagged  {_share(sum(r.needs_review for r in wrong), len(wrong))}")
    print(f"    right answers flagged  {_share(sum(r.needs_review for r in found if r.correct), total_right)}")
    print(f"    wrong answers' confidence: {sorted(round(r.confidence, 2) for r in wrong)}")
    print(
        f"    sheets flagged {sheet_review}/{count}; sheets with any error {sheet_wrong}, of them flagged "
        f"{sheet_wrong_flagged}"
    )
    print("  CPU ms per page, whole handler incl. decode (one thread)")
    every = [t for values in times.values() for t in values]
    for label in sorted(times):
        values, decode = times[label], decode_times[label]
        print(
            f"    {label:14s} n={len(values):3d} median {statistics.median(values):6.1f}  max {max(values):6.1f}"
            f"   of which decoding: median {statistics.median(decode):6.1f}  max {max(decode):6.1f}"
        )
    print(
        f"    {'all':14s} n={len(every):3d} median {statistics.median(every):6.1f}  max {max(every):6.1f}"
        f"   ({sum(t > BUDGET_MS for t in every)} over {BUDGET_MS:.0f} ms)"
    )


def _decode_ms(data: bytes, settings: Settings) -> float:
    """CPU time of decoding alone, as the handler decodes (large JPEGs at half size)."""
    reduce = 2 if min(image_size(data)) >= HALF_DECODE_MIN_SIDE else 1
    start = time.process_time()
    decode_image(data, max_pixels=settings.vision.max_pixels, grayscale=True, reduce=reduce)
    return (time.process_time() - start) * 1000


def _captures(seed: int, count: int) -> list[omr_captures.Capture]:
    """The held-out captures, cached in the temp directory (keyed by seed, count and the generator's source)."""
    source = Path(omr_captures.__file__).read_bytes()
    key = hashlib.sha256(source + f"{seed}/{count}/{omr_captures.DPI}".encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"omr-heldout-{key}.pickle"
    if cache.exists():
        print(f"  (cached in {cache})")
        captures: list[omr_captures.Capture] = pickle.loads(cache.read_bytes())
        return captures
    made = time.monotonic()
    captures = omr_captures.generate(seed, count)
    print(f"  generated in {time.monotonic() - made:.0f} s")
    cache.write_bytes(pickle.dumps(captures))
    return captures


def _product_sheet(dpi: int, kind: str) -> bytes:
    rng = np.random.default_rng(dpi)
    answers = {q: "ABCDE"[int(rng.integers(CHOICES))] for q in range(1, QUESTIONS + 1) if rng.random() > 0.1}
    image = render_sheet(standard_template(QUESTIONS, CHOICES), dpi=dpi, answers=answers, identifier="20261127")
    image = image.rotate(1.5, expand=True, fillcolor=255)
    buf = io.BytesIO()
    if kind == "grey PNG":
        image.save(buf, "PNG")
    elif kind == "JPEG":
        image.convert("RGB").save(buf, "JPEG", quality=85)
    else:  # a colour scan: tinted paper and sensor noise, the worst case for PNG decoding
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) * np.array([0.97, 0.95, 0.9], dtype=np.float32)
        rgb += rng.normal(0, 2.5, rgb.shape[:2]).astype(np.float32)[:, :, None]
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def speed(repeat: int, settings: Settings) -> None:
    print(f"product sheet, {QUESTIONS} questions x {CHOICES} choices, skewed 1.5 degrees: CPU ms per page")
    payload: dict[str, Any] = {"question_count": QUESTIONS, "n_choices": CHOICES}
    for dpi in (200, 300):
        for kind in ("grey PNG", "colour PNG", "JPEG"):
            data = _product_sheet(dpi, kind)
            _run(payload, data, settings)  # warm: imports and caches
            times = [_run(payload, data, settings)[1] for _ in range(repeat)]
            print(
                f"  {dpi} dpi {kind:10s} {len(data) / 2**20:5.1f} MiB  median {statistics.median(times):6.1f}"
                f"  max {max(times):6.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=75)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--accuracy-only", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    settings = Settings.from_env()
    if not args.accuracy_only:
        speed(args.repeat, settings)
    if not args.speed_only:
        accuracy(args.count, args.seed, settings)


if __name__ == "__main__":
    main()
