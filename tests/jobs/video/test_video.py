"""homework_video_analysis on generated videos: page counts, written pages, settings, caps, bad input, temp files."""

from __future__ import annotations

import itertools
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hw_videos import Clip, render_clip

from ai_worker.config import Settings
from ai_worker.errors import INPUT_TOO_LARGE, INVALID_INPUT, PermanentError
from ai_worker.jobs import video
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.samples import sample_homework_video

SEEDS = (100, 101)  # 2 videos of 3 pages: cuts, slides and turns between pages of one homework
START_TOLERANCE_S = 0.75


def run(data: bytes, settings: Settings | None = None) -> dict:
    return video.handle(JobContext.for_test("homework_video_analysis", {}, data, settings=settings))


def with_vision(**changes: object) -> Settings:
    base = Settings()
    return replace(base, vision=replace(base.vision, **changes))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Clip]:
    workdir = tmp_path_factory.mktemp("clips")
    return [render_clip(seed, workdir, pages=3) for seed in SEEDS]


def test_pages_of_one_homework_are_counted_timed_and_scored(clips: list[Clip]) -> None:
    for clip in clips:
        result = run(clip.data)
        assert result["duration_s"] == pytest.approx(clip.duration_s, abs=0.1)
        assert result["too_short"] is False
        pages = result["pages"]
        assert all(0 <= p["start_s"] <= p["frame_s"] < p["end_s"] <= result["duration_s"] + 0.5 for p in pages)
        assert all(a["end_s"] <= b["start_s"] for a, b in itertools.pairwise(pages))
        assert result["filled_ratio"] == pytest.approx(sum(p["written"] for p in pages) / len(pages), abs=1e-3)
        assert result["pages_detected"] == clip.pages, (clip.transitions, [p["start_s"] for p in pages])
        for page, start, written in zip(pages, clip.starts, clip.written, strict=True):
            assert abs(page["start_s"] - start) <= START_TOLERANCE_S
            assert page["written"] == written
            assert 0.0 <= page["writing_score"] <= 1.0
            assert page["writing_progressive"] is False or page["written"]


def test_sampling_rate_and_width_follow_the_settings() -> None:
    data = sample_homework_video()  # 360x480, 8.1 s, 3 pages
    fast = run(data, with_vision(video_fps=3.0, video_scale_width=320))
    assert fast["sampled_frames"] == pytest.approx(8.1 * 3, abs=2)
    assert fast["pages_detected"] == 3
    slow = run(data, with_vision(video_fps=1.0))
    assert slow["sampled_frames"] == pytest.approx(8.1, abs=1)


def test_video_over_the_duration_cap_is_refused_before_decoding(
    clips: list[Clip], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decode(*args: object) -> None:
        raise AssertionError("decoded a video over the duration cap")

    monkeypatch.setattr(video, "_sample", no_decode)
    with pytest.raises(PermanentError) as info:
        run(clips[0].data, with_vision(max_video_s=5.0))
    assert info.value.code == INPUT_TOO_LARGE
    assert "limit is 5 s" in info.value.message


def test_frames_over_the_pixel_cap_are_refused(clips: list[Clip]) -> None:
    with pytest.raises(PermanentError) as info:
        run(clips[0].data, with_vision(max_pixels=100_000))  # the clips are 360x480
    assert info.value.code == INPUT_TOO_LARGE


def audio_only(path: Path) -> bytes:
    command = [video.ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=2", str(path)]
    subprocess.run(command, check=True)
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["garbage", "truncated", "audio", "empty"])
def test_unreadable_input_is_invalid(kind: str, clips: list[Clip], tmp_path: Path) -> None:
    data = {
        "garbage": b"\x00\x01 definitely not a video " * 100,
        "truncated": clips[0].data[:2000],
        "audio": audio_only(tmp_path / "tone.m4a") if kind == "audio" else b"",
        "empty": b"",
    }[kind]
    with pytest.raises(PermanentError) as info:
        run(data)
    assert info.value.code == INVALID_INPUT
    assert info.value.message


def test_short_video_is_flagged(tmp_path: Path) -> None:
    render_clip(7, tmp_path, pages=1)  # writes clip7.mp4
    trimmed = tmp_path / "short.mp4"
    command = [video.ffmpeg_exe(), "-v", "error", "-y", "-i", str(tmp_path / "clip7.mp4"), "-t", "1.5", str(trimmed)]
    subprocess.run(command, check=True)
    result = run(trimmed.read_bytes())
    assert result["too_short"] is True
    assert result["duration_s"] < 2.0


def test_temporary_files_are_removed_on_success_and_failure(
    clips: list[Clip], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    run(sample_homework_video())
    with pytest.raises(PermanentError):
        run(clips[1].data[:3000])
    assert list(private.iterdir()) == []
