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


def test_tall_lines_unique_to_a_page_are_writing_and_a_title_is_not() -> None:
    line = video._TextLine
    title = line(0.1, 0.5, 0.05, 0.030)  # on every page, in the same place, twice the print's height
    print_lines = [line(0.1, 0.9, 0.2 + 0.05 * k, 0.015) for k in range(12)]
    answer = line(0.2, 0.7, 0.6, 0.028)  # larger than print, on one page only
    pages = [(title, *print_lines), (title, *print_lines, answer), (title, *print_lines)]
    (blank, _), (written, area), (other, _) = video._tall_lines(pages)
    assert blank == other == 0.0
    assert written == pytest.approx(0.5) and area > 0
    assert video._Cues(0.0, 0.0, 0.0).decide(written, area).written
    assert not video._Cues(0.0, 0.0, 0.0).decide(blank, 0.0).written
    # One page: its title (the sheet's top) is print, an answer further down is writing.
    ((alone, _),) = video._tall_lines([(title, *print_lines, answer)])
    assert alone == pytest.approx(0.5)
    ((only_title, _),) = video._tall_lines([(title, *print_lines)])
    assert only_title == 0.0
    # A title block printed on the first page alone is print too: it stands at the sheet's top.
    first_only = [(title, *print_lines), tuple(print_lines), (*print_lines, answer)]
    assert [share for share, _ in video._tall_lines(first_only)] == [0.0, 0.0, pytest.approx(0.5)]
    # Ink that appeared while held is writing and progressive, whatever the lines say.
    appeared = video._Cues(new_ink=0.004, pen_ink=0.0, own_area=0.02).decide()
    assert appeared.written and appeared.progressive and appeared.score > 0
