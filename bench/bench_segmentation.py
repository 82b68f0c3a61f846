"""question_segmentation on held-out exam pages (bench/heldout/segmentation_pages.py) and on the tuning generator.

    OMP_NUM_THREADS=1 python bench/bench_segmentation.py [--pages 60] [--first 0] [--tuning 20] [--varied 40] \
        [--font 60]

Prints, for the held-out set: questions found at IoU >= 0.85 (matched in reading order), pages fully right (every
question found, nothing extra, in reading order, all at IoU >= 0.85), printed numbers read right (`number` and
`label`), a per-layout breakdown, non-page inputs answered with an empty list, and CPU seconds per page of one thread
(`time.process_time`, decoding included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench" / "heldout"))
sys.path.insert(0, str(ROOT / "tests" / "jobs" / "segmentation"))
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
from seg_font_pages import faces, render_font_page  # noqa: E402
from seg_pages import render_exam_page, render_varied_page  # noqa: E402
from segmentation_pages import HeldoutPage, fonts_available, not_a_page, render_page  # noqa: E402

from ai_worker.jobs.context import JobContext  # noqa: E402
from ai_worker.jobs.segmentation import handle  # noqa: E402

IOU_MIN = 0.85


def iou(a: Any, b: Any) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def in_order_hits(boxes: list[Any], found: list[dict[str, Any]]) -> list[bool]:
    """Per true box: the question found at the same place in reading order covers it at IoU >= IOU_MIN."""
    return [i < len(found) and iou(box, found[i]["bbox"]) >= IOU_MIN for i, box in enumerate(boxes)]


def run(data: bytes) -> tuple[dict[str, Any], float]:
    started = time.process_time()
    result = handle(JobContext.for_test("question_segmentation", {}, data))
    return result, time.process_time() - started


def score_page(page: HeldoutPage, result: dict[str, Any]) -> dict[str, Any]:
    found = result["questions"]
    truth = page.questions
    hits = in_order_hits([t.box for t in truth], found)
    # Numbers are scored on questions matched by box anywhere on the page (order errors are scored above).
    numbers = 0
    for t in truth:
        match = max(found, key=lambda q: iou(t.box, q["bbox"]), default=None)
        if match is not None and iou(t.box, match["bbox"]) >= 0.5:
            numbers += match["number"] == t.number and match["label"] == t.label
    return {
        "hits": sum(hits),
        "total": len(truth),
        "exact": len(found) == len(truth) and all(hits),
        "numbers": numbers,
        "columns": result["columns"] == page.columns,
    }


def evaluate(seeds: range, verbose: bool) -> None:
    totals: dict[str, float] = defaultdict(float)
    by_tag: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    seconds: list[float] = []
    a4_200: list[float] = []  # pages rendered at 200 dpi (1654 px wide): the speed budget's page
    for seed in seeds:
        page = render_page(seed)
        result, spent = run(page.encode())
        seconds.append(spent)
        if page.image.shape[1] == 1654:
            a4_200.append(spent)
        s = score_page(page, result)
        for key in ("hits", "total", "exact", "numbers", "columns"):
            totals[key] += s[key]
            for tag in page.tags.items():
                if tag[0] != "quality":
                    by_tag[tag][key] += s[key]
                    by_tag[tag]["pages"] += key == "hits"
        totals["pages"] += 1
        if verbose and not s["exact"]:
            got = [(q["label"], q["bbox"]) for q in result["questions"]]
            want = [(q.label, q.box) for q in page.questions]
            print(f"  seed {seed} {page.tags}: {s}\n    want {want}\n    got  {got}")
    n, q = totals["pages"], totals["total"]
    print(f"held-out pages {int(n)} (seeds {seeds.start}-{seeds.stop - 1}), questions {int(q)}")
    print(f"  questions at IoU>={IOU_MIN} in reading order: {totals['hits'] / q:.3f}")
    print(f"  pages fully right:                         {totals['exact'] / n:.3f}")
    print(f"  printed numbers read right:                {totals['numbers'] / q:.3f}")
    print(f"  column count right:                        {totals['columns'] / n:.3f}")
    print(f"  CPU s/page (one thread): median {statistics.median(seconds):.3f}  max {max(seconds):.3f}")
    if a4_200:
        print(f"  CPU s/page, A4 at 200 dpi only: median {statistics.median(a4_200):.3f}  max {max(a4_200):.3f}  "
              f"(n={len(a4_200)})")  # fmt: skip
    print("  per layout: hit rate / pages fully right / numbers right (pages)")
    for (name, value), t in sorted(by_tag.items()):
        print(
            f"    {name:>8}={value:<12} {t['hits'] / t['total']:.3f} / {t['exact'] / t['pages']:.3f} / "
            f"{t['numbers'] / t['total']:.3f}  ({int(t['pages'])})"
        )


def non_pages() -> None:
    empty = 0
    for seed in range(9):
        kind, image = not_a_page(seed)
        ok, png = cv2.imencode(".png", image)
        assert ok
        result, _ = run(png.tobytes())
        empty += not result["questions"]
        print(f"  not a page ({kind} {image.shape[1]}x{image.shape[0]}): {len(result['questions'])} questions, "
              f"reason: {result.get('reason')}")  # fmt: skip
    print(f"non-page inputs answered with no questions: {empty}/9")


def tuning_scores(render: Any, seeds: range, labelled: bool) -> tuple[int, int, int, int]:
    """Questions found in order at IoU >= IOU_MIN, true questions, pages fully right and, for a generator with
    printed numbers (`labelled`), numbers read right at their place in reading order."""
    hits = total = exact = numbers = 0
    for seed in seeds:
        page = render(seed)
        found = run(page.encode())[0]["questions"]
        ok = in_order_hits(page.boxes, found)
        hits += sum(ok)
        total += len(ok)
        exact += len(found) == len(page.boxes) and all(ok)
        if labelled:
            numbers += sum(
                i < len(found) and (found[i]["number"], found[i]["label"]) == (n, label)
                for i, (n, label) in enumerate(zip(page.numbers, page.labels, strict=True))
            )
    return hits, total, exact, numbers


def tuning(count: int) -> None:
    hits, total, exact, _ = tuning_scores(render_exam_page, range(5000, 5000 + count), labelled=False)
    print(f"tuning generator (seeds 5000-{5000 + count - 1}): hit rate {hits / total:.3f}, exact {exact / count:.3f}")


def tuning_labelled(name: str, render: Any, seeds: range) -> None:
    """A tuning generator with printed numbers (`render_varied_page`, `render_font_page`): the held-out scores."""
    hits, total, exact, numbers = tuning_scores(render, seeds, labelled=True)
    print(f"tuning {name} (seeds {seeds.start}-{seeds.stop - 1}): hit rate {hits / total:.3f}, "
          f"exact {exact / len(seeds):.3f}, numbers {numbers / total:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--tuning", type=int, default=20)
    parser.add_argument("--varied", type=int, default=0, help="pages of seg_pages.render_varied_page (tuning)")
    parser.add_argument("--font", type=int, default=0, help="pages of seg_font_pages.render_font_page (tuning)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if not fonts_available():
        sys.exit("held-out fonts missing: apt-get install fonts-nanum fonts-noto-cjk fonts-dejavu")
    if args.pages:
        evaluate(range(args.first, args.first + args.pages), args.verbose)
        non_pages()
    if args.tuning:
        tuning(args.tuning)
    if args.varied:
        tuning_labelled("varied", render_varied_page, range(args.varied))
    if args.font and faces():
        tuning_labelled("font", render_font_page, range(args.font))


if __name__ == "__main__":
    main()
