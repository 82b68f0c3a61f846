"""Exam-page layout analysis with OpenCV: columns, text lines and left-margin question numbers.

Guarantees: the boxes returned are the tight boxes of each question's ink (number, text, choices, figures) in page
pixels, [x0, y0, x1, y1] with x1/y1 exclusive, in reading order (full-width bands top to bottom; within a band of
columns, the left column top to bottom, then the right one). Content above a full-width header rule, the top and
bottom 5 % of the page, unnumbered lines far from any question (page numbers, stray marks) and long rules are never
part of a question. Scales with the page:
every length is relative to the page width or to the measured text-line height, so any dpi works.

A question starts at a line that (1) begins at its column's left margin, (2) begins with a narrow block (a number
such as "12." followed by a gap) and (3) follows a vertical gap or an indented line (hanging indent). Lines that do
not start a question join the one above when within `JOIN_GAP_LINES` line heights and starting left of its right edge.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from ai_worker.jobs.deskew import MIN_SKEW_DEG, estimate_skew, map_box, straighten
from ai_worker.jobs.imaging import ink_mask, join_marks, remove_specks

REFERENCE_WIDTH = 1240  # A4 at 150 dpi: the unit every pixel constant below is written in
SPECK_AREA = 12  # components smaller than this (reference pixels squared: a 3x4 blot) are dust
DOT_LINES = 0.5  # blocks lower than half a line height are dots and dust (or a row of them) ...
RULE_LINES = 2.0  # ... unless they are at least two line heights long: an answer blank, a dash
WORD_GAP = 0.012  # letters closer than this fraction of the page width join one word block
H_RULE_MIN = 0.6  # a horizontal rule spans at least this fraction of the page width
V_RULE_MIN = 0.3  # a vertical rule (column separator) spans at least this fraction of the page height
RULE_MIN_CONTRAST = 25  # hairline rules are found at half the usual ink contrast
RULE_WINDOW_FRACTION = 80  # vertical rules are judged over windows 1/80 of the page width tall (15 px at 150 dpi)
PAGE_FURNITURE = 0.05  # the top and bottom 5 % of the page hold running heads and page numbers only
HEADER_ZONE = 0.3  # a full-width rule in the top 30 % of the page closes the header
FOOTER_ZONE = 0.85  # a full-width rule below 85 % of the page height opens the footer
GUTTER_MIN = 0.025  # a column gutter is wider than 2.5 % of the page width (two word gaps) ...
GUTTER_ZONE = (0.25, 0.75)  # ... and lies in the middle half of the page
GUTTER_CROSSINGS = 2  # line heights of ink that may cross a gutter (a title, a page number)
COLUMN_MIN_SHARE = 0.05  # each column holds at least 5 % of the body's ink, or the page has one column
COLUMN_TOP_LINES = 3  # the two columns' first lines are at most 3 line heights apart
MARGIN_TOL_LINES = 0.6  # a line starts at the margin when within 0.6 line heights of it
NUMBER_GAP_LINES = 0.45  # the number ends at the first blank run at least this many line heights wide ...
NUMBER_MAX_LINES = 3.5  # ... and is at most this many line heights wide
START_GAP_LINES = 0.9  # a blank gap of at least this many line heights may precede a new question
JOIN_GAP_LINES = 4.0  # a non-numbered line further below its question than this is not part of it


@dataclass(frozen=True)
class Block:
    """A box of ink: a word or a run of words, a figure, or a whole text line. x1/y1 exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int


@dataclass(frozen=True)
class Layout:
    questions: list[tuple[int, int, int, int]]
    columns: int
    skew_deg: float  # the page's rotation that was undone before the analysis (counter-clockwise positive)


def analyse(gray: np.ndarray) -> Layout:
    """Find the question boxes of one page, in reading order.

    A skewed page is levelled first; its boxes are mapped back to the page as given (axis-aligned boxes around the
    levelled ones).
    """
    height, width = gray.shape
    mask = _ink(gray)
    skew = estimate_skew(mask)
    if abs(skew) < MIN_SKEW_DEG:
        questions, columns = _analyse_level(gray, mask)
        return Layout(questions, columns, 0.0)
    level, back = straighten(gray, skew)
    questions, columns = _analyse_level(level, _ink(level))
    return Layout([map_box(q, back, width, height) for q in questions], columns, round(-skew, 2))


def _ink(gray: np.ndarray) -> np.ndarray:
    unit = gray.shape[1] / REFERENCE_WIDTH
    return remove_specks(ink_mask(gray), max(2, round(SPECK_AREA * unit * unit)))


def _analyse_level(gray: np.ndarray, mask: np.ndarray) -> tuple[list[tuple[int, int, int, int]], int]:
    """(question boxes, column count) of a level page."""
    height, width = gray.shape
    top, bottom = _strip_rules(mask, ink_mask(gray, RULE_MIN_CONTRAST))
    furniture = round(PAGE_FURNITURE * height)  # running heads and page numbers, never questions
    top, bottom = max(top, furniture), min(bottom, height - furniture)
    body = mask[top:bottom]
    word_gap = max(3, round(WORD_GAP * width))
    blocks = _blocks(body, word_gap)
    line_h = _line_height(blocks)
    # Dust that survived the speck filter (JPEG smears it) would shift a line's start off the margin.
    blocks = [b for b in blocks if b.y1 - b.y0 >= DOT_LINES * line_h or b.x1 - b.x0 >= RULE_LINES * line_h]
    # Columns are found on runs of words: a gutter is wider than any gap inside a line, so lines never span it.
    gutter = _gutter(_blocks(body, word_gap * 2), width, line_h)
    questions: list[tuple[int, int, int, int]] = []
    if gutter is None:
        questions = _questions(body, blocks, _margin(blocks, line_h), line_h)
    else:
        reach = round(GUTTER_MIN * width / 2)
        columnar = [b for b in blocks if not _spans(b, gutter, reach)]
        left = _margin([b for b in columnar if _left_of(b, gutter)], line_h)
        right = _margin([b for b in columnar if not _left_of(b, gutter)], line_h)
        for band, spanning in _bands(blocks, gutter, reach):
            if spanning:
                questions += _questions(body, band, left, line_h)
            else:
                questions += _questions(body, [b for b in band if _left_of(b, gutter)], left, line_h)
                questions += _questions(body, [b for b in band if not _left_of(b, gutter)], right, line_h)
    return [(x0, y0 + top, x1, y1 + top) for x0, y0, x1, y1 in questions], 1 if gutter is None else 2


def _strip_rules(mask: np.ndarray, faint: np.ndarray) -> tuple[int, int]:
    """Erase long rules from `mask` in place; return the body's row range (below the header, above the footer).

    Vertical rules are found in `faint`, a low-contrast ink mask: hairline column separators fade under blur.
    """
    height, width = mask.shape
    # A rule levelled to within a twentieth of a degree still drifts a pixel over a page: thicken before testing
    # for one long straight run.
    drift = np.ones((3, 3), np.uint8)
    horizontal = cv2.morphologyEx(
        cv2.dilate(mask, drift), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (int(width * H_RULE_MIN), 1))
    )
    # Thin column separators break up under scan noise: a pixel is on a vertical rule where most of a short vertical
    # window around it is ink (text never is, over a whole column of lines), then the rule must be long.
    window = max(3, width // RULE_WINDOW_FRACTION)
    dense = (cv2.blur(faint.astype(np.float32), (1, window)) >= 0.5).astype(np.uint8)
    vertical = cv2.morphologyEx(
        cv2.dilate(dense, drift),
        cv2.MORPH_OPEN,
        cv2.getStructuringElement(cv2.MORPH_RECT, (1, int(height * V_RULE_MIN))),
    )
    rules = cv2.dilate(cv2.bitwise_or(horizontal, vertical), np.ones((3, 3), np.uint8))
    mask[rules > 0] = 0
    rows = np.flatnonzero(horizontal.any(axis=1))
    top = int(rows[rows < height * HEADER_ZONE].max()) + 2 if (rows < height * HEADER_ZONE).any() else 0
    bottom = int(rows[rows > height * FOOTER_ZONE].min()) - 1 if (rows > height * FOOTER_ZONE).any() else height
    return top, bottom


def _blocks(mask: np.ndarray, word_gap: int) -> list[Block]:
    joined = join_marks(mask, word_gap, 3)
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    return [Block(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _ in stats[1:count]]


def _line_height(blocks: list[Block]) -> float:
    """The width-weighted median block height: most of a page's width is words on text lines (dust has none)."""
    if not blocks:
        return 1.0
    heights = np.array([b.y1 - b.y0 for b in blocks], np.float64)
    widths = np.array([b.x1 - b.x0 for b in blocks], np.float64)
    order = np.argsort(heights)
    cumulative = np.cumsum(widths[order])
    return float(max(1.0, heights[order][np.searchsorted(cumulative, cumulative[-1] / 2)]))


def _gutter(blocks: list[Block], width: int, line_h: float) -> int | None:
    """The x of the centre line between two columns, or None for a one-column page.

    The gutter is the widest run, in the middle half of the page, where the ink crossing it is
    within one line height of the least crossed x there (a sparse column leaves a wide blank run); at most
    `GUTTER_CROSSINGS` lines (a title, a page number) may cross it. The centre line is the middle of the run's
    least crossed part. Each side of the centre line must hold
    `COLUMN_MIN_SHARE` of the ink, and both sides must start within `COLUMN_TOP_LINES` of each other.
    """
    coverage = np.zeros(width, np.float64)
    for b in blocks:
        coverage[b.x0 : b.x1] += b.y1 - b.y0
    lo, hi = int(GUTTER_ZONE[0] * width), int(GUTTER_ZONE[1] * width)
    floor = coverage[lo:hi].min()
    if floor > GUTTER_CROSSINGS * line_h:
        return None
    runs = [r for r in _runs(coverage <= floor + line_h, lo, hi) if r[1] - r[0] >= GUTTER_MIN * width]
    if not runs:
        return None
    # The widest run (nearest the page centre among equals): a hanging indent also leaves a blank channel, narrower.
    run = max(runs, key=lambda r: (r[1] - r[0], -abs(r[0] + r[1] - width)))
    # Its centre line goes through its emptiest part: a sparse column's single long line may border the gutter.
    core = max(_runs(coverage <= coverage[run[0] : run[1]].min(), *run), key=lambda r: r[1] - r[0])
    centre = (core[0] + core[1]) // 2
    left = [b for b in blocks if b.x1 <= centre and b.y1 - b.y0 >= line_h / 2]
    right = [b for b in blocks if b.x0 >= centre and b.y1 - b.y0 >= line_h / 2]
    if not left or not right:
        return None
    left_ink = sum((b.x1 - b.x0) * (b.y1 - b.y0) for b in left)
    right_ink = sum((b.x1 - b.x0) * (b.y1 - b.y0) for b in right)
    if min(left_ink, right_ink) < COLUMN_MIN_SHARE * (left_ink + right_ink):
        return None
    # Columns start together under the header; the far half of wide rows (spread-out choices) does not.
    if abs(min(b.y0 for b in left) - min(b.y0 for b in right)) > COLUMN_TOP_LINES * line_h:
        return None
    return centre


def _runs(flags: np.ndarray, lo: int, hi: int) -> list[tuple[int, int]]:
    """The runs [start, end) of True in flags[lo:hi]."""
    padded = np.concatenate(([False], flags[lo:hi], [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(lo + int(a), lo + int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _bands(blocks: list[Block], gutter: int, reach: int) -> list[tuple[list[Block], bool]]:
    """Split the body at blocks reaching across the gutter: (blocks, spanning) bands, top to bottom.

    A block spans when it extends more than `reach` past the centre line on both sides; a line that merely runs
    into the gutter stays in its column.
    """
    spanning = sorted((b for b in blocks if _spans(b, gutter, reach)), key=lambda b: b.y0)
    columnar = [b for b in blocks if not _spans(b, gutter, reach)]
    spans: list[list[int]] = []  # merged row intervals of the spanning blocks
    for b in spanning:
        if spans and b.y0 <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b.y1)
        else:
            spans.append([b.y0, b.y1])
    bands: list[tuple[list[Block], bool]] = []
    cursor = -1
    for y0, y1 in spans:
        bands.append(([b for b in columnar if cursor <= (b.y0 + b.y1) / 2 < y0], False))
        inside = [b for b in spanning if y0 <= b.y0 < y1]
        inside += [b for b in columnar if y0 <= (b.y0 + b.y1) / 2 < y1]
        bands.append((inside, True))
        cursor = y1
    bands.append(([b for b in columnar if (b.y0 + b.y1) / 2 >= cursor], False))
    return bands


def _spans(block: Block, gutter: int, reach: int) -> bool:
    return block.x0 < gutter - reach and block.x1 > gutter + reach


def _left_of(block: Block, gutter: int) -> bool:
    return block.x0 + block.x1 < 2 * gutter


def _margin(blocks: list[Block], line_h: float) -> int:
    """A column's left margin: where its leftmost line starts, among lines that have a neighbour.

    A line more than `JOIN_GAP_LINES` from any other (a page number, a stray mark) does not set the margin unless
    every line is that isolated; blocks smaller than half a line (dust, dots) never do.
    """
    lines = _lines([b for b in blocks if b.y1 - b.y0 >= line_h / 2])
    if not lines:
        return 0
    reach = JOIN_GAP_LINES * line_h
    gaps = [b.y0 - a.y1 for a, b in itertools.pairwise(lines)]
    above = [math.inf, *gaps]
    below = [*gaps, math.inf]
    near = [line.x0 for line, up, down in zip(lines, above, below, strict=True) if min(up, down) <= reach]
    return min(near) if near else min(line.x0 for line in lines)


def _lines(blocks: list[Block]) -> list[Block]:
    """Text lines, top to bottom: the union boxes of blocks overlapping vertically by half the smaller height."""
    lines: list[Block] = []
    for b in sorted(blocks, key=lambda b: b.y0):
        if lines:
            last = lines[-1]
            overlap = min(last.y1, b.y1) - max(last.y0, b.y0)
            if overlap >= 0.5 * min(last.y1 - last.y0, b.y1 - b.y0):
                lines[-1] = Block(min(last.x0, b.x0), min(last.y0, b.y0), max(last.x1, b.x1), max(last.y1, b.y1))
                continue
        lines.append(Block(b.x0, b.y0, b.x1, b.y1))
    return lines


def _numbered(mask: np.ndarray, line: Block, line_h: float) -> bool:
    """The line begins with a narrow block followed by a blank gap, as a question number does."""
    gap = max(2, round(NUMBER_GAP_LINES * line_h))
    limit = round(NUMBER_MAX_LINES * line_h)
    window = mask[line.y0 : line.y1, line.x0 : min(line.x1, line.x0 + limit + gap)]
    profile: list[bool] = np.any(window, axis=0).tolist()
    blank = 0
    for x, ink in enumerate(profile):
        blank = 0 if ink else blank + 1
        if blank >= gap:
            return x - blank + 1 <= limit
    return len(profile) < limit + gap  # the line is only the number


def _questions(mask: np.ndarray, blocks: list[Block], margin: int, line_h: float) -> list[tuple[int, int, int, int]]:
    tol = MARGIN_TOL_LINES * line_h
    questions: list[list[int]] = []
    current: list[int] | None = None
    prev: Block | None = None
    for line in _lines(blocks):
        starts = (
            abs(line.x0 - margin) <= tol
            and line.y1 - line.y0 >= line_h / 2  # not the thin end of a rule
            and _numbered(mask, line, line_h)
            and (prev is None or line.y0 - prev.y1 >= START_GAP_LINES * line_h or prev.x0 > margin + tol)
        )
        if starts:
            current = [line.x0, line.y0, line.x1, line.y1]
            questions.append(current)
        elif current is None or line.y0 - current[3] > JOIN_GAP_LINES * line_h:
            current = None  # an unnumbered line far from any question: header text, page number, stray mark
        elif line.x0 < current[2]:
            current[:] = [min(current[0], line.x0), current[1], max(current[2], line.x1), max(current[3], line.y1)]
        # else: a mark right of everything in the question (dust, a margin note) is not part of it
        prev = line
    return [(q[0], q[1], q[2], q[3]) for q in questions]
