"""homework_video_analysis on realistic worksheets (tests/jobs/video/hw_worksheets.py: Korean or English print in
real fonts, colour, perspective, H.264): which pages are written on, before filming or while held."""

from __future__ import annotations

from pathlib import Path

import pytest
from hw_videos import Clip
from hw_worksheets import fonts_available, render_worksheet_clip

from ai_worker.jobs import video
from ai_worker.jobs.context import JobContext

pytestmark = pytest.mark.skipif(
    not fonts_available(),
    reason="worksheet pages need fonts-unfonts-core, fonts-baekmuk, fonts-liberation and fonts-freefont (apt-get)",
)
CASES = {  # seed: (pen, what each page carries, transitions)
    31: ("blue", ("dense", "written", "progressive"), ("turn", "slide")),
    32: ("pencil", ("blank", "progressive"), ("cut",)),
}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Clip, dict]]:
    workdir: Path = tmp_path_factory.mktemp("worksheets")
    out = []
    for seed, (pen, plan, kinds) in CASES.items():
        clip = render_worksheet_clip(seed, workdir, kinds=kinds, size=(640, 480), max_hold_s=3.2, plan=plan, pen=pen)
        out.append((clip, video.handle(JobContext.for_test("homework_video_analysis", {}, clip.data))))
    return out


def test_pen_ink_and_writing_while_held_are_written_and_dense_print_is_not(
    analysed: list[tuple[Clip, dict]],
) -> None:
    for clip, result in analysed:
        pages = result["pages"]
        assert len(pages) == clip.pages, [p["start_s"] for p in pages]
        assert [p["written"] for p in pages] == clip.written
        assert [p["writing_progressive"] for p in pages] == clip.progressive
        assert all((p["writing_score"] > 0) == p["written"] for p in pages)


def test_one_pen_per_homework_overrides_the_measure_but_not_ink_that_appeared() -> None:
    print_read_as_writing = video._Cues(new_ink=0.0, pen_ink=0.0, measured=0.12, own_area=0.0)
    assert print_read_as_writing.decide().written
    assert not print_read_as_writing.decide(pen_seen=True).written  # the pen is known: this page has none of it
    appeared = video._Cues(new_ink=0.004, pen_ink=0.0, measured=0.0, own_area=0.02)
    decided = appeared.decide(pen_seen=True)
    assert decided.written and decided.progressive and decided.score > 0
    assert not video._Cues(0.0, 0.0, 0.0, 0.0).decide().written
