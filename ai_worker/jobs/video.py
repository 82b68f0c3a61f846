"""homework_video_analysis: pages of homework shown in a video, and how much is written on each.

Guarantees:
- The video is probed before anything is decoded: no video stream, an unknown duration or a corrupt container is a
  permanent `invalid_input`; a duration over `AI_WORKER_VIDEO_MAX_S` or a frame over `AI_WORKER_MAX_PIXELS` is
  `input_too_large`.
- Frames are sampled by the environment's ffmpeg (`ffmpeg` on PATH, else the binary shipped by imageio-ffmpeg) at
  `AI_WORKER_VIDEO_FPS`, scaled to `AI_WORKER_VIDEO_SCALE_WIDTH`, in colour, and streamed: memory holds a few frames,
  whatever the duration. The input is written to a private temporary directory that is always removed.
- Frames are compared by content, not by their look at a coarse scale: each sampled frame is cropped to the sheet
  (the box of its brightest large region) and compared at up to `ANALYSIS_PIXELS` of that crop, so the letters of a
  sheet that fills part of a 720p frame stay resolved; it is registered onto the one before by ORB keypoints on the
  sheet (rotation, scale and shift; phase correlation when keypoints are too few), and the two are compared letter
  by letter: the local correlation of their Laplacian of Gaussian over the windows holding ink on paper, where both
  show paper (a hand or the frame's edge hides what it covers instead of changing it). Two pages of one homework
  share a header and boxes but not their problems, so at least `100 - MATCH_PERCENTILE` % of the content must match.
- A view is held while consecutive frames match (>= `SAME_VIEW`) and it moves less than `MAX_STEP` of the frame per
  sample (a sheet sliding or folding is in motion, whatever it shows); held at least `MIN_HOLD_S`, showing ink on
  paper with margins (`_page_like`: a blank back or a textured desk is not a page), it is a page, unless its
  content is that of the page before (>= `SAME_PAGE`, counting only the earlier view's content: writing added while
  held, a hand that crossed, shake or exposure drift do not make a new page; print that changed does).
- Each page's cues are taken as soon as the next one starts: its sheet (the largest bright quadrilateral of its last
  steady view) is rectified to `SHEET_HEIGHT` px, and it is written on when any of three cues says so (`_Cues`): ink
  that appeared while it was held (its first steady view registered onto the last: print does not appear; this is
  also `writing_progressive`), pen ink (ink keeping a hue against the paper under it: print is black or grey), or
  lines of marks `TALL_TEXT` times as tall as the homework's print (the median line of all its pages), in the same
  place on no other page (a repeated title is print) and below the sheet's top (a title block), over `TALL_MIN` of the
  sheet's width: handwriting in black pen or pencil is larger than a worksheet's print. handwriting_analysis's
  `measure` is not used: at a video's resolution it takes dense print for writing and misses pencil. Memory holds the
  current frame, the one before, a few views per page and each page's cues (a few numbers and its lines' boxes),
  whatever the duration.
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

from ai_worker.config import VisionSettings
from ai_worker.errors import INPUT_TOO_LARGE, INVALID_INPUT, PermanentError
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.imaging import weighted_median

ANALYSIS_PIXELS = 640 * 360  # frames are compared on the sheet's crop at most this many pixels (never enlarged):
# letters are resolved, so two pages of one homework differ, even when the sheet fills a part of the frame
CROP_WIDTH = 160  # px: the thumbnail the sheet is found on (its brightest large region) before cropping
CROP_MIN_SHARE = 0.05  # a bright region under 5 % of the frame is not the sheet: the whole frame is compared
CROP_MARGIN = 0.15  # the sheet's box is widened by 15 % of its size on each side (shake, a corner lifted)
ORB_FEATURES = 500  # keypoints per frame for registration (shake, drift, a sheet moved on the desk)
ORB_RATIO = 0.8  # Lowe's ratio test on the two nearest descriptors
DETAIL_SIGMA = 1.0  # px at the analysis width: the Gaussian of the Laplacian that compares letters' strokes
DETAIL_FLOOR = 0.05  # variance floor of the correlation, relative to the reference's median content variance
MAX_STEP = 0.03  # a view that moved more than 3 % of the frame's width since the last sample is in motion
MIN_INLIERS = 12  # a homography needs this many RANSAC inliers (3 px) to be trusted, else phase correlation
MAX_ZOOM = 1.6  # a registration that scales by more than this (or its inverse) is a mismatch, not shake
WINDOW = 9  # local normalised cross-correlation window at the analysis width (about a letter)
TEXTURE_STD = 0.05  # local contrast (relative to the paper's brightness) of a window holding print or writing
PAPER_LEVEL = 0.7  # a pixel whose background is at least 70 % of the paper's brightness is paper (not desk, hand)
INK_CONTRAST = 0.7  # ink is at least 30 % darker than the paper around it (pencil on white: 60 %)
RULE_PX = 21  # a straight run of ink this long (at the analysis width) is a rule or a box border, not a letter
PAPER_CLOSE = 15  # closing kernel removing letters to see the paper under them
MATCH_PERCENTILE = 20  # 80 % of the content must match: what two pages of one homework share (header, boxes)
# is a large part of a page, what differs (the problems) is a larger part
SAME_VIEW = 0.4  # consecutive frames whose content correlates this much (x visible share) show one still view
SAME_PAGE = 0.4  # a held view whose earlier page's content correlates this much is that page again
MIN_VISIBLE = 0.5  # share of a view's content that must be visible (paper, in frame) in the other to compare
MIN_CONTENT = 0.003  # a page shows content (print, writing) in 0.3 % of its crop: a blank back shows none
MAX_CONTENT_OF_PAPER = 0.7  # ... and at most 70 % of its paper: a page has margins and space between lines
MIN_HOLD_S = 0.5  # a view held steady shorter than this is a page turn, not a page
MIN_PAPER_SHARE = 0.2  # the sheet fills at least a fifth of a frame held up to the camera
QUAD_EPS = 0.02  # outline simplification tolerance (share of its perimeter) when looking for the sheet's 4 corners
PAPER_INSET = 0.02  # trimmed off each side of the sheet: its shadowed edge against the desk
SHEET_HEIGHT = 1000  # the sheet is rectified to this height (px) before its writing is measured: page-like
SHEET_CLOSE = 25  # closing kernel (px of the rectified sheet) removing marks to see the paper under them
SHEET_PAPER = 0.8  # the sheet's paper is at least 80 % as bright as its brightest tenth (a hand is darker)
SHEET_INK = 0.75  # ink is at least 25 % darker than the paper around it
NEW_INK_SLACK = 7  # ink of the last view further than 3 px from any ink of the first (registration slack) is new
NEW_INK_MIN = 0.002  # new ink over 0.2 % of the sheet (a few words) was written while the page was held ...
MAX_INK_GONE = 0.1  # ... when at most 10 % of the first view's ink went (more: the two views are misregistered)
PAPER_MARGIN = 15  # ... counted where both views show paper 7 px away from anything else (a hand, a pen)
PEN_HUE = (
    0.12  # ink whose channels pass the paper's light in shares this far apart is coloured pen (tuning: print <= 0.1)
)
PEN_MARK_HUE = 0.15  # ... in a mark whose channels lose light this unequally summed over it (print: its fringes cancel)
FRINGE_GROW = 7  # a mark is its ink grown by 3 px: both edges of a stroke and their colour fringes
PEN_INK_MIN = 0.0002  # coloured pen ink over 0.02 % of the sheet (a tick, a short answer) is writing
LINE_RULE_PX = 60  # px of the rectified sheet: a straight run of ink this long is a rule or a box border
LINE_JOIN_PX = 21  # marks closer than this along a line join it (letters, words)
LINE_MIN_ASPECT = 2.0  # a line of marks is at least twice as wide as tall ...
LINE_MIN_PX = 30  # ... and 30 px wide, 4 px tall, with 10 px of ink (a dot, a speck is none)
LINE_MIN_HEIGHT_PX = 4
LINE_MIN_INK_PX = 10
TALL_TEXT = 1.5  # a line 1.5x the homework's print height is handwriting (a title, shared by its pages, excepted)
TALL_MIN = 0.25  # tall lines a quarter of the sheet's width in all (a short answer) make the page written
SHARED_SLACK = 0.03  # a tall line within 3 % of the sheet of one on another page (both ends, height) is repeated print
HEADER_SHARE = 0.12  # tall lines in the sheet's top 12 % are a title block (the first page's alone too), print
OWN_ZONE = 11  # pen or new ink grown by 5 px to measure the area it writes on
SCORE_AREA_SCALE = 0.08  # writing_score = 1 - exp(-area / 0.08), as handwriting_analysis's
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


class _View:
    """One sampled frame, prepared for comparison: normalised for exposure, its paper and content masks, keypoints."""

    def __init__(self, index: int, color: np.ndarray, orb: cv2.ORB) -> None:
        self.index = index
        self.color = color  # as decoded (BGR): kept only while it may represent a page
        self.frame = frame = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)
        x0, y0, x1, y1 = _sheet_box(frame)
        scale = min(1.0, (ANALYSIS_PIXELS / ((x1 - x0) * (y1 - y0))) ** 0.5)
        size = (max(16, round((x1 - x0) * scale)), max(16, round((y1 - y0) * scale)))
        small = cv2.resize(frame[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
        self.small = small
        # analysis pixels -> frame pixels (the crop's offset and scale)
        self.to_frame = np.array(
            [[(x1 - x0) / size[0], 0.0, x0], [0.0, (y1 - y0) / size[1], y0], [0.0, 0.0, 1.0]], np.float64
        )
        level = max(float(np.percentile(small, 95)), 1.0)  # the paper's brightness: exposure drift divides out
        self.norm = small.astype(np.float32) / level
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (PAPER_CLOSE, PAPER_CLOSE))
        background = cv2.morphologyEx(self.norm, cv2.MORPH_CLOSE, kernel)
        self.paper = background >= PAPER_LEVEL
        # Content is ink on paper: windows with contrast that hold marks much darker than the paper around them
        # (the grain of a light desk, a weave, paper texture have contrast but no such marks).
        ink = (self.norm < INK_CONTRAST * background).astype(np.uint8)
        # Rules, answer lines and box borders are the homework's template, the same on all its pages: only the
        # windows of the other marks (the problems' text, writing) tell two pages apart.
        rules = cv2.bitwise_or(
            cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (RULE_PX, 1))),
            cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, RULE_PX))),
        )
        marks = cv2.subtract(ink, cv2.dilate(rules, np.ones((3, 3), np.uint8)))
        near_ink = cv2.dilate(marks, np.ones((WINDOW, WINDOW), np.uint8)) > 0
        mean = cv2.blur(self.norm, (WINDOW, WINDOW))
        grey_var = cv2.blur(self.norm * self.norm, (WINDOW, WINDOW)) - mean * mean
        self.content = (grey_var > TEXTURE_STD**2) & self.paper & near_ink
        self.content_share = float(self.content.mean())
        self.paper_share = float(self.paper.mean())
        # Letters are compared by their shapes: a Laplacian of Gaussian keeps strokes and drops the dark band a line
        # of text makes, which any two lines of text share.
        self.detail = _detail(self.norm)
        self.mean, self.var = _local_stats(self.detail)
        self.keypoints, self.descriptors = orb.detectAndCompute(small, self.paper.astype(np.uint8))  # the sheet's


@dataclass(frozen=True)
class _Match:
    ncc: float  # local correlation that `MATCH_PERCENTILE` % of the compared windows stay under
    visible: float  # share of the reference's content that was visible in the other view
    moved: float  # how far the view moved (mean shift of the frame's central points / frame width)

    @property
    def score(self) -> float:
        return self.ncc * min(1.0, self.visible / MIN_VISIBLE) if self.visible > 0 else 0.0


def _detail(norm: np.ndarray) -> np.ndarray:
    return cv2.Laplacian(cv2.GaussianBlur(norm, (0, 0), DETAIL_SIGMA), cv2.CV_32F)


def _local_stats(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = cv2.blur(img, (WINDOW, WINDOW))
    return mean, np.maximum(cv2.blur(img * img, (WINDOW, WINDOW)) - mean * mean, 0.0)


def _sheet_box(frame: np.ndarray) -> tuple[int, int, int, int]:
    """The part of the frame the sheet is in (x0, y0, x1, y1): the box of its brightest large region (Otsu on a
    thumbnail), widened by `CROP_MARGIN`; the whole frame when no region is large enough."""
    h, w = frame.shape
    thumb_w = min(CROP_WIDTH, w)
    thumb = cv2.resize(frame, (thumb_w, max(8, round(h * thumb_w / w))), interpolation=cv2.INTER_AREA)
    _, bright = cv2.threshold(thumb, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    count, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    if count < 2:
        return 0, 0, w, h
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    bx, by, bw, bh, area = (int(v) for v in stats[best])
    if area < CROP_MIN_SHARE * thumb.size:
        return 0, 0, w, h
    fx, fy = w / thumb.shape[1], h / thumb.shape[0]
    mx, my = CROP_MARGIN * bw, CROP_MARGIN * bh
    x0, y0 = max(0, int((bx - mx) * fx)), max(0, int((by - my) * fy))
    x1, y1 = min(w, int(np.ceil((bx + bw + mx) * fx))), min(h, int(np.ceil((by + bh + my) * fy)))
    return (x0, y0, x1, y1) if x1 - x0 >= 16 and y1 - y0 >= 16 else (0, 0, w, h)


def _register(ref: _View, other: _View, matcher: cv2.BFMatcher) -> np.ndarray:
    """The transform taking `ref`'s analysis pixels to `other`'s (ORB + RANSAC; phase correlation when too few
    keypoints). The two may be different crops at different scales: a still camera maps by their offsets alone."""
    still = np.linalg.inv(other.to_frame) @ ref.to_frame
    if ref.descriptors is not None and other.descriptors is not None and len(other.descriptors) >= 2:
        pairs = matcher.knnMatch(ref.descriptors, other.descriptors, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ORB_RATIO * p[1].distance]
        if len(good) >= MIN_INLIERS:
            src = np.array([ref.keypoints[m.queryIdx].pt for m in good], np.float32)
            dst = np.array([other.keypoints[m.trainIdx].pt for m in good], np.float32)
            # Rotation, scale and shift (4 degrees of freedom): keypoints cluster on dense print, and a full
            # homography fitted on a cluster extrapolates wildly to the rest of the sheet.
            affine, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
            if affine is not None and int(inliers.sum()) >= MIN_INLIERS:
                zoom = (abs(np.linalg.det(affine[:, :2])) / abs(np.linalg.det(still[:2, :2]))) ** 0.5  # in the frame
                if 1 / MAX_ZOOM <= zoom <= MAX_ZOOM:
                    return np.vstack([affine, [0.0, 0.0, 1.0]])
    h, w = ref.norm.shape
    resampled = cv2.warpPerspective(other.norm, still, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    (dx, dy), _ = cv2.phaseCorrelate(ref.norm, resampled)
    return np.asarray(still @ np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]]), np.float64)


def _compare(ref: _View, other: _View, matcher: cv2.BFMatcher, both: bool) -> _Match:
    """How well `other` shows `ref`'s content: mean local correlation over `ref`'s content windows (and `other`'s
    when `both`), after registration, where both views show paper. Windows hidden in `other` (a hand, the frame's
    edge) are left out and counted in `visible`; content gone or replaced correlates near 0."""
    homography = _register(ref, other, matcher)
    h, w = ref.norm.shape
    centre = np.array([[w / 4, h / 4], [3 * w / 4, h / 4], [3 * w / 4, 3 * h / 4], [w / 4, 3 * h / 4]], np.float32)
    before = cv2.perspectiveTransform(centre[None], ref.to_frame)[0]  # in frame pixels
    after = cv2.perspectiveTransform(centre[None], other.to_frame @ homography)[0]
    moved_by = float(np.linalg.norm(after - before, axis=1).mean()) / ref.frame.shape[1]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    moved = cv2.warpPerspective(other.detail, homography, (w, h), flags=flags, borderValue=0.0)
    paper = cv2.warpPerspective(other.paper.astype(np.uint8), homography, (w, h), flags=flags) > 0
    paper &= ref.paper
    mean, var = _local_stats(moved)
    cov = cv2.blur(ref.detail * moved, (WINDOW, WINDOW)) - ref.mean * mean
    content = ref.content
    if both:
        grey = cv2.warpPerspective(other.content.astype(np.uint8), homography, (w, h), flags=flags) > 0
        content = content | grey
    visible = float((content & paper).sum()) / max(1, int(content.sum()))
    compared = content & paper
    if not compared.any():
        return _Match(0.0, 0.0, moved_by)
    floor = (DETAIL_FLOOR * float(np.median(ref.var[ref.content]))) ** 2 if ref.content.any() else 1e-12
    ncc = cov[compared] / np.sqrt(ref.var[compared] * var[compared] + floor)
    return _Match(float(np.percentile(ncc, MATCH_PERCENTILE)), visible, moved_by)


def _page_like(view: _View) -> bool:
    """A sheet of paper with print or writing on it: some content, and margins and line spacing free of it (a
    textured desk or carpet, seen without a sheet, is "content" all over), and print's corners to register it by (a
    desk's smooth grain has none)."""
    enough = MIN_CONTENT <= view.content_share <= MAX_CONTENT_OF_PAPER * view.paper_share
    return enough and len(view.keypoints) >= MIN_INLIERS


@dataclass
class _Run:
    """Consecutive views that each show what the one before showed."""

    first: int
    last: int
    start: _View  # the earliest steady state: `MIN_HOLD_S` into the run (or its last interior view before)
    best: _View  # the steadiest view
    best_stability: float
    end: _View  # the latest steady view (the final state: writing added while held is on it)


@dataclass
class _Page:
    first: int
    last: int
    start: _View
    best: _View
    best_stability: float
    end: _View


class _Pages:
    """Streams views into runs, runs into pages; each page is scored as soon as no later view can join it."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.min_frames = max(2, round(MIN_HOLD_S * fps))
        self.orb = cv2.ORB.create(ORB_FEATURES)
        self.matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self.run: _Run | None = None
        self.previous: tuple[_View, float] | None = None  # the last view and how well it matched the one before
        self.page: _Page | None = None
        self.done: list[tuple[dict[str, Any], _Cues]] = []  # each page's timing and writing cues

    def add(self, index: int, frame: np.ndarray) -> None:
        view = _View(index, frame, self.orb)
        link = 0.0
        if self.previous is not None:
            match = _compare(self.previous[0], view, self.matcher, both=True)
            link = match.score if match.moved <= MAX_STEP else 0.0  # a sheet in motion is not held
        if self.run is not None and self.previous is not None and link >= SAME_VIEW:
            prev, prev_link = self.previous
            # The previous view now has both neighbours: it may be the steadiest view of the run.
            stability = min(prev_link, link) if prev.index > self.run.first else link
            if self.run.first < prev.index <= self.run.first + self.min_frames:
                # The page's first state: a hold's first frames can still show the end of the transition (the
                # folded sheet, the hand) over part of it.
                self.run.start = prev
            if stability > self.run.best_stability:
                self.run.best, self.run.best_stability = prev, stability
            self.run.end = prev
            self.run.last = index
        else:
            self._close_run()
            self.run = _Run(index, index, view, view, -1.0, view)
        self.previous = (view, link)

    def _close_run(self) -> None:
        run, self.run = self.run, None
        if run is None or run.last - run.first + 1 < self.min_frames or not _page_like(run.best):
            return  # a page turn, a hand passing, the blank back of a sheet, the desk: not a page
        page = self.page
        if page is not None and _compare(page.end, run.best, self.matcher, both=False).score >= SAME_PAGE:
            page.last = run.last
            page.end = run.end
            if run.best_stability > page.best_stability:
                page.best, page.best_stability = run.best, run.best_stability
            return
        self._score_page()
        self.page = _Page(run.first, run.last, run.start, run.best, run.best_stability, run.end)

    def _score_page(self) -> None:
        page, self.page = self.page, None
        if page is None:
            return
        timing = {
            "start_s": round(page.first / self.fps, 3),
            "end_s": round((page.last + 1) / self.fps, 3),
            "frame_s": round(page.best.index / self.fps, 3),
        }
        self.done.append((timing, _cues(page.start, page.end, self.orb, self.matcher)))

    def finish(self) -> list[dict[str, Any]]:
        self._close_run()
        self._score_page()
        pages = []
        tall = _tall_lines([cues.lines for _, cues in self.done])
        for (timing, cues), (share, area) in zip(self.done, tall, strict=True):
            writing = cues.decide(share, area)
            pages.append(
                timing
                | {
                    "writing_score": round(writing.score, 4),
                    "written": writing.written,
                    "writing_progressive": writing.progressive,
                }
            )
        return pages


@dataclass(frozen=True)
class _Writing:
    written: bool
    score: float
    progressive: bool


@dataclass(frozen=True)
class _Cues:
    """What a held page shows of writing, as shares of its rectified sheet."""

    new_ink: float  # ink that appeared while it was held (0 when what changed was not only added ink)
    pen_ink: float  # ink keeping a hue against the paper
    own_area: float  # the area the new and pen ink write on
    lines: tuple[_TextLine, ...] = ()  # the sheet's lines of marks (print and writing)

    def decide(self, tall: float = 0.0, tall_area: float = 0.0) -> _Writing:
        """Any cue is enough: ink that appeared while the page was held is writing (print does not appear) and
        progressive; pen ink is writing (print is black or grey); lines of marks much taller than the homework's
        print, over `TALL_MIN` of the sheet's width (`tall`, from `_tall_lines`), are writing in any pen."""
        progressive = self.new_ink > 0
        if not (progressive or self.pen_ink >= PEN_INK_MIN or tall >= TALL_MIN):
            return _Writing(False, 0.0, False)
        area = max(self.own_area, tall_area)
        return _Writing(True, 1.0 - float(np.exp(-area / SCORE_AREA_SCALE)), progressive)  # > 0: some area is written


@dataclass(frozen=True)
class _TextLine:
    """A line of marks on a rectified sheet, as shares of the sheet's width (x) and height (y, height)."""

    x0: float
    x1: float
    y: float
    height: float  # rows holding the middle 90 % of its ink

    def same_place(self, other: _TextLine) -> bool:
        return (
            abs(self.x0 - other.x0) <= SHARED_SLACK
            and abs(self.x1 - other.x1) <= SHARED_SLACK
            and abs(self.y - other.y) <= SHARED_SLACK
        )


def _text_lines(ink: np.ndarray) -> tuple[_TextLine, ...]:
    """The sheet's lines of marks: its ink without rules and box borders, joined along the line (letters and words
    of one line), each wider than `LINE_MIN_ASPECT` times its height."""
    marks: np.ndarray = _speckless(ink).astype(np.uint8)
    rules = cv2.bitwise_or(
        cv2.morphologyEx(marks, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (LINE_RULE_PX, 1))),
        cv2.morphologyEx(marks, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, LINE_RULE_PX))),
    )
    marks = cv2.subtract(marks, cv2.dilate(rules, np.ones((3, 3), np.uint8)))
    joined = cv2.morphologyEx(marks, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (LINE_JOIN_PX, 1)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    h, w = ink.shape
    lines = []
    for i in range(1, count):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        if bw < LINE_MIN_ASPECT * bh or bw < LINE_MIN_PX or bh < LINE_MIN_HEIGHT_PX:
            continue
        rows = ((labels[y : y + bh, x : x + bw] == i) & (marks[y : y + bh, x : x + bw] > 0)).sum(axis=1).cumsum()
        if rows[-1] < LINE_MIN_INK_PX:
            continue
        low, high = np.searchsorted(rows, 0.05 * rows[-1]), np.searchsorted(rows, 0.95 * rows[-1])
        lines.append(_TextLine(x / w, (x + bw) / w, y / h, float(high - low + 1) / h))
    return tuple(lines)


def _tall_lines(pages: list[tuple[_TextLine, ...]]) -> list[tuple[float, float]]:
    """Per page, the width (share of the sheet's) and box area of its lines of marks at least `TALL_TEXT` times as
    tall as the homework's print (the median line of all its pages, by width): handwriting is larger than the print
    of a worksheet. A tall line in the same place on another page is print (a title the homework repeats), and so
    are tall lines in the sheet's top `HEADER_SHARE`: a title block, which a homework may print on its first page
    alone (and the only page of a single-page video)."""
    every = [line for lines in pages for line in lines]
    if not every:
        return [(0.0, 0.0)] * len(pages)
    heights = np.array([line.height for line in every])
    widths = np.array([line.x1 - line.x0 for line in every])
    order = np.argsort(heights)
    print_height = float(heights[order][np.searchsorted(np.cumsum(widths[order]), 0.5 * widths.sum())])
    tall = [[line for line in lines if line.height >= TALL_TEXT * print_height] for lines in pages]
    out = []
    for k, lines in enumerate(tall):
        others = [line for j, other in enumerate(tall) if j != k for line in other]
        own = [line for line in lines if not any(line.same_place(other) for other in others) and line.y >= HEADER_SHARE]
        out.append((sum(line.x1 - line.x0 for line in own), sum((line.x1 - line.x0) * line.height for line in own)))
    return out


def _cues(start: _View, end: _View, orb: cv2.ORB, matcher: cv2.BFMatcher) -> _Cues:
    """The writing cues of a held page from its first and last steady views (`_Cues`); the last view's sheet is
    rectified to `SHEET_HEIGHT` px, the first view is registered onto it."""
    warp, size = _sheet_warp(end.frame)
    sheet = _rectify(end.frame, warp, size)
    color = _rectify(end.color, warp, size)
    ink, paper = _ink(sheet)
    pen = _pen_ink(color, ink) if color is not None else np.zeros_like(ink)
    new = np.zeros_like(ink)
    if start is not end:
        moved = _register_frames(start, end, orb, matcher)
        if moved is not None:
            before, before_paper = _ink(_rectify(start.frame, warp @ moved, size))
            # Both views' paper, away from its edges (a hand holding a pen hides, its shading is not ink)
            margin = np.ones((PAPER_MARGIN, PAPER_MARGIN), np.uint8)
            both = cv2.erode((before_paper & paper).astype(np.uint8), margin) > 0
            slack = np.ones((NEW_INK_SLACK, NEW_INK_SLACK), np.uint8)
            new = _speckless(ink & ~(cv2.dilate(before.astype(np.uint8), slack) > 0) & both)
            gone = float(_speckless(before & ~(cv2.dilate(ink.astype(np.uint8), slack) > 0) & both).sum())
            if float(new.mean()) < NEW_INK_MIN or gone > MAX_INK_GONE * max(1, int((before & both).sum())):
                new = np.zeros_like(ink)  # a misregistration moves print away, writing only adds
    own = cv2.dilate((pen | new).astype(np.uint8), np.ones((OWN_ZONE, OWN_ZONE), np.uint8))
    return _Cues(float(new.mean()), float(pen.mean()), float(own.mean()), _text_lines(ink))


def _rectify(image: np.ndarray | None, warp: np.ndarray, size: tuple[int, int] | None) -> Any:
    if image is None or size is None:
        return image
    return cv2.warpPerspective(image, warp, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _ink(sheet: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ink (marks `SHEET_INK` darker than the paper around them) and paper (not a hand, not the desk) of a sheet."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (SHEET_CLOSE, SHEET_CLOSE))
    background = cv2.morphologyEx(sheet, cv2.MORPH_CLOSE, kernel).astype(np.float32) + 1.0
    paper = background >= SHEET_PAPER * float(np.percentile(background, 90))
    return (sheet.astype(np.float32) < SHEET_INK * background) & paper, paper


def _pen_ink(color: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Ink that keeps a hue against the paper under it: its channels pass the paper's light in shares at least
    `PEN_HUE` apart (black print and grey pencil pass them alike, whatever the light's colour), in a mark that keeps
    a colour as a whole. A camera fringes black print with colour along its edges (lateral chromatic aberration
    shifts the red and blue images against the green one, sharpening deepens the fringes, a Bayer sensor's
    interpolation and 4:2:0 chroma smear them): red on one side of a stroke, its complement on the other, so the
    light each channel loses summed over the whole mark (its ink grown by `FRINGE_GROW` px, fringes included) is the
    same for black print wherever the channels went, while pen ink loses more of some channels than of others at
    every pixel. Print need not be neutral: a mark's hued pixels are pen ink when its tint (each channel's summed loss
    as a share of its largest) differs from the print's (`_print_tint`) by `PEN_MARK_HUE` in some channel."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (SHEET_CLOSE, SHEET_CLOSE))
    background = cv2.morphologyEx(color, cv2.MORPH_CLOSE, kernel).astype(np.float32) + 1.0
    passed = color.astype(np.float32) / background
    hued = _speckless(ink & (passed.max(axis=2) - passed.min(axis=2) >= PEN_HUE))
    if not hued.any():
        return hued
    grown = cv2.dilate(ink.astype(np.uint8), np.ones((FRINGE_GROW, FRINGE_GROW), np.uint8))
    count, labels = cv2.connectedComponents(grown, connectivity=8)
    flat = labels.ravel()
    lost = np.stack([np.bincount(flat, (1.0 - passed[..., c]).ravel(), count) for c in range(3)], axis=1)
    lost[0] = 0.0  # paper away from any ink
    most = lost.max(axis=1)
    tint = lost / np.maximum(most, 1e-6)[:, None]  # each channel's loss as a share of the mark's largest
    coloured = np.abs(tint - _print_tint(tint, np.maximum(most, 0.0))).max(axis=1) >= PEN_MARK_HUE
    coloured[0] = False
    return hued & coloured[labels]


def _print_tint(tint: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The print's tint: per channel, the median of the marks' tints weighted by their ink (print is most of a
    page's ink). Neutral black print gives (1, 1, 1); a printer's composite black, dark-blue or brown-black print and
    a camera's white balance on dark ink give a tint that every mark of print shares and pen ink does not."""
    if weight.sum() <= 0:
        return np.ones(3)
    return np.array([weighted_median(tint[:, c], weight) for c in range(3)])


def _speckless(mask: np.ndarray) -> np.ndarray:
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)) > 0


def _register_frames(start: _View, end: _View, orb: cv2.ORB, matcher: cv2.BFMatcher) -> np.ndarray | None:
    """The homography taking `end`'s frame to `start`'s (ORB on the sheets, RANSAC), at full frame size; None when
    the two cannot be registered."""
    if start.descriptors is None or end.descriptors is None or len(start.descriptors) < 2:
        return None
    pairs = matcher.knnMatch(end.descriptors, start.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ORB_RATIO * p[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    src = cv2.perspectiveTransform(np.array([[end.keypoints[m.queryIdx].pt for m in good]]), end.to_frame)
    dst = cv2.perspectiveTransform(np.array([[start.keypoints[m.trainIdx].pt for m in good]]), start.to_frame)
    scale = float(end.to_frame[0, 0])
    # Rotation, scale and shift, as between consecutive frames: a homography fitted on keypoints clustered on print
    # extrapolates to the rest of the sheet, and the misregistered print reads as ink that appeared.
    affine, inliers = cv2.estimateAffinePartial2D(src[0], dst[0], method=cv2.RANSAC, ransacReprojThreshold=2.0 * scale)
    if affine is None or int(inliers.sum()) < MIN_INLIERS:
        return None
    return np.asarray(np.linalg.inv(np.vstack([affine, [0.0, 0.0, 1.0]])), np.float64)


def _sheet_warp(frame: np.ndarray) -> tuple[np.ndarray, tuple[int, int] | None]:
    """The perspective transform taking the sheet in `frame` to a page `SHEET_HEIGHT` px high, and its size."""
    h, w = frame.shape[:2]
    blurred = cv2.GaussianBlur(frame, (5, 5), 0)
    _, bright = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea) if contours else None
    if outline is None or cv2.contourArea(outline) < MIN_PAPER_SHARE * frame.size:
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        inset = 0.0
    else:
        hull = cv2.convexHull(outline)
        quad = cv2.approxPolyDP(hull, QUAD_EPS * cv2.arcLength(hull, True), True)
        if len(quad) == 4:
            corners = _order(quad.reshape(4, 2).astype(np.float32))
        else:
            x, y, bw, bh = cv2.boundingRect(outline)
            corners = np.array([[x, y], [x + bw, y], [x + bw, y + bh], [x, y + bh]], np.float32)
        inset = PAPER_INSET
    width = float(np.linalg.norm(corners[1] - corners[0]) + np.linalg.norm(corners[2] - corners[3])) / 2
    height = float(np.linalg.norm(corners[3] - corners[0]) + np.linalg.norm(corners[2] - corners[1])) / 2
    if inset == 0.0 and height >= SHEET_HEIGHT:
        return np.eye(3), None
    scale = SHEET_HEIGHT / max(height, 1.0)
    out_w, out_h = max(16, round(width * scale)), SHEET_HEIGHT
    pad_x, pad_y = out_w * inset, out_h * inset
    target = np.array(
        [[-pad_x, -pad_y], [out_w + pad_x, -pad_y], [out_w + pad_x, out_h + pad_y], [-pad_x, out_h + pad_y]], np.float32
    )
    return cv2.getPerspectiveTransform(corners, target), (out_w, out_h)


def _order(corners: np.ndarray) -> np.ndarray:
    """Corners as top-left, top-right, bottom-right, bottom-left."""
    total, diff = corners.sum(axis=1), np.diff(corners, axis=1).ravel()
    order = [np.argmin(total), np.argmin(diff), np.argmax(total), np.argmax(diff)]
    return corners[order].astype(np.float32)


def _sample(exe: str, path: Path, info: Probe, vision: VisionSettings, workdir: Path) -> tuple[list[dict], int]:
    """Decode, sample and segment; returns (pages, sampled frame count)."""
    width = min(vision.video_scale_width, info.width) // 2 * 2
    height = max(2, round(info.height * width / info.width / 2) * 2)
    frame_bytes = width * height * 3
    command = [
        exe, "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-an", "-sn", "-dn",
        "-vf", f"fps={vision.video_fps},scale={width}:{height}:flags=area",
        "-pix_fmt", "bgr24", "-f", "rawvideo", "pipe:1",
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
                pages.add(count, np.frombuffer(raw, np.uint8).reshape(height, width, 3))
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
