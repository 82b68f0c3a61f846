"""Speed of the page and video jobs on the seeded test generators: prints figures, asserts nothing.

    python bench/bench_vision.py [--pages 20] [--videos 5] [--threads N]

- question_segmentation: ms per page, A4 at 150 dpi (PNG) and rendered from PDF at 300 dpi.
- handwriting_analysis: ms per page, A4 at 150 dpi (JPEG), half of the sheets written on.
- homework_video_analysis: processing time / video duration (360x480 MPEG-4, 3-10 pages).
Times include decoding the input, as a job does; generating the inputs is not timed.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for folder in ("segmentation", "handwriting", "video"):
    sys.path.insert(0, str(ROOT / "tests" / "jobs" / folder))
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
from hw_pages import render_sheet  # noqa: E402
from hw_videos import render_clip  # noqa: E402
from PIL import Image  # noqa: E402
from seg_pages import render_exam_page  # noqa: E402

from ai_worker.jobs import handwriting, segmentation, video  # noqa: E402
from ai_worker.jobs.context import JobContext  # noqa: E402


def timed(handler: Callable[[JobContext], dict[str, Any]], data: bytes, payload: dict[str, Any]) -> float:
    ctx = JobContext.for_test("bench", payload, data)
    started = time.perf_counter()
    handler(ctx)
    return time.perf_counter() - started


def report(name: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(f"{name:<48} median {statistics.median(ms):7.1f} ms/page   max {max(ms):7.1f}   n={len(ms)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--videos", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="OpenCV threads (0: OpenCV's default)")
    args = parser.parse_args()
    if args.threads:
        cv2.setNumThreads(args.threads)
    print(f"cpus={os.cpu_count()} opencv_threads={cv2.getNumThreads()}")

    pages = [render_exam_page(seed) for seed in range(args.pages)]
    report("question_segmentation A4 150 dpi PNG", [timed(segmentation.handle, p.encode(), {}) for p in pages])
    pdfs = []
    for page in pages[: max(1, args.pages // 4)]:
        buf = io.BytesIO()
        Image.fromarray(page.image).save(buf, format="PDF", resolution=150)
        pdfs.append(buf.getvalue())
    report(
        "question_segmentation A4 PDF rendered at 300 dpi", [timed(segmentation.handle, d, {"dpi": 300}) for d in pdfs]
    )

    sheets = [
        render_sheet(seed, 6 if seed % 2 else 0, "calc" if seed % 4 == 1 else "prose") for seed in range(args.pages)
    ]
    report("handwriting_analysis A4 150 dpi JPEG", [timed(handwriting.handle, s.encode(), {}) for s in sheets])

    spent = footage = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.videos):
            clip = render_clip(seed, Path(tmp))
            spent += timed(video.handle, clip.data, {})
            footage += clip.duration_s
    print(
        f"{'homework_video_analysis 360x480 MPEG-4':<48} {spent:.2f} s for {footage:.0f} s of video "
        f"= {spent / footage:.3f} x duration (n={args.videos})"
    )


if __name__ == "__main__":
    main()
