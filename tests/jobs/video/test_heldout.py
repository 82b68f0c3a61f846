"""homework_video_analysis on held-out videos (bench/heldout/homework_videos.py: rendering code of its own, real
Debian fonts, colour, perspective, H.264), short and low-resolution: the issue's targets on a few of them.

The full held-out figures (20 videos, per transition kind) come from `python bench/bench_video.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ai_worker.jobs import video
from ai_worker.jobs.context import JobContext

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench" / "heldout"))
from homework_videos import Video, fonts_available, render_video

pytestmark = pytest.mark.skipif(
    not fonts_available(), reason="held-out pages need fonts-nanum, fonts-noto-cjk and fonts-dejavu (apt-get install)"
)
SEEDS = (900, 901)  # 640x480, 4 pages each: every transition kind, hands, writing while held
START_TOLERANCE_S = 0.75


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Video]:
    workdir = tmp_path_factory.mktemp("heldout")
    return [render_video(seed, workdir, pages=4, size=(640, 480)) for seed in SEEDS]


def test_heldout_pages_are_counted_timed_and_scored(videos: list[Video]) -> None:
    kinds = {kind for v in videos for kind in v.transitions}
    assert kinds == {"cut", "slide", "turn"}  # the seeds were chosen to cover every transition
    for clip in videos:
        result = video.handle(JobContext.for_test("homework_video_analysis", {}, clip.data))
        pages = result["pages"]
        assert len(pages) == clip.pages, (clip.transitions, [p["start_s"] for p in pages])
        for page, start, written, progressive in zip(pages, clip.starts, clip.written, clip.progressive, strict=True):
            assert abs(page["start_s"] - start) <= START_TOLERANCE_S
            assert page["written"] == written
            if progressive:
                assert page["writing_progressive"]
