"""homework_video_analysis: pages of homework shown in a video, and how much is written on each.

Guarantees:
- The video is probed before anything is decoded: no video stream, an unknown duration or a corrupt container is a
  permanent `invalid_input`; a duration over `AI_WORKER_VIDEO_MAX_S` or a frame over `AI_WORKER_MAX_PIXELS` is
  `input_too_large`.
- Frames are sampled by the environment's ffmpeg (`ffmpeg` on PATH, else the binary shipped by imageio-ffmpeg) at
  `AI_WORKER_VIDEO_FPS`, scaled to `AI_WORKER_VIDEO_SCALE_WIDTH`, grey, and streamed: memory holds a few frames,
  whatever the duration. The input is written to a private temporary directory that is always removed.
- A page is a run of frames that each look like the two before (SSIM after undoing hand shake) lasting at least
  `MIN_HOLD_S`; runs split by a brief occlusion or shake that look like the page before are the same page. The
  frame most similar to both neighbours represents the page and is scored by handwriting_analysis's `measure`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from ai_worker.config import VisionSettings
from ai_worker.errors import INPUT_TOO_LARGE, INVALID_INPUT, PermanentError
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.handwriting import measure

THUMB_WIDTH = 160  # frames are compared at this width: enough for page layout, blind to sensor noise
SSIM_WINDOW = 7  # scikit-image's default SSIM window
TEXTURE_STD = 12.0  # grey levels of local contrast that make a window "textured" (text, strokes, edges)
MIN_TEXTURED = 0.02  # below 2 % textured windows the frames are blank and plain SSIM decides
SAME_VIEW_SSIM = 0.6  # frames at least this similar (textured SSIM after shake correction) show the same page:
# on generated videos the same page scores >= 0.77 and different pages <= 0.48
MIN_PAPER_SHARE = 0.2  # the sheet fills at least a fifth of a frame held up to the camera
PAPER_INSET = 0.03  # trimmed off each side of the sheet's box: its shadowed edge against the desk
WRITTEN_MIN_SCORE = 0.3  # a filmed sheet is small and soft: "written" needs writing over ~3 % of it, not a few marks
MIN_HOLD_S = 0.5  # a view held steady shorter than this is a page turn, not a page
MIN_VIDEO_S = 2.0  # shorter videos are flagged too_short: no page can be shown and read in less
PROBE_TIMEOUT_S = 30.0  # reading a container header takes milliseconds; longer means a pathological file
DURATION_RE = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
VIDEO_STREAM_RE = re.compile(r"Stream #\S+.*?: Video: .*?, (\d{2,5})x(\d{2,5})")
ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")


@dataclass(frozen=True)
class Probe:
    duration_s: float
    width: int  # as displayed (after the container's rotation)
    height: int


def ffmpeg_exe() -> str:
    """The environment's ffmpeg: the pixi environment puts one on PATH; the PyPI venv ships one in imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def probe(exe: str, path: Path) -> Probe:
    """Duration and displayed frame size from the container header; PermanentError when it is not a video."""
    try:
        proc = subprocess.run(
            [exe, "-hide_banner", "-nostdin", "-i", str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PROBE_TIMEOUT_S,
            check=False,  # ffmpeg exits 1 when given no output: the header report on stderr is what is wanted
        )
    except subprocess.TimeoutExpired as exc:
        raise PermanentError(INVALID_INPUT, f"the video's header could not be read in {PROBE_TIMEOUT_S:.0f} s") from exc
    report = proc.stderr
    stream = VIDEO_STREAM_RE.search(report)
    duration = DURATION_RE.search(report)
    if stream is None:
        # ffmpeg's last word is that no output was given; the line before it says what was wrong with the input.
        lines = [line for line in report.strip().splitlines() if "output file" not in line]
        reason = lines[-1].strip() if lines else "ffmpeg printed nothing"
        raise PermanentError(INVALID_INPUT, f"not a readable video (no video stream found): {reason}")
    if duration is None:
        raise PermanentError(INVALID_INPUT, "the video's duration is unknown (a live stream or a damaged container)")
    hours, minutes, seconds = duration.groups()
    width, height = int(stream.group(1)), int(stream.group(2))
    rotation = ROTATION_RE.search(report)
    if rotation and round(abs(float(rotation.group(1)))) % 180 == 90:
        width, height = height, width  # ffmpeg auto-rotates: frames come out as displayed
    return Probe(int(hours) * 3600 + int(minutes) * 60 + float(seconds), width, height)


def _check_limits(info: Probe, vision: VisionSettings) -> None:
    if info.duration_s > vision.max_video_s:
        raise PermanentError(
            INPUT_TOO_LARGE, f"video is {info.duration_s:.1f} s long, limit is {vision.max_video_s:.0f} s"
        )
    if info.width * info.height > vision.max_pixels:
        raise PermanentError(
            INPUT_TOO_LARGE, f"video frames are {info.width}x{info.height}, limit is {vision.max_pixels} pixels"
        )
    if info.duration_s <= 0 or info.width <= 0 or info.height <= 0:
        raise PermanentError(INVALID_INPUT, f"video has no frames ({info.width}x{info.height}, {info.duration_s} s)")


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _similarity(reference: np.ndarray, moving: np.ndarray) -> float:
    """How alike two thumbnails are: mean SSIM over their textured windows, after undoing the shift between them.

    Blank paper is alike on every page, so windows flat in both frames are left out; a shift that leaves less than
    half of the frame overlapping means a different view.
    """
    (dx, dy), _ = cv2.phaseCorrelate(reference, moving)
    undo = np.array([[1.0, 0.0, -dx], [0.0, 1.0, -dy]], np.float32)
    shifted = cv2.warpAffine(moving, undo, (moving.shape[1], moving.shape[0]))
    mx, my = int(abs(dx)) + SSIM_WINDOW, int(abs(dy)) + SSIM_WINDOW  # compare only where both frames have content
    a, b = reference[my:-my, mx:-mx], shifted[my:-my, mx:-mx]
    if a.size < reference.size / 2:
        return 0.0
    _, ssim_map = structural_similarity(a, b, data_range=255.0, win_size=SSIM_WINDOW, full=True)
    textured = (_local_std(a) > TEXTURE_STD) | (_local_std(b) > TEXTURE_STD)
    if textured.mean() < MIN_TEXTURED:
        return float(ssim_map.mean())
    return float(ssim_map[textured].mean())


def _local_std(img: np.ndarray) -> np.ndarray:
    mean = cv2.blur(img, (SSIM_WINDOW, SSIM_WINDOW))
    return np.sqrt(np.maximum(cv2.blur(img * img, (SSIM_WINDOW, SSIM_WINDOW)) - mean * mean, 0.0))


def _paper(frame: np.ndarray) -> np.ndarray:
    """The sheet in a frame: the bounding box of the largest bright region, inset so its edge against the desk is
    not read as ink; the whole frame when no region covers `MIN_PAPER_SHARE` of it."""
    _, bright = cv2.threshold(frame, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    count, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    if count <= 1:
        return frame
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = stats[best]
    if area < MIN_PAPER_SHARE * frame.size:
        return frame
    dx, dy = round(w * PAPER_INSET), round(h * PAPER_INSET)
    return frame[y + dy : y + h - dy, x + dx : x + w - dx]


@dataclass
class _Run:
    """Consecutive frames that each look like the one before."""

    first: int
    last: int
    best_frame: np.ndarray
    best_thumb: np.ndarray
    best_stability: float


@dataclass
class _Page:
    first: int
    last: int
    frame: np.ndarray
    thumb: np.ndarray
    held: int  # frames in the run the representative frame came from


class _Pages:
    """Streams frames into runs, runs into pages; each page is scored as soon as no later view can join it."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.min_frames = max(2, round(MIN_HOLD_S * fps))
        self.run: _Run | None = None
        self.page: _Page | None = None
        self.recent: list[tuple[np.ndarray, np.ndarray, float]] = []  # the run's last frames: (frame, thumb, link)
        self.done: list[dict[str, Any]] = []

    def add(self, index: int, frame: np.ndarray) -> None:
        h, w = frame.shape
        thumb = cv2.resize(frame, (THUMB_WIDTH, max(32, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
        thumb = thumb.astype(np.float32)
        # The same view must look like the previous frame *and* the one before: a frame half-way through a page
        # turn can look like both pages, but the page before the turn never looks like the page after it.
        links = [_similarity(previous, thumb) for _, previous, _ in self.recent[-2:]]
        if self.run is not None and links and min(links) >= SAME_VIEW_SSIM:
            prev_frame, prev_thumb, prev_link = self.recent[-1]
            # The previous frame now has both neighbours: it may be the steadiest view of the run.
            stability = min(prev_link, links[-1]) if len(self.recent) > 1 else links[-1]
            if stability > self.run.best_stability:
                self.run.best_frame, self.run.best_thumb, self.run.best_stability = prev_frame, prev_thumb, stability
            self.run.last = index
            self.recent = [self.recent[-1], (frame, thumb, links[-1])]
        else:
            self._close_run()
            self.run = _Run(index, index, frame, thumb, -1.0)
            self.recent = [(frame, thumb, 0.0)]

    def _close_run(self) -> None:
        run, self.run = self.run, None
        if run is None or run.last - run.first + 1 < self.min_frames:
            return  # a page turn, a hand passing: not a page
        held = run.last - run.first + 1
        if self.page is not None and _similarity(self.page.thumb, run.best_thumb) >= SAME_VIEW_SSIM:
            self.page.last = run.last
            if held > self.page.held:
                self.page.frame, self.page.thumb, self.page.held = run.best_frame, run.best_thumb, held
            return
        self._score_page()
        self.page = _Page(run.first, run.last, run.best_frame, run.best_thumb, held)

    def _score_page(self) -> None:
        if self.page is None:
            return
        scored = measure(_paper(self.page.frame))
        self.done.append(
            {
                "start_s": round(self.page.first / self.fps, 3),
                "end_s": round((self.page.last + 1) / self.fps, 3),
                "writing_score": round(scored.writing_score, 4),
                "written": scored.writing_score >= WRITTEN_MIN_SCORE,
            }
        )
        self.page = None

    def finish(self) -> list[dict[str, Any]]:
        self._close_run()
        self._score_page()
        return self.done


def _sample(exe: str, path: Path, info: Probe, vision: VisionSettings, workdir: Path) -> tuple[list[dict], int]:
    """Decode, sample and segment; returns (pages, sampled frame count)."""
    width = min(vision.video_scale_width, info.width) // 2 * 2
    height = max(2, round(info.height * width / info.width / 2) * 2)
    frame_bytes = width * height
    command = [
        exe, "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-an", "-sn", "-dn",
        "-vf", f"fps={vision.video_fps},scale={width}:{height}:flags=area",
        "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1",
    ]  # fmt: skip
    pages = _Pages(vision.video_fps)
    count = 0
    with open(workdir / "ffmpeg.log", "wb") as log:  # a file, not a pipe: a chatty decoder cannot block us
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        try:
            assert proc.stdout is not None
            while True:
                raw = _read_exact(proc.stdout, frame_bytes)
                if len(raw) < frame_bytes:
                    break
                pages.add(count, np.frombuffer(raw, np.uint8).reshape(height, width))
                count += 1
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    if count == 0:
        error = (workdir / "ffmpeg.log").read_text(errors="replace").strip().splitlines()
        raise PermanentError(INVALID_INPUT, f"no frame could be decoded: {error[-1] if error else 'empty stream'}")
    return pages.finish(), count


def handle(ctx: JobContext) -> dict[str, Any]:
    vision = ctx.settings.vision
    data = ctx.read_input()
    if not data:
        raise PermanentError(INVALID_INPUT, "input is empty")
    exe = ffmpeg_exe()
    with tempfile.TemporaryDirectory(prefix="ai-worker-video-") as tmp:
        workdir = Path(tmp)
        path = workdir / "input"
        path.write_bytes(data)
        info = probe(exe, path)
        _check_limits(info, vision)
        pages, sampled = _sample(exe, path, info, vision, workdir)
    written = sum(p["written"] for p in pages)
    return {
        "duration_s": round(info.duration_s, 3),
        "sampled_frames": sampled,
        "pages_detected": len(pages),
        "pages": pages,
        "filled_ratio": round(written / len(pages), 4) if pages else 0.0,
        "too_short": info.duration_s < MIN_VIDEO_S or not pages,
    }
