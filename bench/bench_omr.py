"""omr_grading speed: milliseconds per page at 200 and 300 dpi on one core.

Usage: python bench/bench_omr.py [--repeat N]

Renders a filled 100-question, 5-choice standard sheet at each dpi, skewed by 1.5 degrees, and times the whole
handler (decode + align + measure + decide) on a PNG scan and on a JPEG (quality 85) of it, with OpenCV held to one
thread. Prints the median and 90th percentile per stage and the process's peak memory.
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import cv2
import numpy as np

from ai_worker.config import Settings
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.imaging import decode_image
from ai_worker.jobs.omr import handle
from ai_worker.jobs.omr.align import align
from ai_worker.jobs.omr.layout import standard_template
from ai_worker.jobs.omr.sheet import render_sheet

DPIS = (200, 300)
QUESTIONS, CHOICES = 100, 5


def _sheet(dpi: int, fmt: str) -> bytes:
    rng = np.random.default_rng(dpi)
    answers = {q: "ABCDE"[int(rng.integers(CHOICES))] for q in range(1, QUESTIONS + 1) if rng.random() > 0.1}
    image = render_sheet(standard_template(QUESTIONS, CHOICES), dpi=dpi, answers=answers, identifier="20261127")
    image = image.rotate(1.5, expand=True, fillcolor=255)
    buf = io.BytesIO()
    image.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _job(payload: dict[str, Any], data: bytes, settings: Settings) -> dict[str, Any]:
    return handle(JobContext.for_test("omr_grading", payload, data, settings=settings))


def _times_ms(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm: first call imports and fills caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _row(label: str, times: list[float]) -> str:
    p90 = statistics.quantiles(times, n=10)[-1]
    return f"  {label:28s} median {statistics.median(times):7.1f} ms   p90 {p90:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    settings = Settings()
    template = standard_template(QUESTIONS, CHOICES)
    payload: dict[str, Any] = {"question_count": QUESTIONS, "n_choices": CHOICES}
    print(f"omr_grading, {QUESTIONS} questions x {CHOICES} choices, cv2 threads: {cv2.getNumThreads()}")
    for dpi in DPIS:
        for fmt in ("PNG", "JPEG"):
            data = _sheet(dpi, fmt)
            gray = decode_image(data, max_pixels=settings.vision.max_pixels, grayscale=True)
            print(f"{dpi} dpi {fmt}: {gray.shape[1]}x{gray.shape[0]} px, {len(data) / 1024:.0f} KiB")
            decode = partial(decode_image, data, max_pixels=settings.vision.max_pixels, grayscale=True)
            job = partial(_job, payload, data, settings)
            print(_row("decode", _times_ms(decode, args.repeat)))
            print(_row("align (fiducials + warp)", _times_ms(partial(align, gray, template), args.repeat)))
            whole = _times_ms(job, args.repeat)
            print(_row("whole job (ms/page)", whole))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
