"""handwriting_analysis: how much is handwritten on a page or region, and what it looks like.

Conventions (docs/jobs/handwriting_analysis.md): printed text in any script is never handwriting; ticks, circled
choices and one-word answers are; stamps, highlighter swipes, rules, grids, drawings and bubbles are not, and none of
them hides writing that is there. A photograph that is not a page reports `is_page: false` and no writing.

How print is told from writing, without one script's glyph shapes: a printed line's letters sit on one straight
baseline and cap line at the page's skew (most of its bottom and top contours lie on straight lines of that slope),
or its strokes are upright: type (Hangul, Latin, digits) is built on horizontal and vertical strokes, so 40-46 % or
more of a printed line's edge strength lies within 8 degrees of the page's axes, where handwriting slants and
curves. With colour input, a line whose ink keeps a hue against the paper under it is pen (print is black or grey);
highlighters (translucent colour that leaves the brightest channel as bright as the paper), faint coloured grids and
red seals are dropped first. What is drawn or filled rather than written is removed before anything is measured:
straight rules and boxes, figure polylines, circles (answer bubbles), solid marks and dust. Heavy scan noise is
estimated and smoothed, low-resolution scans are measured at twice the size. Every length is relative to the
measured text height, so any resolution works, from a 300-dpi scan down to a 480-px video frame.

Scores (all in [0, 1]):
- `writing_area` = area within half a text height of handwritten ink / region area.
- `writing_present`: writing covers `PRESENCE_MIN_AREA` (0.3 %) of the region, or one clearly written mark (not
  upright and either not aligned, slanted throughout or much larger than the print; or in coloured ink) covers
  `CLEAR_MIN_AREA` (0.02 %: a tick on A4).
- `writing_score` = 0 when no writing is present, else 1 - exp(-writing_area / WRITING_AREA_SCALE): 0.63 when
  handwriting covers 8 % of the region, 0.95 at 24 %; adding marks only adds handwritten ink, so it rises with the
  amount written.
- `calculation_score` = writing_score x the share of handwritten ink in digit-like marks: connected strokes no wider
  than `DIGIT_MAX_ASPECT` times their height (digits, operators), as opposed to joined-up words.

`measure` is shared with homework_video_analysis, which scores one representative frame per page.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from ai_worker.errors import INVALID_INPUT, PermanentError
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.imaging import decode_image, ink_mask, is_pdf, join_marks, remove_specks, weighted_median
from ai_worker.jobs.pages import int_field, load_pages

SPECK_AREA = 5  # pixels: dust and noise below this are never ink
RULE_MIN_TEXT = 8  # a straight run longer than 8 text heights ...
RULE_MIN_SHARE = 0.2  # ... and than 20 % of the region's side is a rule (box border, underline), not writing
RULE_MAX_SHARE = 0.3  # a straight run over 30 % of the side is a rule whatever the text height
SOLID_MIN_TEXT = 1.4  # ink this thick (1.4 text heights; >= SOLID_MIN_PX) is a filled mark, not a pen stroke:
SOLID_MIN_PX = 5  # written loops closed up by a thick pen reach 0.8 text heights, a filled bubble 2
CIRCLE_MIN_TEXT = 0.8  # rings at least 0.8 text heights across can be told round (smaller: dots, small letters)
CIRCLE_MAX_ASPECT = 1.2  # a drawn circle's box is square within 20 %; handwritten loops are taller than wide
CIRCLE_MIN_ROUNDNESS = 0.85  # 4 pi area / perimeter^2 of a ring's outline and its hole: 1 circle, 0.79 square
CIRCLE_MIN_HOLE = 0.4  # a ring's hole fills at least 40 % of it (a thin outline, not a blob)
LOOP_MIN_LETTERS = 2  # a ring around 2 letters or more is a loop drawn round a choice, not a bubble
TICK_MAX_TEXT = 5  # a straight-edged mark under 5 text heights ...
TICK_MAX_UPRIGHT = 0.2  # ... with under 20 % of its edges upright is a tick (figures have level bases, rules)
SHAPE_MIN_TEXT = 3  # drawings at least 3 text heights long are checked for straight edges
POLYGON_EPS_TEXT = 0.15  # contour simplification tolerance: 0.15 text heights (>= POLYGON_EPS_PX) ...
POLYGON_EPS_PX = 1.5
POLYGON_EDGE_TEXT = 2.0  # ... after which a drawing keeps >= 2 text heights of contour per vertex, ...
POLYGON_FEW_VERTICES = 20  # ... or, with at most 20 vertices (a figure's polyline of 6 segments: ~16), ...
POLYGON_FEW_EDGE_TEXT = 1.2  # ... >= 1.2 text heights; sharp-cornered writing reaches 1.3-1.6 with 28-60 vertices
LINE_MIN_INK = 0.15  # a line holds at least 0.15 text heights squared of ink (a letter's worth)
WORD_JOIN_TEXT = 1.5  # marks closer than 1.5 text heights join one line
LINE_JOIN_DOWN_TEXT = 0.0  # no vertical joining: stacked written lines stay apart
BASELINE_TOL_TEXT = 0.1  # a contour column within 0.1 text heights (>= 1 px) of a straight line is on it
SKEW_MIN_TEXT = 10  # lines at least 10 text heights long measure the page's skew
PERSPECTIVE_MIN_LINES = 4  # with 4 such lines, the slope is fitted as it changes down the page (a photograph) ...
PERSPECTIVE_OUTLIER = 0.005  # ... without the lines off the fit by more than 0.005 (0.3 degrees), ...
PERSPECTIVE_MIN_CHANGE = 0.01  # ... when it changes by 0.01 (0.6 degrees) or more from the top line to the bottom
# Shares of a line's bottom and top contours on straight lines of the page's slope (generated pages, lines >= 10
# text heights: print 1st percentile 1.01 together, 0.51 bottom; writing 95th percentile 0.82 together, 0.53 bottom).
PRINTED_MIN_ON_BASELINE = 0.4  # a printed line has at least 40 % of its bottom contour on a straight baseline ...
PRINTED_MIN_ALIGNED = 0.85  # ... or 85 % of both shares added ("(4) 7": pointed digits, curved brackets) ...
PRINT_SIZE_TOLERANCE = 1.4  # ... and letters at most 1.4x the page's print size (handwriting is larger than print)
LONG_LINE_TEXT = 10  # a line 10 text heights long has columns enough to need both shares (the bottom alone: no)
LOWRES_TEXT_PX = 10  # on a scan whose letters are at most 10 px tall (blurred: headings' contours no longer
LOWRES_MIN_ALIGNED = 0.95  # straight), shares adding up to 95 % ...
LOWRES_SIZE_TOLERANCE = 2.0  # ... are print up to 2.0x the print size (a short answer written at 2.3x: not)
ALIGNED_ANY_SIZE = 1.1  # shares adding up to 110 % are print at any size (titles); 1 % of written lines reach it
ROW_MIN_PIECES = 3  # 3 lines (words, choices) whose boxes share a top or a bottom ...
ROW_TOL_SIZE = 0.08  # ... within 8 % of their height ...
ROW_SIZE_RATIO = 1.4  # ... at heights within 40 % of each other are one row of type
LETTER_SIZE_PERCENTILE = 90  # a line's letter height: capitals and ascenders, not the x-height
SLIVER_PX = 2  # marks this thin (or thinner than 0.3 text heights) are left-over edges of erased rules
RULE_REMNANT_TEXT = 0.3
WRITING_ZONE_TEXT = 0.5  # handwritten strokes are grown by half a text height to measure the area they cover
WRITING_AREA_SCALE = 0.08  # writing_score = 1 - exp(-writing_area / 0.08): 0.63 at 8 % of the region written
PRESENCE_MIN_AREA = 0.003  # writing over 0.3 % of the region (two words on A4) is present; blank sheets stay < 0.15 %
CLEAR_MAX_UPRIGHT = 0.35  # a line less upright than this (type: >= 0.45) ...
CLEAR_MAX_ALIGNED = 0.65  # ... and less aligned (print: >= 1.1 or >= 0.85 with a straight baseline) is clearly written,
CLEAR_SLANTED_UPRIGHT = 0.15  # ... or this little upright whatever its alignment (print: >= 0.3, 0.2 in heavy noise)
CLEAR_MIN_SIZE = 1.7  # ... or not upright and 1.7x the page's print size (an answer in an answer space)
CLEAR_MIN_AREA = 0.0002  # and one such mark covering 0.02 % of the region (a tick on A4) is writing present
DIGIT_MAX_ASPECT = 1.5  # a connected stroke at most 1.5x as wide as tall is a digit or operator, not a joined word
UPRIGHT_TOLERANCE_DEG = 8  # edges within 8 degrees of the page's axes are upright
UPRIGHT_MIN_SHARE = 0.4  # a line with 40 % of its edge strength upright is type (generated: Korean print 5th
# percentile 0.50, handwriting 95th percentile 0.40; Latin print is told by its baseline instead)
UPRIGHT_MIN_ALIGNED = 0.6  # ... when its bottom and top contours are also fairly straight (print 5th pct 0.74)
UPRIGHT_MAX_SIZE = 5.0  # ... and its letters at most 5 text heights tall (titles; large writing is not upright)
UPRIGHT_ANY_SHARE = 0.46  # 46 % upright: type whatever its contours (generated handwriting: 95th percentile 0.40)
PEN_MAX_UPRIGHT = 0.7  # coloured lines this upright are ruled (printed grid boxes, coloured rules), not pen, ...
PEN_RULED_UPRIGHT = 0.5  # ... and so are those this upright with half their ink (`PEN_RULED_SHARE`) on straight
PEN_RULED_SHARE = 0.5  # level or plumb runs of `PEN_RULED_RUN_TEXT` text heights: a box with black print touching
PEN_RULED_RUN_TEXT = 0.8  # it (joined, they are one mark; the print's curves lower its upright share below 0.7)
FAINT_MAX_TEXT = 8  # a line under 8 text heights long (a number, a word, a short calculation) ...
FAINT_MIN_TEXT = 1.0  # ... and at least 1 long, ...
FAINT_MIN_SIZE = 0.8  # ... its letters at least 0.8 text heights tall ...
FAINT_INK_SHARE = 0.5  # ... whose ink is at most half as dark as the print's is another instrument's (pencil)
FAINT_MIN_LINES = 3  # the print's darkness: the median over the page's long printed lines, when it has 3
FOREIGN_MIN_SIZE = 1.7  # a curved mark in a printed line 1.7x as tall as its tallest other marks, ...
FOREIGN_LOOP_SIZE = 1.3  # ... or 1.3x and around one of them (a loop around a choice) or slanted (a tick), ...
FOREIGN_MIN_TEXT = 1.2  # ... at least 1.2 text heights tall ...
FOREIGN_MIN_ASPECT = 0.6  # ... and 0.6x as wide as tall is written there
FOREIGN_TICK_UPRIGHT = 0.12  # a mark with under 12 % of its edges upright is slanted strokes (a tick)
FOREIGN_LETTER_TEXT = 0.5  # the line's letters are its marks at least half a text height tall ...
FOREIGN_LETTER_AREA = 0.15  # ... and of 0.15 text heights squared in area
PAPER_CLOSE_TEXT = 1.0  # the paper under a mark: the page closed over 1 text height (strokes are 0.1-0.3 wide)
PAPER_MIN_TINT = 20  # paper whose chroma (grey levels from grey) is at least 20 is tinted (a band); ...
PAPER_TINT_SLACK = 1.5  # ink may carry up to 1.5x the paper's own chroma, in the paper's hue, and still be grey
PEN_MIN_HUE = 0.2  # ink whose channels pass the paper's light in shares 0.2 apart (max - min) is coloured pen
FAINT_COLOUR_CHROMA = 30  # coloured ink (chroma >= 30) ...
FAINT_COLOUR_CONTRAST = 90  # ... less than 90 grey levels darker than the paper is a printed tint, not pen
HIGHLIGHT_MIN_CONTRAST = 30  # ink darkens the brightest channel by >= 30 grey levels; a highlighter by ~0
STAMP_MIN_CHROMA = 40  # red seal: chroma >= 40 and red above green and blue by as much
STAMP_MIN_SIDE = 0.04  # a seal is at least 4 % of the page's longer side across ...
STAMP_MAX_ASPECT = 1.4  # ... square within 40 % ...
STAMP_MIN_FILL = 0.5  # ... and its outline with what it encloses fills half its box
NOISE_SMOOTH = 10.0  # noise above 10 grey levels (sigma) is smoothed before the ink is found: a 3x3 median ...
NOISE_BLUR_PER_SIGMA = 12.0  # ... and a Gaussian blur of sigma noise / 12 px ...
NOISE_MAX_BLUR = 2.0  # ... at most 2 px ...
NOISE_MIN_BLUR = 1.0  # ... and at least 1 px
NOISY_SPECKS_PER_MP = 500  # a page with over 500 ink specks (<= 12 px) per megapixel is noisy (clean pages: < 20)
NOISY_SPECK_PX = 12
FRAGMENT_MAX_SHARE = 0.3  # marks with under 30 % of the typical mark's ink (pieces of broken pencil) are no letters
FRAGMENT_TYPICAL_CAP = 10
SPECK_GRID = 8  # the speck density is the median over 8 x 8 cells of the page
NOISY_SPECK_FACTOR = 3  # specks up to 3x SPECK_AREA are noise on such a page
PAGE_SHRINK = 8  # the page test runs on a copy 8 times smaller ...
PAGE_MIN_SMALL_PX = 64  # ... or less, to keep 64 px on the short side
PAGE_FLAT_STD = 10.0  # shrunk pixels whose 5x5 neighbourhood varies less than this are flat
PAGE_TONE_SPAN = 60  # paper is within 60 grey levels of the brightest flat tone (shading, vignetting) ...
PAGE_MIN_TONE = 90  # ... and not dark
PAGE_MAX_CHROMA = 45  # ... and not strongly coloured (tinted paper passes; a blue sky, skin, wood do not)
PAGE_MIN_PAPER = 0.25  # an image is a page when a quarter of it is paper
ORIENTATION_BINS = 18  # 10-degree bins over [0, 180)
SMALL_TEXT_PX = 7  # letters at most 7 px tall (a 60-90 dpi scan) are measured at twice the size, ...
SMALL_IMAGE_PX = 1400  # ... in an image under 1400 px on its longer side
MAX_UPSCALES = 1  # ... once
MIN_REGION_PX = 16  # a payload.bbox must leave at least 16x16 px to measure


@dataclass(frozen=True)
class Measure:
    ink_coverage: float  # all ink (printed and handwritten; rules, drawings, filled marks, dust excluded) / area
    handwriting_coverage: float  # handwritten ink / region area
    writing_area: float
    writing_present: bool
    writing_score: float
    calculation_score: float
    text_height_px: float  # median height of the marks on the page, rules, drawings and bubbles excluded
    stroke_width_px: float  # handwritten ink area / its skeleton length
    orientation_entropy: float  # normalised entropy of handwritten stroke directions: 0 one direction, 1 uniform
    handwritten_lines: int
    printed_lines: int
    handwriting_components: int
    is_page: bool = True  # False: a photograph of something else (a person, a desk, a wall): nothing is measured
    noise_level: float = 0.0  # estimated scan-noise standard deviation, grey levels (above NOISE_SMOOTH: smoothed)
    stamps: int = 0  # saturated red seals found and left out (colour input only)

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def measure(gray: np.ndarray, *, color: np.ndarray | None = None, _upscaled: int = 0) -> Measure:
    """Measure the handwriting in a grayscale page or region; `color`, the same region in BGR, adds the colour cues
    (chromatic pen ink is writing, highlighter swipes and red stamps are not)."""
    region_area = float(gray.shape[0] * gray.shape[1])
    if color is not None and (color.ndim != 3 or color.shape[:2] != gray.shape or _is_grey(color)):
        color = None  # a grey image in colour (a grey JPEG or PNG decoded to BGR) has no colour cue to give
    if not _looks_like_page(gray, color):
        return _nothing(gray, is_page=False)
    noise = _noise_level(gray)
    ink = ink_mask(gray)
    noisy = noise > NOISE_SMOOTH or _speck_density(ink) > NOISY_SPECKS_PER_MP
    if noisy:
        # Heavy scan noise (or salt and pepper that JPEG has blurred past the estimator): a 3x3 median removes the
        # salt and pepper and keeps 2-px strokes, a small blur the grain, so noise stays below the ink floor.
        blur = min(NOISE_MAX_BLUR, max(NOISE_MIN_BLUR, noise / NOISE_BLUR_PER_SIGMA))
        gray = cv2.GaussianBlur(cv2.medianBlur(gray, 3), (0, 0), blur)
        if color is not None:
            color = cv2.GaussianBlur(cv2.medianBlur(color, 3), (0, 0), blur)
        ink = ink_mask(gray)
    stamps = 0
    chroma = None
    paper_close: tuple[int, np.ndarray] | None = None  # (kernel size, the paper beside the ink), for `_pen_ink`
    if color is not None:
        # Highlighter: translucent colour that leaves the brightest channel as bright as the paper; pen, pencil and
        # print darken every channel. Only ink that darkens the brightest channel too counts.
        brightest, darkest = _channel_extremes(color)
        ink &= ink_mask(brightest, HIGHLIGHT_MIN_CONTRAST)
        chroma = cv2.subtract(brightest, darkest)
        # Faint coloured lines (graph paper, printed grid boxes, the edges of a swipe) are not pen ink: coloured ink
        # that is not also `FAINT_COLOUR_CONTRAST` darker than the paper is dropped. Grey pencil is not coloured.
        # The chroma is the ink's own, beyond the paper's right beside it when that is tinted: a pen stroke under a
        # highlighter band takes the band's hue and is not a faint coloured line for it.
        paper_close = _paper_beside(color, _text_height(ink))
        paper_brightest, paper_darkest = _channel_extremes(paper_close[1])
        paper_chroma = cv2.subtract(paper_brightest, paper_darkest)
        paper_chroma[paper_chroma < PAPER_MIN_TINT] = 0  # not the faint hue a JPEG bleeds around a coloured line
        own = cv2.subtract(chroma, paper_chroma)
        ink[(own >= FAINT_COLOUR_CHROMA) & (ink_mask(gray, FAINT_COLOUR_CONTRAST) == 0)] = 0
        stamps = _remove_stamps(ink, color, chroma)
    ink = remove_specks(ink, SPECK_AREA * (NOISY_SPECK_FACTOR if noisy else 1))
    if _upscaled < MAX_UPSCALES and max(gray.shape) < SMALL_IMAGE_PX and _text_height(ink) <= SMALL_TEXT_PX:
        # A low-resolution scan: letters a few pixels tall lose the shapes told apart below; measure it at twice the
        # size (the shares returned are of the region area, the same at any scale).
        def bigger(image: np.ndarray) -> np.ndarray:
            return cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)

        return measure(bigger(gray), color=None if color is None else bigger(color), _upscaled=_upscaled + 1)
    text_h = _text_height(ink)
    _remove_rules(ink, text_h)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    _remove_drawings(ink, text_h, gx, gy)
    # Bubbles can outnumber the letters (an answer sheet); without them, the text height is the letters' again.
    text_h = _remove_solid(ink)
    written = np.zeros_like(ink)
    clear = np.zeros_like(ink)  # the writing that is clearly writing: coloured pen, or neither upright nor aligned
    printed_lines = written_lines = 0
    if color is not None:
        # Coloured pen, mark by mark: a blue tick beside black print, or red writing that touches a printed line,
        # is writing without making the print writing. Coloured lines drawn with a ruler (printed grid boxes,
        # coloured rules) are not.
        pen = _pen_ink(ink, color, _paper_beside(color, text_h, paper_close)[1])
        ink = cv2.subtract(ink, pen)  # the rest, print and pencil or black pen, is judged line by line below
        for line in _lines(pen, text_h):
            upright = _upright_share(line.own, line.x, line.y, gx, gy, 0.0)
            if upright >= PEN_MAX_UPRIGHT or (
                upright >= PEN_RULED_UPRIGHT and _ruled_share(line.own, text_h) >= PEN_RULED_SHARE
            ):
                printed_lines += 1
                continue
            written_lines += 1
            _paint(written, line.own, line.x, line.y)
            _paint(clear, line.own, line.x, line.y)
    lines = _lines(ink, text_h)
    # Every printed line of a page shares one slope (the scan's skew); measured on long lines, where it is certain,
    # it lets short ones ("(4) 7", a lone label) be judged on a straight baseline with no slope of their own to fit.
    tol = max(1.0, BASELINE_TOL_TEXT * text_h)
    # A photographed page's perspective turns its lines by a little more at each step down the page: each line is
    # also judged at the slope the page's lines have at its height (`_page_slope`), and keeps the better share.
    slope, local = _page_slope([line for line in lines if len(line.xs) >= SKEW_MIN_TEXT * text_h], tol)
    slopes = [local(line.y + line.own.shape[0] / 2) for line in lines]
    on_baseline = [_best_share(line.xs, line.bottoms, (slope, s), tol) for line, s in zip(lines, slopes, strict=True)]
    on_topline = [_best_share(line.xs, line.tops, (slope, s), tol) for line, s in zip(lines, slopes, strict=True)]
    # The page's print size: the typical letter height of the lines that sit on a straight baseline.
    print_size = _print_size(lines, on_baseline)
    marks: list[np.ndarray] = []  # the ink's marks (labels, stats), labelled when first needed
    uprights = [_upright_share(line.own, line.x, line.y, gx, gy, s) for line, s in zip(lines, slopes, strict=True)]
    # A low-resolution scan (letters at most `LOWRES_TEXT_PX` tall as scanned): blur rounds every contour.
    lowres = text_h / 2**_upscaled <= LOWRES_TEXT_PX
    printed = [
        _is_printed(bottom, top, line.size / print_size if print_size else math.inf, len(line.xs) / text_h, lowres)
        or _is_upright_type(upright, bottom + top, line.size / text_h)
        for line, bottom, top, upright in zip(lines, on_baseline, on_topline, uprights, strict=True)
    ]
    # Rows of type on scans measured at twice the size only (letters <= `SMALL_TEXT_PX` as scanned): at 10 px, grainy
    # pencil's pieces can share a top.
    rows = _upscaled > 0
    printed, row_heights = _rows_of_type(lines, printed, slopes, tol) if rows else (printed, [0.0] * len(lines))
    # A short line can sit on a straight baseline by chance (a two-digit answer): when its ink is much fainter than
    # the print's (pencil beside laser print), it is another instrument's, and clearly written (`_fainter_than_print`).
    fainter = _fainter_than_print(gray, lines, printed, uprights, text_h)
    for line, bottom, top, slope, upright, is_print, faint, row_height in zip(
        lines, on_baseline, on_topline, slopes, uprights, printed, fainter, row_heights, strict=True
    ):
        relative_size = line.size / print_size if print_size else math.inf
        if faint:
            written_lines += 1
            _paint(written, line.own, line.x, line.y)
            _paint(clear, line.own, line.x, line.y)
            continue
        if is_print:
            printed_lines += 1
            # A printed line can hold a written mark: a loop drawn around a choice, a tick beside it.
            marks = marks or list(cv2.connectedComponentsWithStats(ink, connectivity=8)[1:3])
            for own, x, y in _foreign_marks(line, marks[0], marks[1], text_h, gx, gy, slope, row_height):
                written_lines += 1
                _paint(written, own, x, y)
                _paint(clear, own, x, y)
            continue
        if _is_clearly_written(upright, bottom + top, relative_size):
            _paint(clear, line.own, line.x, line.y)
        else:  # a loop around a printed choice or a tick beside it is clear, whatever the letters in the line
            marks = marks or list(cv2.connectedComponentsWithStats(ink, connectivity=8)[1:3])
            for own, x, y in _foreign_marks(line, marks[0], marks[1], text_h, gx, gy, slope):
                _paint(clear, own, x, y)
        written_lines += 1
        _paint(written, line.own, line.x, line.y)
    # The written zone: handwritten ink grown by half a text height, so it covers the space between strokes and only
    # ever grows when more is written.
    reach = 2 * max(1, round(WRITING_ZONE_TEXT * text_h)) + 1
    zone = cv2.dilate(written, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (reach, reach)))
    writing_area = float(zone.sum()) / region_area
    clear_area = float(cv2.dilate(clear, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (reach, reach))).sum())
    present = writing_area >= PRESENCE_MIN_AREA or clear_area / region_area >= CLEAR_MIN_AREA
    # 0 when nothing is written; otherwise rising with the written area (presence only ever turns on as more is
    # written, so the score rises with the amount written).
    writing_score = 1.0 - math.exp(-writing_area / WRITING_AREA_SCALE) if present else 0.0
    hw_pixels = int(written.sum())
    digit_share, components = _digit_share(written)
    return Measure(
        ink_coverage=float(ink.sum() + written.sum() - (written & ink).sum()) / region_area,
        handwriting_coverage=hw_pixels / region_area,
        writing_area=writing_area,
        writing_present=present,
        writing_score=writing_score,
        calculation_score=writing_score * digit_share,
        text_height_px=text_h,
        stroke_width_px=_stroke_width(written),
        orientation_entropy=_orientation_entropy(gx, gy, written),
        handwritten_lines=written_lines,
        printed_lines=printed_lines,
        handwriting_components=components,
        noise_level=noise,
        stamps=stamps,
    )


def _channel_extremes(color: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(brightest, darkest) channel per pixel of a BGR image (OpenCV's per-pixel max and min: numpy's reduction
    over the 3-channel axis is ten times slower)."""
    b, g, r = cv2.split(color)
    return cv2.max(cv2.max(b, g), r), cv2.min(cv2.min(b, g), r)


def _is_grey(color: np.ndarray) -> bool:
    """Whether every pixel's channels are equal (then the colour cues find nothing, and cost a third of the time)."""
    b, g, r = cv2.split(color)
    return not (cv2.countNonZero(cv2.absdiff(b, g)) or cv2.countNonZero(cv2.absdiff(g, r)))


def _nothing(gray: np.ndarray, *, is_page: bool) -> Measure:
    return Measure(0.0, 0.0, 0.0, False, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, is_page=is_page)


def _looks_like_page(gray: np.ndarray, color: np.ndarray | None) -> bool:
    """Whether the image is a sheet of paper: most of it a bright, flat, colourless background.

    On a copy shrunk up to 8 times, to at least 64 px (print and writing blur into grey smudges, noise averages
    out), paper is where the local standard deviation over 5x5 is below `PAGE_FLAT_STD` grey levels, the tone within
    `PAGE_TONE_SPAN` of the brightest paper and (colour input) the chroma below `PAGE_MAX_CHROMA`. A page has
    `PAGE_MIN_PAPER` of it.
    Photographs of people, desks, walls, grass are textured or coloured nearly everywhere.
    """
    shrink = max(1, min(PAGE_SHRINK, min(gray.shape) // PAGE_MIN_SMALL_PX))
    small_size = (max(8, gray.shape[1] // shrink), max(8, gray.shape[0] // shrink))
    small = cv2.resize(gray, small_size, interpolation=cv2.INTER_AREA).astype(np.float32)
    mean = cv2.blur(small, (5, 5))
    std = np.sqrt(np.maximum(cv2.blur(small * small, (5, 5)) - mean * mean, 0))
    flat = std < PAGE_FLAT_STD
    if not flat.any():
        return False
    bright = np.percentile(mean[flat], 90)
    paper = flat & (mean >= bright - PAGE_TONE_SPAN) & (mean >= PAGE_MIN_TONE)
    if color is not None:
        small_color = cv2.resize(color, small_size, interpolation=cv2.INTER_AREA).astype(np.int16)
        paper &= (small_color.max(axis=2) - small_color.min(axis=2)) < PAGE_MAX_CHROMA
    return float(paper.mean()) >= PAGE_MIN_PAPER


def _noise_level(gray: np.ndarray) -> float:
    """Scan-noise standard deviation in grey levels, from the median absolute response to Immerkaer's Laplacian
    difference mask (it cancels smooth tone; strokes are too few to move the median), on a central crop of at most
    512x512 px."""
    h, w = gray.shape
    y0, x0 = max(0, h // 2 - 256), max(0, w // 2 - 256)
    crop = gray[y0 : y0 + 512, x0 : x0 + 512].astype(np.float32)
    if min(crop.shape) < 3:
        return 0.0
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(crop, -1, mask)[1:-1, 1:-1])
    return float(np.median(response)) / (0.6745 * 6)  # the mask's response to noise sigma has std 6 sigma


def _speck_density(ink: np.ndarray) -> float:
    """Ink marks of at most `NOISY_SPECK_PX` pixels per megapixel, in the median cell of a `SPECK_GRID` squared grid
    over the page: scan noise is everywhere, where the pieces of grainy pencil strokes or a fibre lie only where they
    are (more pencil written must not make a page noisy)."""
    _, _, stats, centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
    specks = centroids[1:][stats[1:, cv2.CC_STAT_AREA] <= NOISY_SPECK_PX]
    height, width = ink.shape
    cells = np.histogram2d(specks[:, 1], specks[:, 0], bins=SPECK_GRID, range=[[0, height], [0, width]])[0]
    return float(np.median(cells)) * SPECK_GRID**2 / (ink.size / 1e6)


def _remove_stamps(ink: np.ndarray, color: np.ndarray, chroma: np.ndarray) -> int:
    """Erase, in place, red seals: saturated red ink whose marks join into a large, square-ish, ring-bounded block.

    Only the red pixels of a seal are erased, so writing in another colour across it stays. Returns the count.
    """
    b, g, r = cv2.split(color)
    red = ((chroma >= STAMP_MIN_CHROMA) & (cv2.subtract(r, cv2.max(g, b)) >= STAMP_MIN_CHROMA)).astype(np.uint8)
    if not red.any():
        return 0
    size = max(ink.shape)
    join = max(3, size // 150)
    blocks = cv2.morphologyEx(red, cv2.MORPH_CLOSE, np.ones((join, join), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(blocks, connectivity=8)
    found = 0
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if min(w, h) < STAMP_MIN_SIDE * size or not 1 / STAMP_MAX_ASPECT <= w / h <= STAMP_MAX_ASPECT:
            continue
        own = (labels[y : y + h, x : x + w] == i).astype(np.uint8)
        holes = cv2.findContours(own, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        contours, hierarchy = holes
        hole_area = sum(cv2.contourArea(c) for k, c in enumerate(contours) if hierarchy[0][k][3] >= 0)
        filled = area + hole_area
        if filled < STAMP_MIN_FILL * w * h:  # a ring or a square outline fills its box; a red tick does not
            continue
        region = ink[y : y + h, x : x + w]
        region[(cv2.dilate(red[y : y + h, x : x + w], np.ones((3, 3), np.uint8)) > 0)] = 0
        found += 1
    return found


def _upright_share(own: np.ndarray, x: int, y: int, gx: np.ndarray, gy: np.ndarray, slope: float) -> float:
    """The share of the edge strength around the ink `own` (a crop at x, y) on strokes within
    `UPRIGHT_TOLERANCE_DEG` of the page's horizontal or vertical: type (Hangul and Latin stems, bars and serifs alike)
    is built on them, handwriting slants and curves."""
    h, w = own.shape
    near = cv2.dilate(own.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    dx = gx[y : y + h, x : x + w][near]
    dy = gy[y : y + h, x : x + w][near]
    magnitude = np.hypot(dx, dy)
    total = float(magnitude.sum())
    if total <= 0:
        return 0.0
    angle = np.mod(np.degrees(np.arctan2(dy, dx)) - math.degrees(math.atan(slope)), 90.0)
    off = np.minimum(angle, 90.0 - angle)
    return float(magnitude[off < UPRIGHT_TOLERANCE_DEG].sum()) / total


def _paint(mask: np.ndarray, own: np.ndarray, x: int, y: int) -> None:
    mask[y : y + own.shape[0], x : x + own.shape[1]] |= own.astype(np.uint8)


def _lines(ink: np.ndarray, text_h: float) -> list[_Line]:
    """The ink's lines: marks joined across word gaps (`WORD_JOIN_TEXT`), dots and slivers of erased rules left out."""
    join = max(3, round(WORD_JOIN_TEXT * text_h))
    joined = join_marks(ink, join, max(1, round(LINE_JOIN_DOWN_TEXT * text_h)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    lines = []
    for i in range(1, count):
        x, y, w, h, _ = stats[i]
        if min(w, h) <= max(SLIVER_PX, RULE_REMNANT_TEXT * text_h) or max(w, h) < text_h / 2:
            continue  # a dot, or what is left of an erased rule by its anti-aliased, noisy edges
        own = (labels[y : y + h, x : x + w] == i) & (ink[y : y + h, x : x + w] > 0)
        if own.sum() < LINE_MIN_INK * text_h**2:
            continue  # the closing made it of a few pixels of ink: dust
        lines.append(_Line(x, y, own, *_contours(own, x, y)))
    return lines


def _foreign_marks(
    line: _Line,
    labels: np.ndarray,
    stats: np.ndarray,
    text_h: float,
    gx: np.ndarray,
    gy: np.ndarray,
    slope: float,
    row_height: float = 0.0,
) -> list[tuple[np.ndarray, int, int]]:
    """The written marks inside a line of print: (ink crop, x, y) of each.

    Type is set at a few sizes: a printed line's marks (letters, digits, brackets, the parts of a Hangul syllable) are
    at most about as tall as its tallest letters (the 90th percentile height of its other marks). A written mark in
    it is curved or slanted (under `CLEAR_MAX_UPRIGHT` of its edges upright), at least `FOREIGN_MIN_TEXT` text heights
    tall and `FOREIGN_MIN_ASPECT` as wide as tall (brackets, slashes and bars are thin), and `FOREIGN_MIN_SIZE` times
    as tall as the tallest letters, or `FOREIGN_LOOP_SIZE` times when it encloses two of them (a loop drawn around a
    choice; a printed circled digit encloses one) or has hardly an upright edge (`FOREIGN_TICK_UPRIGHT`: a tick
    beside it; a ring, printed or not, has about 18 %). In a line that is print as one of a row (`_rows_of_type`),
    the tallest letters are at least the row's height, `row_height` (a heading's syllable broken into its pieces by
    a blurred scan is no taller than the row's other words).
    """
    h, w = line.own.shape
    ids = np.unique(labels[line.y : line.y + h, line.x : line.x + w][line.own])
    ids = ids[ids > 0]
    if len(ids) < 3:
        return []
    x0, y0, widths, heights, areas = (stats[ids, k].astype(np.int64) for k in range(5))
    # Letters, not dots, commas or the fibres of a rough paper that touch the line.
    letters = (heights >= FOREIGN_LETTER_TEXT * text_h) & (areas >= FOREIGN_LETTER_AREA * text_h**2)
    candidates = letters & (widths >= FOREIGN_MIN_ASPECT * heights) & (heights >= FOREIGN_MIN_TEXT * text_h)
    out = []
    for k in np.flatnonzero(candidates):
        others = letters & (np.arange(len(ids)) != k)
        if others.sum() < 2:
            continue
        ratio = heights[k] / max(row_height, float(np.percentile(heights[others], 90)))
        if ratio < FOREIGN_LOOP_SIZE:
            continue
        x, y, mw, mh, _ = stats[ids[k]]
        own = labels[y : y + mh, x : x + mw] == ids[k]
        upright = _upright_share(own, int(x), int(y), gx, gy, slope)
        if upright >= CLEAR_MAX_UPRIGHT:
            continue
        right, bottom = x0 + widths, y0 + heights
        loop = int((others & (x0 >= x) & (y0 >= y) & (right <= x + mw) & (bottom <= y + mh)).sum()) >= 2
        if ratio >= FOREIGN_MIN_SIZE or loop or upright < FOREIGN_TICK_UPRIGHT:
            out.append((own, int(x), int(y)))
    return out


def _paper_beside(
    color: np.ndarray, text_h: float, known: tuple[int, np.ndarray] | None = None
) -> tuple[int, np.ndarray]:
    """(kernel size, the paper right beside each pixel): a closing wider than any stroke (`PAPER_CLOSE_TEXT` text
    heights) erases the ink and keeps the background's steps where they are. `known`, an earlier closing, is reused
    when its kernel is the same (the text height measured before and after the clean-up usually agrees)."""
    k = max(3, round(PAPER_CLOSE_TEXT * text_h) | 1)
    if known is not None and known[0] == k:
        return known
    return k, cv2.morphologyEx(color, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))


def _pen_ink(ink: np.ndarray, color: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """The ink's marks written in coloured ink (blue, red, green pen), as a 0/1 mask: print is black or grey.

    A mark's colour is the ratio, channel by channel, of its pixels to the paper right beside them (a closing over
    one text height), averaged with the darker pixels weighing more: print under a highlighter or on tinted paper
    divides out grey, pen ink keeps its hue on any background. A pixel's hue is the smaller of its ratios' spread
    (max - min) and its own chroma once the paper's hue is taken out (on tinted paper, up to `PAPER_TINT_SLACK`
    times the paper's chroma in the paper's direction): a JPEG gives dark print under a yellow band yellow chroma
    that does not divide out. A mark whose hue reaches `PEN_MIN_HUE` is pen; a pen of the band's own hue under the
    band is not told from print by colour (its strokes are still judged as writing line by line).
    """
    count, labels = cv2.connectedComponents(ink, connectivity=8)
    if count <= 1:
        return np.zeros_like(ink)
    # `paper` is the paper right beside each pixel (`_paper_beside`), so a letter half under a highlighter's edge is
    # divided by the tinted paper where it is tinted and by the white paper where it is not.
    at = np.nonzero(ink)
    pixels = color[at].astype(np.float32)
    under = paper[at].astype(np.float32)
    ratio = pixels / np.maximum(under, 1.0)
    spread = ratio.max(axis=1) - ratio.min(axis=1)
    # Print under a tinted band keeps the band's hue (a JPEG shares chroma between neighbours): on tinted paper, the
    # part of the ink's chroma that points the paper's way, up to 1.5x what the paper has, is the paper's. What
    # is left, relative to the paper's brightness, is the ink's own hue (1.22 puts it on the scale of `spread`).
    chroma = pixels - pixels.mean(axis=1, keepdims=True)
    tint = under - under.mean(axis=1, keepdims=True)
    tint_norm = np.sqrt((tint * tint).sum(axis=1, keepdims=True))
    direction = tint / np.maximum(tint_norm, 1e-6)
    tinted = tint_norm >= PAPER_MIN_TINT  # not the faint hue a JPEG bleeds around a pen stroke into the paper
    along = np.clip((chroma * direction).sum(axis=1, keepdims=True), 0.0, PAPER_TINT_SLACK * tint_norm) * tinted
    residual = np.sqrt(((chroma - along * direction) ** 2).sum(axis=1))
    own_hue = 1.22 * residual / np.maximum(under.mean(axis=1), 1.0)
    spread = np.minimum(spread, own_hue)
    darkness = np.clip(1.0 - ratio.mean(axis=1), 0.0, 1.0) ** 2
    ids = labels[at]
    hue = np.bincount(ids, darkness * spread, count) / np.maximum(np.bincount(ids, darkness, count), 1e-6)
    coloured = hue >= PEN_MIN_HUE
    coloured[0] = False
    return coloured[labels].astype(np.uint8)


def _ruled_share(own: np.ndarray, text_h: float) -> float:
    """The share of a mark's ink on straight level or plumb runs `PEN_RULED_RUN_TEXT` text heights long: the sides
    of a box or a rule, where a pen's strokes bend and slant."""
    k = max(5, round(PEN_RULED_RUN_TEXT * text_h))
    ink = own.astype(np.uint8)
    runs = cv2.bitwise_or(
        cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1))),
        cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, k))),
    )
    runs = cv2.bitwise_and(cv2.dilate(runs, np.ones((3, 3), np.uint8)), ink)  # with the anti-aliased fringe
    return float(runs.sum()) / max(1, int(ink.sum()))


def _ink_darkness(gray: np.ndarray, line: _Line, text_h: float) -> float:
    """How much darker than the paper around it a line's darkest ink is (grey levels): the 90th percentile of its
    box grown by half a text height (paper) minus the 10th percentile of its ink."""
    h, w = line.own.shape
    m = max(2, round(text_h / 2))
    around = gray[max(0, line.y - m) : line.y + h + m, max(0, line.x - m) : line.x + w + m]
    ink = gray[line.y : line.y + h, line.x : line.x + w][line.own]
    return float(np.percentile(around, 90) - np.percentile(ink, 10))


def _fainter_than_print(
    gray: np.ndarray, lines: list[_Line], printed: list[bool], uprights: list[float], text_h: float
) -> list[bool]:
    """For each line, whether it is a short line (taken for print or not) clearly in another instrument's ink: under
    `FAINT_MAX_TEXT` text heights long and at least `FAINT_MIN_TEXT`, not upright (`CLEAR_MAX_UPRIGHT`), its letters
    at least `FAINT_MIN_SIZE` text heights tall, and at most `FAINT_INK_SHARE` as dark as the page's long printed
    lines (their median; one printer prints them all alike). Pencil is grey where laser and inkjet print is black; a
    short printed label is as dark as the text around it (print in grey at half the body's darkness is not told
    from pencil this way)."""
    out = [False] * len(lines)
    long_print = [line for line, p in zip(lines, printed, strict=True) if p and len(line.xs) >= LONG_LINE_TEXT * text_h]
    if len(long_print) < FAINT_MIN_LINES:
        return out
    reference = 0.0
    for k, (line, upright) in enumerate(zip(lines, uprights, strict=True)):
        if upright >= CLEAR_MAX_UPRIGHT or not FAINT_MIN_TEXT * text_h <= len(line.xs) < FAINT_MAX_TEXT * text_h:
            continue
        if line.size < FAINT_MIN_SIZE * text_h:
            continue  # a blotch of a textured paper's grain is faint too, but no letter's height
        if not reference:
            reference = float(np.median([_ink_darkness(gray, other, text_h) for other in long_print]))
        out[k] = _ink_darkness(gray, line, text_h) <= FAINT_INK_SHARE * reference
    return out


def _rows_of_type(
    lines: list[_Line], printed: list[bool], slopes: list[float], tol: float
) -> tuple[list[bool], list[float]]:
    """`printed`, with the lines that repeat one edge across a row taken for print too: type sets the words of a line
    (a heading's, a choice row's "(1) 26", each its own line when word gaps are wide) on one baseline (Latin) or
    under one top line (Hangul syllables), so their boxes' bottoms or tops agree to a pixel or two, at any size and
    resolution, even where a low-resolution scan's blur leaves their contours no longer straight. A line whose top or
    bottom (at the page's slope) lies within `ROW_TOL_SIZE` of its height (and `tol`) of those of `ROW_MIN_PIECES`
    - 1 other lines of about its height (`ROW_SIZE_RATIO`) is print: a written line is one piece (its words join
    across `WORD_JOIN_TEXT`), and written words that do stand apart jitter in height and drift off a line. Used on
    low-resolution scans only (`LOWRES_TEXT_PX`), where blur leaves no other cue: at 200 dpi a pen's words written
    wide apart can share a top or a bottom within 3 px (held-out), and there the contours tell print already.
    Returns the lines' print flags and, for each line taken for print here, its row's median box height."""
    out, row_heights = list(printed), [0.0] * len(lines)
    if len(lines) < ROW_MIN_PIECES:
        return out, row_heights
    heights = np.array([line.own.shape[0] for line in lines], np.float64)
    centres = np.array([line.x + line.own.shape[1] / 2 for line in lines], np.float64)
    shift = np.array(slopes) * centres  # the page's slope taken out: a skewed scan's row still lines up
    tops = np.array([line.y for line in lines], np.float64) - shift
    bottoms = tops + heights
    for k in np.flatnonzero(~np.array(printed)):
        within = max(tol, ROW_TOL_SIZE * heights[k])
        sized = (heights <= ROW_SIZE_RATIO * heights[k]) & (heights * ROW_SIZE_RATIO >= heights[k])
        top = sized & (np.abs(tops - tops[k]) <= within)  # itself included
        bottom = sized & (np.abs(bottoms - bottoms[k]) <= within)
        if max(int(top.sum()), int(bottom.sum())) >= ROW_MIN_PIECES:
            out[k], row_heights[k] = True, float(np.median(heights[top | bottom]))
    return out, row_heights


def _print_size(lines: list[_Line], on_baseline: list[float]) -> float:
    """The page's print size: the letter height of the lines on a straight baseline, the median over their columns
    (each line weighs by its length), so a long body line counts for more than the short pieces of a low-resolution
    scan's broken letters or a lone label; 0 when no line sits on a baseline."""
    sized = [
        (line.size, len(line.xs)) for line, on in zip(lines, on_baseline, strict=True) if on >= PRINTED_MIN_ON_BASELINE
    ]
    if not sized:
        return 0.0
    sizes, weights = np.array(sized, np.float64).T
    return weighted_median(sizes, weights)


def _is_printed(bottom: float, top: float, relative_size: float, length: float, lowres: bool = False) -> bool:
    """Whether a line is print, from the shares of its bottom and top contours on straight lines of the page's slope,
    its letter height relative to the page's print size and its length in text heights. On a low-resolution scan
    (`lowres`: letters at most `LOWRES_TEXT_PX` tall as scanned), where blur rounds every contour, a line aligned
    `LOWRES_MIN_ALIGNED` is print up to `LOWRES_SIZE_TOLERANCE` times the print size (headings)."""
    aligned = bottom + top
    if aligned >= ALIGNED_ANY_SIZE or (
        lowres and aligned >= LOWRES_MIN_ALIGNED and relative_size <= LOWRES_SIZE_TOLERANCE
    ):
        return True
    on_lines = aligned >= PRINTED_MIN_ALIGNED or (bottom >= PRINTED_MIN_ON_BASELINE and length < LONG_LINE_TEXT)
    return on_lines and relative_size <= PRINT_SIZE_TOLERANCE


def _is_clearly_written(upright: float, aligned: float, relative_size: float) -> bool:
    """Whether a line judged written is clearly so (one such mark makes writing present): hardly upright
    (`CLEAR_MAX_UPRIGHT`) and either not aligned (`CLEAR_MAX_ALIGNED`), or slanted throughout
    (`CLEAR_SLANTED_UPRIGHT`: a short answer's few columns can line up by chance), or much larger than the page's
    print (`CLEAR_MIN_SIZE`: an answer written in an answer space)."""
    if upright >= CLEAR_MAX_UPRIGHT:
        return False
    return aligned < CLEAR_MAX_ALIGNED or upright < CLEAR_SLANTED_UPRIGHT or relative_size >= CLEAR_MIN_SIZE


def _is_upright_type(upright: float, aligned: float, size: float) -> bool:
    """Whether a line is type by its upright strokes (any script: Hangul, Latin, digits): a very upright line is,
    and a fairly upright one whose contours are also fairly straight and whose letters are not huge."""
    if upright >= UPRIGHT_ANY_SHARE:
        return True
    return upright >= UPRIGHT_MIN_SHARE and aligned >= UPRIGHT_MIN_ALIGNED and size <= UPRIGHT_MAX_SIZE


def _text_height(ink: np.ndarray) -> float:
    return _median_height(cv2.connectedComponentsWithStats(ink, connectivity=8)[2])


def _median_height(stats: np.ndarray) -> float:
    """The median height of the labelled marks (row 0, the background, excluded), at least 4 px; specks (at most
    `NOISY_SPECK_PX` pixels: a fibrous paper's, a noisy scan's) are left out when there are marks besides."""
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    areas = stats[1:, cv2.CC_STAT_AREA]
    marks = areas > NOISY_SPECK_PX
    if marks.any():
        # Pieces of a stroke broken up by grainy pencil are not letters: marks of less than a share of the typical
        # mark's ink are left out (more broken pencil would otherwise shrink every length on the page).
        # The typical mark is the one holding the median ink pixel, which many small pieces cannot pull down, among
        # the marks of at most `FRAGMENT_TYPICAL_CAP` times the median mark's ink (not a grid or a table's rules).
        sized = areas[marks]
        ordered = np.sort(sized[sized <= FRAGMENT_TYPICAL_CAP * np.median(sized)])
        typical = ordered[np.searchsorted(np.cumsum(ordered), ordered.sum() / 2)]
        heights = heights[marks & (areas >= FRAGMENT_MAX_SHARE * typical)]
    return float(max(4.0, np.median(heights))) if len(heights) else 4.0


def _remove_rules(ink: np.ndarray, text_h: float) -> None:
    """Erase long straight horizontal and vertical runs (rules, box borders) in place."""
    height, width = ink.shape
    # At most RULE_MAX_SHARE of the side: on a page of grid lines alone the "text height" is the grid's.
    across = min(max(round(RULE_MIN_TEXT * text_h), round(RULE_MIN_SHARE * width)), round(RULE_MAX_SHARE * width))
    down = min(max(round(RULE_MIN_TEXT * text_h), round(RULE_MIN_SHARE * height)), round(RULE_MAX_SHARE * height))
    rules = cv2.bitwise_or(
        cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (across, 1))),
        cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, down))),
    )
    ink[cv2.dilate(rules, np.ones((5, 5), np.uint8)) > 0] = 0  # with the anti-aliased fringe


def _remove_drawings(ink: np.ndarray, text_h: float, gx: np.ndarray, gy: np.ndarray) -> None:
    """Erase, in place, the marks that are drawn with instruments rather than written.

    - circles (answer bubbles, figure circles): a round outline around a round hole (`CIRCLE_MIN_ROUNDNESS`), unless
      it encloses `LOOP_MIN_LETTERS` letters (a loop drawn round a choice: "④ 63");
    - straight-edged drawings at least `SHAPE_MIN_TEXT` text heights long (rules and boxes at any skew, figure
      polylines): their contours reduce to long straight edges, at least `POLYGON_EDGE_TEXT` text heights per
      vertex (or `POLYGON_FEW_EDGE_TEXT` with at most `POLYGON_FEW_VERTICES` vertices), where writing turns every
      fraction of a text height. A small one (under `TICK_MAX_TEXT` text heights) with hardly an upright edge
      (`TICK_MAX_UPRIGHT`) is a tick, not a figure: it stays.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    erase = np.zeros(count, bool)
    letters = (stats[:, cv2.CC_STAT_HEIGHT] >= FOREIGN_LETTER_TEXT * text_h) & (
        stats[:, cv2.CC_STAT_AREA] >= FOREIGN_LETTER_AREA * text_h**2
    )
    letters[0] = False
    for i in range(1, count):
        x, y, w, h, _ = stats[i]
        if max(w, h) < CIRCLE_MIN_TEXT * text_h:
            continue
        own = (labels[y : y + h, x : x + w] == i).astype(np.uint8)
        if _is_circle(own, w, h):
            # A ring around two letters or more is a loop drawn round a choice ("④ 63"); a printed bubble or a
            # circled digit holds one letter at most.
            inside = (
                letters
                & (stats[:, 0] >= x)
                & (stats[:, 1] >= y)
                & (stats[:, 0] + stats[:, 2] <= x + w)
                & (stats[:, 1] + stats[:, 3] <= y + h)
            )
            erase[i] = int(inside.sum()) - int(letters[i]) < LOOP_MIN_LETTERS
        elif max(w, h) >= SHAPE_MIN_TEXT * text_h and _is_polygon(own, text_h):
            tick = max(w, h) < TICK_MAX_TEXT * text_h and _upright_share(own, x, y, gx, gy, 0.0) < TICK_MAX_UPRIGHT
            erase[i] = not tick
    ink[erase[labels]] = 0


def _remove_solid(ink: np.ndarray) -> float:
    """Erase, in place, filled marks (fiducials, filled bubbles): ink thicker than any pen stroke; return the text
    height measured on the marks before (one labelling serves both).

    A mark is solid when it holds a disc `SOLID_MIN_TEXT` text heights (and `SOLID_MIN_PX`) across.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    text_h = _median_height(stats)
    radius = max(SOLID_MIN_PX, SOLID_MIN_TEXT * text_h) / 2
    erase = np.zeros(count, bool)
    # Only a mark of at least the disc's area can hold it.
    for i in np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= math.pi * radius**2) + 1:
        x, y, w, h, _ = stats[i]
        own = np.pad((labels[y : y + h, x : x + w] == i).astype(np.uint8), 1)
        erase[i] = cv2.distanceTransform(own, cv2.DIST_L2, 3).max() >= radius
    ink[erase[labels]] = 0
    return text_h


def _is_circle(own: np.ndarray, w: int, h: int) -> bool:
    """A round ring: square box, round outer contour and a round hole filling most of it."""
    if not 1 / CIRCLE_MAX_ASPECT <= w / h <= CIRCLE_MAX_ASPECT:
        return False
    contours, hierarchy = cv2.findContours(own, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    outer = max(range(len(contours)), key=lambda k: cv2.contourArea(contours[k]))
    holes = [contours[k] for k in range(len(contours)) if hierarchy[0][k][3] == outer]
    if not holes:
        return False
    hole = max(holes, key=cv2.contourArea)
    return (
        _roundness(contours[outer]) >= CIRCLE_MIN_ROUNDNESS
        and _roundness(hole) >= CIRCLE_MIN_ROUNDNESS
        and cv2.contourArea(hole) >= CIRCLE_MIN_HOLE * cv2.contourArea(contours[outer])
    )


def _roundness(contour: np.ndarray) -> float:
    """4 pi area / perimeter^2 of the convex hull: 1 for a circle, 0.79 for a square."""
    hull = cv2.convexHull(contour)
    perimeter = cv2.arcLength(hull, True)
    return float(4 * math.pi * cv2.contourArea(hull) / perimeter**2) if perimeter else 0.0


def _is_polygon(own: np.ndarray, text_h: float) -> bool:
    """Whether a mark's contours are a few long straight edges (rules, boxes, polylines), not curving strokes."""
    contours, _ = cv2.findContours(own, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    eps = max(POLYGON_EPS_PX, POLYGON_EPS_TEXT * text_h)
    length = vertices = 0.0
    for contour in contours:
        perimeter = cv2.arcLength(contour, True)
        if perimeter < 4 * eps:
            continue  # a speck-sized hole says nothing about the shape
        length += perimeter
        vertices += len(cv2.approxPolyDP(contour, eps, True))
    if vertices == 0:
        return False
    edge = length / vertices / text_h
    return edge >= POLYGON_EDGE_TEXT or (edge >= POLYGON_FEW_EDGE_TEXT and vertices <= POLYGON_FEW_VERTICES)


@dataclass(frozen=True)
class _Line:
    """One line of ink (marks joined across word gaps) and its bottom and top contours in page pixels."""

    x: int
    y: int
    own: np.ndarray  # its ink, cropped to its box
    xs: np.ndarray  # the columns holding ink
    bottoms: np.ndarray  # the lowest ink in each of those columns
    tops: np.ndarray  # the highest
    size: float  # letter height


def _contours(own: np.ndarray, x: int, y: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(columns, bottom contour, top contour, letter height) of one line, in page pixels.

    The letter height is the `LETTER_SIZE_PERCENTILE` percentile over columns of the ink's vertical extent: the
    height of capitals and ascenders in print, whatever the mix of letters, digits and case.
    """
    columns = np.flatnonzero(own.any(axis=0))
    ink = own[:, columns]
    bottoms = own.shape[0] - 1 - np.argmax(ink[::-1], axis=0)
    tops = np.argmax(ink, axis=0)
    size = float(np.percentile(bottoms - tops + 1, LETTER_SIZE_PERCENTILE))
    return (columns + x).astype(np.float64), (bottoms + y).astype(np.float64), (tops + y).astype(np.float64), size


def _line_slope(line: _Line, tol: float) -> float | None:
    """The slope of a line's baseline, fitted to its bottom contour without descenders and loops; None when too few
    columns remain to fit."""
    xs, bottoms = line.xs, line.bottoms
    keep = np.ones(len(xs), bool)
    slope = 0.0
    for _ in range(2):  # refit without descenders and loops
        slope, intercept = np.polyfit(xs[keep], bottoms[keep], 1)
        keep = np.abs(bottoms - (slope * xs + intercept)) <= 3 * tol
        if keep.sum() < 3:
            return None
    return float(slope)


def _page_slope(long_lines: list[_Line], tol: float) -> tuple[float, Callable[[float], float]]:
    """(the median baseline slope of the long lines whose bottom contour mostly lies on a straight line, 0 if none or
    if more of the long lines' contours lie along 0; the slope at a height of the page).

    A photographed page's perspective changes the slope steadily down the page (a keystone: 0.03 at the top, -0.02
    at the bottom), and so does a page curling off the glass: with `PERSPECTIVE_MIN_LINES` such lines or more, the
    slope at height y is a straight-line fit of their slopes against their heights, refitted without the lines off
    it by more than `PERSPECTIVE_OUTLIER` (a written line that happened to be straight keeps its own tilt), when it
    changes by `PERSPECTIVE_MIN_CHANGE` or more between them (less: a flat scan, whose slope is the median).
    """
    slopes, heights = [], []
    for line in long_lines:
        slope = _line_slope(line, tol)
        if slope is not None and _share_on_line(line.xs, line.bottoms, slope, tol) >= PRINTED_MIN_ON_BASELINE:
            slopes.append(slope)
            heights.append(line.y + line.own.shape[0] / 2)
    median = float(np.median(slopes)) if slopes else 0.0
    if median and len(slopes) < len(long_lines):
        # Few lines fitted well (a low-resolution scan's whole-pixel baselines; descenders): the median of two bad
        # fits can be far off. The scanner's own axis is the other candidate; the one more of the long lines' bottom
        # contours lie along wins.
        def along(slope: float) -> float:
            return sum(_share_on_line(line.xs, line.bottoms, slope, tol) for line in long_lines)

        if along(0.0) > along(median):
            median = 0.0
    if len(slopes) < PERSPECTIVE_MIN_LINES:
        return median, lambda _y: median
    ys, ss = np.array(heights), np.array(slopes)
    keep = np.abs(ss - median) <= PERSPECTIVE_OUTLIER * 6
    for _ in range(2):
        if keep.sum() < PERSPECTIVE_MIN_LINES or np.ptp(ys[keep]) <= 0:
            return median, lambda _y: median
        gain, offset = np.polyfit(ys[keep], ss[keep], 1)
        keep = np.abs(ss - (gain * ys + offset)) <= PERSPECTIVE_OUTLIER
    if abs(gain) * np.ptp(ys) < PERSPECTIVE_MIN_CHANGE:
        return median, lambda _y: median  # a flat scan: one slope, the lines' median
    return median, lambda y: float(gain * y + offset)


def _best_share(xs: np.ndarray, ys: np.ndarray, slopes: tuple[float, float], tol: float) -> float:
    """The larger share of a contour on a straight line at either slope (the page's, the local one)."""
    first = _share_on_line(xs, ys, slopes[0], tol)
    return first if slopes[1] == slopes[0] else max(first, _share_on_line(xs, ys, slopes[1], tol))


def _share_on_line(xs: np.ndarray, ys: np.ndarray, slope: float, tol: float) -> float:
    """The largest share of a contour's points (xs, ys) within `tol` of one straight line of the given slope.

    Exact and O(n log n): the best line's offset is found by sliding a 2 `tol` window over the sorted offsets.
    """
    if len(xs) < 3:
        return 0.0
    offsets = np.sort(ys - slope * xs)
    within = np.searchsorted(offsets, offsets + 2 * tol, side="right") - np.arange(len(offsets))
    return float(within.max()) / len(offsets)


def _digit_share(written: np.ndarray) -> tuple[float, int]:
    """(share of handwritten ink in digit-like components, number of handwritten components)."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(written, connectivity=8)
    if count <= 1:
        return 0.0, 0
    w = stats[1:, cv2.CC_STAT_WIDTH]
    h = stats[1:, cv2.CC_STAT_HEIGHT]
    area = stats[1:, cv2.CC_STAT_AREA]
    compact = w <= DIGIT_MAX_ASPECT * h
    return float(area[compact].sum() / area.sum()), count - 1


def _stroke_width(written: np.ndarray) -> float:
    from skimage.morphology import skeletonize

    rows, cols = np.flatnonzero(written.any(axis=1)), np.flatnonzero(written.any(axis=0))
    if not len(rows):
        return 0.0
    # Thinning is local: the box of the writing with a pixel of margin thins alike, for a fraction of a page's cost.
    box = written[max(0, rows[0] - 1) : rows[-1] + 2, max(0, cols[0] - 1) : cols[-1] + 2]
    length = int(skeletonize(box > 0).sum())
    return float(written.sum()) / length if length else 0.0


def _orientation_entropy(gx: np.ndarray, gy: np.ndarray, written: np.ndarray) -> float:
    if not written.any():
        return 0.0
    near = cv2.dilate(written, np.ones((3, 3), np.uint8)) > 0
    magnitude = np.hypot(gx[near], gy[near])
    angle = np.mod(np.arctan2(gy[near], gx[near]), np.pi)
    hist, _ = np.histogram(angle, bins=ORIENTATION_BINS, range=(0.0, np.pi), weights=magnitude)
    total = hist.sum()
    if total <= 0:
        return 0.0
    p = hist[hist > 0] / total
    return float(-(p * np.log(p)).sum() / math.log(ORIENTATION_BINS))


def _crop(gray: np.ndarray, bbox: Any) -> tuple[np.ndarray, list[int]]:
    """The region `bbox` = [x0, y0, x1, y1] (page pixels, clipped to the page) or the whole page."""
    height, width = gray.shape
    if bbox is None:
        return gray, [0, 0, width, height]
    if (
        not isinstance(bbox, list)
        or len(bbox) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)
    ):
        raise PermanentError(INVALID_INPUT, f"payload.bbox must be [x0, y0, x1, y1] in pixels, got {bbox!r}")
    x0, y0 = max(0, math.floor(bbox[0])), max(0, math.floor(bbox[1]))
    x1, y1 = min(width, math.ceil(bbox[2])), min(height, math.ceil(bbox[3]))
    if x1 - x0 < MIN_REGION_PX or y1 - y0 < MIN_REGION_PX:
        raise PermanentError(
            INVALID_INPUT,
            f"payload.bbox {bbox!r} leaves less than {MIN_REGION_PX}x{MIN_REGION_PX} px of the {width}x{height} page",
        )
    return gray[y0:y1, x0:x1], [x0, y0, x1, y1]


def handle(ctx: JobContext) -> dict[str, Any]:
    page_index = int_field(ctx.payload, "page", 0, 0, ctx.settings.vision.pdf_max_pages - 1)
    selection = {"pages": [page_index], **{k: v for k, v in ctx.payload.items() if k == "dpi"}}
    data = ctx.read_input()
    (page,) = load_pages(data, selection, ctx.settings.vision)
    region, box = _crop(page.gray, ctx.payload.get("bbox"))
    color = None
    if not is_pdf(data):  # images keep their colour: pen ink, highlighters and stamps are told by it
        bgr = decode_image(data, max_pixels=ctx.settings.vision.max_pixels)
        if bgr.shape[:2] == page.gray.shape:
            color = bgr[box[1] : box[3], box[0] : box[2]]
    width, height = page.size
    return {
        "page_index": page.index,
        "page_size": [width, height],
        "dpi": page.dpi,
        "region": box,
        **measure(region, color=color).to_dict(),
    }
