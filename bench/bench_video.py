"""homework_video_analysis accuracy and speed on generated videos: prints figures, asserts nothing.

    python bench/bench_video.py [--set heldout|tuning] [--videos 20] [--seed 0] [--verbose] [--cache DIR]

- `heldout` (the default, the figures to quote): bench/heldout/homework_videos.py, rendering code of its own (real
  Debian fonts, colour desks, perspective, hands with arms, folds showing the back of the sheet, H.264);
- `tuning`: tests/jobs/video/hw_videos.py, the synthetic generator the page thresholds were chosen on;
- `worksheets`: tests/jobs/video/hw_worksheets.py, the tuning generator of realistic worksheets (fonts other than the
  held-out set's, colour, perspective, H.264) the `written` decision was chosen on.

Figures: exact page count (share of videos); per transition kind (cut, slide, turn) the share of page changes
detected; extra pages by cause (during a transition of a kind, a hand crossing, writing, a steady hold); start
error of found pages (to the moment the page has settled, and whether the start falls within the transition that
brings it in, 0.75 s either side); `written` and `writing_progressive` accuracy on found pages; processing time /
duration, both wall time and CPU time (this process and its ffmpeg child), to be read with the machine's load in mind.
A detected page belongs to the true page it overlaps most; a true page with none is missed, a second one is extra.
`--cache DIR` keeps the rendered videos (one pickle per set and seed) between runs: the held-out set takes minutes
to render.
"""

from __future__ import annotations

import argparse
import pickle
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "jobs" / "video"))
sys.path.insert(0, str(ROOT / "bench" / "heldout"))
sys.path.insert(0, str(ROOT))

from ai_worker.jobs import video  # noqa: E402
from ai_worker.jobs.context import JobContext  # noqa: E402

START_TOLERANCE_S = 0.75


class Truth(Protocol):
    data: bytes
    duration_s: float
    starts: list[float]
    ends: list[float]
    written: list[bool]
    progressive: list[bool]
    transitions: list[str]
    events: list[tuple[str, float, float]]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def score(clip: Truth, pages: list[dict[str, Any]]) -> dict[str, Any]:
    """Match detected pages to true ones and count what went right and wrong in one video."""
    true = list(zip(clip.starts, clip.ends, strict=True))
    owner: list[int | None] = []
    for page in pages:
        overlaps = [_overlap(page["start_s"], page["end_s"], s, e) for s, e in true]
        best = max(range(len(true)), key=lambda i: overlaps[i])
        owner.append(best if overlaps[best] > 0 else None)
    found: dict[int, int] = {}
    extras: list[str] = []
    for j, i in enumerate(owner):
        if i is not None and i not in found:
            found[i] = j
            continue
        if i is not None:  # keep the detected page that overlaps its true page most; the other is extra
            kept = found[i]
            s, e = true[i]
            if _overlap(pages[j]["start_s"], pages[j]["end_s"], s, e) > _overlap(
                pages[kept]["start_s"], pages[kept]["end_s"], s, e
            ):
                found[i], j = j, kept
        extras.append(_cause(clip, pages[j]))
    changes = Counter()
    detected = Counter()
    for i, kind in enumerate(clip.transitions):
        changes[kind] += 1
        detected[kind] += i in found and i + 1 in found and found[i] != found[i + 1]
    starts = [abs(pages[j]["start_s"] - clip.starts[i]) for i, j in found.items()]
    arrivals = [0.0, *clip.ends[:-1]]  # a page arrives during the transition before it settles
    in_window = [
        arrivals[i] - START_TOLERANCE_S <= pages[j]["start_s"] <= clip.starts[i] + START_TOLERANCE_S
        for i, j in found.items()
    ]
    written = [pages[j]["written"] == clip.written[i] for i, j in found.items()]
    progressive = [pages[j].get("writing_progressive", False) == clip.progressive[i] for i, j in found.items()]
    return {
        "exact": len(pages) == len(true),
        "missed": len(true) - len(found),
        "extras": extras,
        "changes": changes,
        "detected": detected,
        "starts": starts,
        "in_window": in_window,
        "written": written,
        "progressive": progressive,
    }


def _cause(clip: Truth, page: dict[str, Any]) -> str:
    """Why an extra page was seen: the event it overlaps most (a transition of a kind, a hand, writing)."""
    a, b = page["start_s"], page["end_s"]
    windows = [(f"transition:{kind}", clip.ends[i], clip.starts[i + 1]) for i, kind in enumerate(clip.transitions)]
    windows += clip.events
    best = max(windows, key=lambda w: _overlap(a, b, w[1] - 0.25, w[2] + 0.25), default=None)
    if best is None or _overlap(a, b, best[1] - 0.25, best[2] + 0.25) <= 0:
        return "steady hold"
    return best[0]


def _rendered(render: Any, name: str, seed: int, workdir: Path, cache: Path | None) -> Truth:
    if cache is None:
        return render(seed, workdir)  # type: ignore[no-any-return]
    cached = cache / f"{name}-{seed}.pkl"
    if cached.exists():
        with cached.open("rb") as f:
            return pickle.load(f)  # type: ignore[no-any-return]  # written by this script
    clip = render(seed, workdir)
    cache.mkdir(parents=True, exist_ok=True)
    with cached.open("wb") as f:
        pickle.dump(clip, f)
    return clip  # type: ignore[no-any-return]


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + child.ru_utime + child.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("heldout", "tuning", "worksheets"), default="heldout")
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--cache", type=Path, default=None, help="keep rendered videos here between runs")
    args = parser.parse_args()
    if args.set == "heldout":
        from homework_videos import render_video as render  # bench/heldout
    elif args.set == "worksheets":
        from hw_worksheets import render_worksheet_clip as render  # tests/jobs/video
    else:
        from hw_videos import render_clip as render  # tests/jobs/video

    results, wall, cpu, footage = [], 0.0, 0.0, 0.0
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        for k in range(args.videos):
            seed = args.seed + k
            clip = _rendered(render, args.set, seed, Path(tmp), args.cache)
            ctx = JobContext.for_test("homework_video_analysis", {}, clip.data)
            cpu0, wall0 = _cpu(), time.perf_counter()
            result = video.handle(ctx)
            wall += time.perf_counter() - wall0
            cpu += _cpu() - cpu0
            footage += clip.duration_s
            outcome = score(clip, result["pages"])
            results.append(outcome)
            if args.verbose or not outcome["exact"]:
                truth = [
                    f"{s:.1f}{'w' if w else ''}{'+' if p else ''}"
                    for s, w, p in zip(clip.starts, clip.written, clip.progressive, strict=True)
                ]
                seen = [
                    f"{p['start_s']:.1f}{'w' if p['written'] else ''}{'+' if p.get('writing_progressive') else ''}"
                    f"({p['writing_score']:.2f})"
                    for p in result["pages"]
                ]
                print(f"seed {seed}: {'ok ' if outcome['exact'] else 'BAD'} true {' '.join(truth)}")
                print(f"   transitions {clip.transitions}; events {[(e, round(a, 1)) for e, a, _ in clip.events]}")
                print(f"   seen {' '.join(seen)}")
    n = len(results)
    exact = sum(r["exact"] for r in results)
    changes = sum((r["changes"] for r in results), Counter())
    detected = sum((r["detected"] for r in results), Counter())
    extras = Counter(cause for r in results for cause in r["extras"])
    starts = [s for r in results for s in r["starts"]]
    written = [w for r in results for w in r["written"]]
    progressive = [w for r in results for w in r["progressive"]]
    pages = sum(len(r["written"]) + r["missed"] for r in results)
    print(f"set={args.set} videos={n} footage={footage:.0f} s pages={pages}")
    print(f"page count exact: {exact}/{n} ({exact / n:.0%})")
    for kind in sorted(changes):
        print(f"  {kind:<6} page changes detected: {detected[kind]}/{changes[kind]}")
    print(f"missed pages: {sum(r['missed'] for r in results)}; extra pages: {sum(extras.values())} {dict(extras)}")
    within = sum(s <= START_TOLERANCE_S for s in starts)
    windowed = sum(w for r in results for w in r["in_window"])
    print(
        f"start error (to the page settled): {within}/{len(starts)} within {START_TOLERANCE_S} s, "
        f"median {statistics.median(starts):.2f} s, max {max(starts):.2f} s; "
        f"{windowed}/{len(starts)} within {START_TOLERANCE_S} s of its transition in"
    )
    print(f"written right: {sum(written)}/{len(written)} ({sum(written) / len(written):.1%}) of found pages")
    print(f"writing_progressive right: {sum(progressive)}/{len(progressive)} of found pages")
    print(f"time: wall {wall / footage:.3f} x duration, cpu {cpu / footage:.3f} x duration (job + ffmpeg)")


if __name__ == "__main__":
    main()
