"""Exam-page layout analysis: OpenCV for columns and text lines, the PP-OCR recogniser for question numbers.

Guarantees: each question's box is the tight box of its ink (number, text, choices, figures, tables, answer box)
in page pixels, [x0, y0, x1, y1] with x1/y1 exclusive, in reading order (the left column top to bottom, then the
right one). Content above a full-width header rule (one with a header's few lines above it), section headings
(`[1~5] ...`), text above a column's first question, narrow centred page numbers at the foot and long rules are
never part of a question. Every length is relative to the page width or the measured text-line height, so any dpi
works.

A question starts at a line that begins at its column's left margin with a printed label the recogniser reads
(`1.`, `2)`, `문 3.`, `Q4.`, `[5]`, a boxed or circled number; `textlines.recognise` on the line's first word, or
on the inside of a drawn box/circle, the box's sides painted out; a frame the text runs into is found from the
vertical stroke that closes it). The labels kept are one family whose numbers increase down the reading order
(`_chain`): choice markers that restart at ① and stray reads drop out. A gap in the sequence is filled from the
unread margin lines with the widest blank gap above; after the last number read, unread margin lines with a
label-wide first word after a label-like gap continue it. The margin is the line leaving the fewest line starts left
of it (`_margin`), so a few labels beside many indented lines set it. A page with no number read at all is split at
wide blank gaps, with no numbers. Every other line joins the question above it in its column unless more than
`JOIN_GAP_LINES` line heights below it. A two-column reading is kept only when both columns hold question numbers,
so a sparse one-column page is not split.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ai_worker.jobs.deskew import MIN_SKEW_DEG, estimate_skew, map_box, straighten
from ai_worker.jobs.imaging import INK_MIN_CONTRAST, ink_mask, join_marks, remove_specks, weighted_median

REFERENCE_WIDTH = 1240  # A4 at 150 dpi: the unit every pixel constant below is written in
BILEVEL_SHARE = 0.98  # a page whose pixels are this much at its darkest or lightest level is a black-and-white scan
BILEVEL_JOIN = 3  # ... whose ink is closed over this many reference pixels (the specks of a broken stroke join)
SOFTEN_LINES = 0.025  # ... and read through a blur of this many line heights (the recogniser reads grey text)
BILEVEL_CLUSTER = 9  # ... and its specks kept where they crowd a window this many reference pixels square ...
BILEVEL_CLUSTER_SHARE = 0.04  # ... at least this share of it ink (a thin circle or stroke the threshold dotted)
READ_JOIN_PX = 2  # ... and a line left unread is read again with its ink's one-pixel breaks closed
FINE_SPECK_AREA = 3  # ... but a full stop at the end of a question label is not
SPECK_AREA = 12  # components smaller than this (reference pixels squared: a 3x4 blot) are dust
DOT_LINES = 0.5  # blocks lower than half a line height are dots and dust (or a row of them) ...
RULE_LINES = 2.0  # ... unless they are at least two line heights long: an answer blank, a dash
STACK_GAP_LINES = 0.25  # ... or pieces of one glyph at most this far apart that stack into half a line or more ...
STACK_MAX_LINES = 1.5  # ... and at most this many lines high
SLIVER_LINES = 0.25  # blocks this narrow (line heights) are pieces of a broken vertical rule, not words
WORD_GAP = 0.012  # letters closer than this fraction of the page width join one word block
H_RULE_MIN = 0.6  # a horizontal rule spans at least this fraction of the page width
V_RULE_MIN = 0.3  # a vertical rule (column separator) spans at least this fraction of the page height
RULE_MIN_CONTRAST = 25  # hairline rules are found at half the usual ink contrast
INK_CONTRAST_SHARE = 0.5  # ink is at least half as dark below the paper as the page's darkest ink ...
INK_DARK_PERCENTILE = 0.3  # ... (this percentile of the page's grey levels: stroke cores, on any page with text)
MIN_INK_CONTRAST = 20  # ... but never under this many grey levels (scan noise); a pale copy's thin strokes stay ink
RULE_WINDOW_FRACTION = 80  # vertical rules are judged over windows 1/80 of the page width tall (15 px at 150 dpi)
FOLIO_ZONE = 0.08  # a narrow line centred in the bottom 8 % of the page is a page number ...
FOLIO_WIDTH = 0.15  # ... when narrower than 15 % of the page width and centred within that
HEADER_ZONE = 0.3  # a full-width rule in the top 30 % of the page closes the header ...
HEADER_MAX_BANDS = 5  # ... when at most this many bands of ink (text lines, a title box) lie above it ...
HEADER_RULE_SHARE = 0.9  # ... and it is this long at least relative to the longest rule there (a table's is shorter)
FOOTER_ZONE = 0.85  # a full-width rule below 85 % of the page height opens the footer
GUTTER_MIN = 0.025  # a column gutter is wider than 2.5 % of the page width (two word gaps) ...
GUTTER_ZONE = (0.25, 0.75)  # ... and lies in the middle half of the page
GUTTER_CROSSINGS = 2  # line heights of ink that may cross a gutter (a title, a page number)
COLUMN_MIN_SHARE = 0.05  # each column holds at least 5 % of the body's ink, or the page has one column
COLUMN_TOP_LINES = 3  # the two columns' first lines are at most 3 line heights apart ...
HEAD_ZONE = 0.15  # ... unless both start in the top 15 % of the body (under a header with no rule)
MARGIN_TOL_LINES = 0.6  # a line starts at the margin when within 0.6 line heights of it
MARGIN_BAND_LINES = 2.0  # the margin runs through line starts within this many line heights of the leftmost
MAX_MARGIN_SLOPE = 0.008  # about 0.45 degrees: the residual skew of a levelled page; steeper is a ragged column
START_GAP_LINES = 0.6  # a blank gap of at least this many line heights may precede a new question
PREAMBLE_GAP_RATIO = 1.5  # a margin line this much closer to the start below than to the text above is a preamble
LABEL_WIDTH_RANGE = (0.75, 1.33)  # an unread first word this wide relative to the labels read may be one
LABEL_GAP_SHARE = 0.8  # ... after a blank gap at least this share of the median one above a label read
UNREAD_GAP_RATIO = 2.0  # with no number read, a question follows a blank gap this many times the median spacing
RULE_BELOW_LINES = 0.8  # a long rule this many line heights under a question's last line is its table's bottom
JOIN_GAP_LINES = 4.0  # a non-numbered line further below its question than this is not part of it
MIN_PAGE_SIDE = 200  # px: a smaller image cannot hold a legible exam page
MIN_LINE_PX = 9  # text lines lower than this many pixels are too coarse to read (a page shrunk to a thumbnail)
PAPER_BAND = 40  # grey levels below the paper tone (90th percentile) that still count as blank paper
MIN_PAPER_SHARE = 0.6  # a printed page is mostly blank paper; a photograph is not
MAX_INK_SHARE = 0.3  # nor is it mostly ink
SPACE_LINES = 0.18  # a blank run this many line heights wide ends a word (a label such as "12." or "[5]")
LABEL_MAX_LINES = 4.0  # a question label or a heading's range is at most this many line heights wide ("[11~15]")
PREFIX_MAX_LINES = 1.1  # a first word narrower than this may be a prefix ("문", "Q") and is read with the next one
MIN_READ_CONFIDENCE = 0.5  # the recogniser's mean character confidence below which a read is ignored
REPEAT_PENALTY = 0.5  # a label family loses this much per number it repeats on the page
BARE_MIN_CHAIN = 3  # bare numbers read where no label is ("1", "2", "3") number the questions when this many in order
CIRCLED_WEIGHT = 0.5  # circled numbers are usually choice markers: a chain of them counts half
SKIP_PENALTY = 0.6  # a chain of question numbers loses this much per number it skips
GUESSED_WEIGHT = 0.5  # an inferred mark ("11" taken for "1)") counts this much in a chain: a clean read of the same
# number elsewhere (the first line of the next column) wins over a body line that starts with digits
WIDE_LABEL_LINES = 3.0  # the window read from the line start when no word gap follows its label, or again when the
# first word stopped short of a label ("Q1" of "Q10.")
AGAIN_LABEL_LINES = 6.0  # ... and a heading's range that still stops short ("[2" of "※ [2~3]"), or a bracket read
NARROW_LABEL_LINES = 1.6  # an unread first word this narrow may be a question number ("1.", "12)")
FRAME_SIDE_COVER = 0.7  # a number is framed when three sides of its frame are strokes along this much of their middle
FRAME_PAD_LINES = 0.25  # ... the frame reaching at most this far above and below its text line
FRAME_BREAK_LINES = 0.12  # ... once breaks this many line heights wide are closed (a hairline on a bilevel scan)
FRAME_MIN_LINES = 0.6  # a frame around a number is this many line heights wide at least ...
FRAME_MAX_LINES = 2.4  # ... and at most this many
FRAME_CANDIDATES = 4  # vertical strokes tried as a frame's right side when text runs into it
FRAME_SPECK_AREA = 0.01  # ink smaller than this many square line heights beside a frame is dust
BOX_SIDE_FULL = 0.85  # a frame is a box when its sides cover this much of its bounding box on average, else a circle
ENCLOSED_MAX_FILL = 0.8  # a box or circle around a number: its inside is at most this much ink (bold digits fill ~0.55)


@dataclass(frozen=True)
class Block:
    """A box of ink: a word or a run of words, a figure, or a whole text line. x1/y1 exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int


@dataclass(frozen=True)
class Question:
    box: tuple[int, int, int, int]  # tight box of the question's ink, page pixels, x1/y1 exclusive
    number: int | None  # the printed number; None when the start was found but nothing legible read there
    label: str | None  # the label as printed: "3.", "2)", "문 3.", "Q4.", "[5]", "7" (boxed), "①"
    column: int  # 0-based column index


@dataclass(frozen=True)
class Layout:
    questions: list[Question]
    columns: int
    skew_deg: float  # the page's rotation that was undone before the analysis (counter-clockwise positive)
    reason: str | None = None  # why nothing was looked for: the input is not an exam page


def analyse(gray: np.ndarray) -> Layout:
    """Find the questions of one page, in reading order.

    A skewed page is levelled first; each question's box is then the tight box of its ink on the page as given.
    """
    height, width = gray.shape
    if min(height, width) < MIN_PAGE_SIDE:
        return Layout([], 1, 0.0, f"not a page: the image is {width}x{height} px, too small to hold an exam page")
    bilevel = _bilevel(gray)
    contrast = _ink_contrast(gray)
    mask = _ink(gray, bilevel, contrast)
    reason = _not_a_page(gray, mask)
    if reason:
        return Layout([], 1, 0.0, reason)
    skew = estimate_skew(mask)
    if abs(skew) < MIN_SKEW_DEG:
        found, columns, reason = _analyse_level(gray, mask, bilevel, contrast)
        return Layout(found, columns, 0.0, reason)
    level, back = straighten(gray, skew)
    found, columns, reason = _analyse_level(level, _ink(level, bilevel, contrast), bilevel, contrast)
    mapped = [replace(q, box=_tight_on_page(q.box, back, mask)) for q in found]
    return Layout(mapped, columns, round(-skew, 2), reason)


def _not_a_page(gray: np.ndarray, mask: np.ndarray) -> str | None:
    """A reason when the image is not a page of print: most of an exam page is blank paper."""
    step = max(1, min(gray.shape) // 400)
    sample = gray[::step, ::step]
    paper = float(np.percentile(sample, 90))
    blank = float(np.mean(sample >= paper - PAPER_BAND))
    if blank < MIN_PAPER_SHARE:
        return f"not a page: only {blank:.0%} of the image is blank paper (a photograph, not a printed page)"
    if float(mask.mean()) > MAX_INK_SHARE:
        return f"not a page: {float(mask.mean()):.0%} of the image is ink"
    return None


def _tight_on_page(box: tuple[int, int, int, int], back: np.ndarray, mask: np.ndarray) -> tuple[int, int, int, int]:
    """The tight box of the page's ink inside a levelled box mapped back onto the page (a rotated rectangle)."""
    height, width = mask.shape
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], np.float64) @ back.T
    outer = map_box(box, back, width, height)
    region = np.zeros((outer[3] - outer[1], outer[2] - outer[0]), np.uint8)
    if region.size == 0:
        return outer
    cv2.fillConvexPoly(region, np.round(corners - [outer[0], outer[1]]).astype(np.int32), 1)
    ys, xs = np.nonzero(region & mask[outer[1] : outer[3], outer[0] : outer[2]])
    if len(xs) == 0:
        return outer
    return (
        outer[0] + int(xs.min()),
        outer[1] + int(ys.min()),
        outer[0] + int(xs.max()) + 1,
        outer[1] + int(ys.max()) + 1,
    )


def _ink_contrast(gray: np.ndarray) -> int:
    """How much darker than the local paper a pixel must be to be ink: `INK_MIN_CONTRAST` on a page of black print,
    less on a pale copy (grey ink on grey paper, where the thin strokes of a label fall under the usual floor)."""
    step = max(1, min(gray.shape) // 400)
    sample = gray[::step, ::step]
    span = float(np.percentile(sample, 90) - np.percentile(sample, INK_DARK_PERCENTILE))
    return int(min(INK_MIN_CONTRAST, max(MIN_INK_CONTRAST, INK_CONTRAST_SHARE * span)))


def _ink(gray: np.ndarray, bilevel: bool = False, contrast: int = INK_MIN_CONTRAST) -> np.ndarray:
    """The page's ink without dust; on a black-and-white scan, strokes broken into specks are first joined up."""
    unit = gray.shape[1] / REFERENCE_WIDTH
    ink = ink_mask(gray, contrast)
    if bilevel:
        size = max(3, round(BILEVEL_JOIN * unit) | 1)  # odd: OpenCV shifts a closing by an even kernel a pixel
        ink = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((size, size), np.uint8))
        # A thin stroke (a question number's circle, a light digit) that the threshold left as a trail of specks is
        # no dust: its specks crowd together, where dust lies alone.
        window = max(3, round(BILEVEL_CLUSTER * unit) | 1)
        crowded = cv2.blur(ink.astype(np.float32), (window, window)) >= BILEVEL_CLUSTER_SHARE
        return remove_specks(ink, max(2, round(SPECK_AREA * unit * unit))) | (ink & crowded.astype(np.uint8))
    return remove_specks(ink, max(2, round(SPECK_AREA * unit * unit)))


def _bilevel(gray: np.ndarray) -> bool:
    """Whether the page holds only two grey levels (a black-and-white scan)."""
    step = max(1, min(gray.shape) // 400)
    sample = gray[::step, ::step]
    low, high = int(sample.min()), int(sample.max())
    return bool(np.mean((sample == low) | (sample == high)) >= BILEVEL_SHARE)


def _analyse_level(
    gray: np.ndarray, mask: np.ndarray, bilevel: bool = False, contrast: int = INK_MIN_CONTRAST
) -> tuple[list[Question], int, str | None]:
    """(questions, column count, reason when nothing could be looked for) of a level page; `contrast`: the ink's
    least contrast (`_ink_contrast`)."""
    width = gray.shape[1]
    top, bottom, rules = _strip_rules(mask, ink_mask(gray, RULE_MIN_CONTRAST * contrast // INK_MIN_CONTRAST))
    body = mask[top:bottom]
    word_gap = max(3, round(WORD_GAP * width))
    blocks = _blocks(body, word_gap)
    if not blocks:
        return [], 1, None
    line_h = _line_height(blocks)
    if line_h < MIN_LINE_PX:
        return (
            [],
            1,
            f"not a page: text lines are {line_h:.0f} px high, too low a resolution to read (min {MIN_LINE_PX})",
        )
    # Dust that survived the speck filter (JPEG smears it) would shift a line's start off the margin.
    # But a glyph a black-and-white scan broke into stacked pieces (the ㅁ, ㅜ and ㄴ of 문) is no dust: pieces that
    # stack into a line's height are one block.
    tall = [b for b in blocks if b.y1 - b.y0 >= DOT_LINES * line_h or b.x1 - b.x0 >= RULE_LINES * line_h]
    blocks = tall + _stacked([b for b in blocks if b not in set(tall)], line_h)
    # So would the dashes of a hairline column rule that a black-and-white scan broke up (too short for a rule): no
    # word is a sliver that thin.
    blocks = [b for b in blocks if b.x1 - b.x0 > SLIVER_LINES * line_h]
    # Labels are cut at blank runs in a mask that keeps the small marks the speck filter drops (the "." of "1.").
    unit = width / REFERENCE_WIDTH
    raw = ink_mask(gray[top:bottom], contrast)
    fine = remove_specks(raw, max(2, round(FINE_SPECK_AREA * unit * unit)))
    body_gray = gray[top:bottom]
    fallback = None
    if bilevel:
        # The recogniser reads grey text: a black-and-white scan's broken, jagged strokes are softened first.
        soften = max(0.5, SOFTEN_LINES * line_h)
        # A label the threshold broke into specks (a thin circle, a light digit) reads as nothing: the lines left
        # unread are read again with the specks' pixel gaps closed.
        joined = cv2.morphologyEx(raw, cv2.MORPH_CLOSE, np.ones((READ_JOIN_PX, READ_JOIN_PX), np.uint8))
        healed = np.where(joined > 0, 0, 255).astype(np.uint8)
        fallback = _Reader(cv2.GaussianBlur(healed, (0, 0), soften), fine, line_h, raw)
        body_gray = cv2.GaussianBlur(body_gray, (0, 0), soften)
    reader = _Reader(body_gray, fine, line_h, raw, fallback)
    gutter = _gutter(_blocks(body, word_gap * 2), width, line_h)
    foot = (1 - FOLIO_ZONE) * gray.shape[0] - top
    found: list[Question] = []
    columns = 1
    if gutter is not None:
        sides = [[b for b in blocks if _left_of(b, gutter)], [b for b in blocks if not _left_of(b, gutter)]]
        found = _questions(reader, sides, line_h, width, foot, gutter)
        columns = 2
        if len({q.column for q in found}) < 2:
            # Numbers read in one column only: a sparse one-column page split by a false gutter, or a column whose
            # numbers were missed; the reading that finds more questions wins (one column on a tie).
            whole = _questions(reader, [blocks], line_h, width, foot)
            if len(whole) >= len(found):
                found, columns = whole, 1
    else:
        found = _questions(reader, [blocks], line_h, width, foot)
    found = [replace(q, box=(q.box[0], q.box[1] + top, q.box[2], q.box[3] + top)) for q in found]
    return [_with_rules(q, rules, line_h) for q in found], columns, None


def _with_rules(question: Question, rules: list[Block], line_h: float) -> Question:
    """The question's box grown over the long rules erased inside it (a table's rules reach past its cells' text):
    those starting at or right of its left edge, from its top to just under its last line."""
    x0, y0, x1, y1 = question.box
    for rule in rules:
        middle = (rule.y0 + rule.y1) / 2
        if rule.x0 >= x0 - line_h and y0 - line_h / 2 <= middle <= y1 + RULE_BELOW_LINES * line_h:
            x0, y0, x1, y1 = min(x0, rule.x0), min(y0, rule.y0), max(x1, rule.x1), max(y1, rule.y1)
    return replace(question, box=(x0, y0, x1, y1))


def _strip_rules(mask: np.ndarray, faint: np.ndarray) -> tuple[int, int, list[Block]]:
    """Erase long rules from `mask` in place; return the body's row range (below the header, above the footer) and
    the horizontal rules inside it (page rows).

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
    # A hairline rule that a black-and-white scan broke into dashes: gaps shorter than the window are closed.
    dense = cv2.morphologyEx(
        (cv2.blur(faint.astype(np.float32), (1, window)) >= 0.5).astype(np.uint8),
        cv2.MORPH_CLOSE,
        cv2.getStructuringElement(cv2.MORPH_RECT, (1, window)),
    )
    vertical = cv2.morphologyEx(
        cv2.dilate(dense, drift),
        cv2.MORPH_OPEN,
        cv2.getStructuringElement(cv2.MORPH_RECT, (1, int(height * V_RULE_MIN))),
    )
    rules = cv2.dilate(cv2.bitwise_or(horizontal, vertical), np.ones((3, 3), np.uint8))
    mask[rules > 0] = 0
    rows = np.flatnonzero(horizontal.any(axis=1))
    # The header closes at the first full-width rule near the top with no more than a header's few lines above it
    # (a table's rule in the first question of a page with no header closes nothing) and about as long as the longest
    # rule there; the rules of a table in the first question under a header come below it, and are shorter or as
    # long. A box around the title closes at its lower side.
    top = 0
    inked = (mask.sum(axis=1) >= max(3, width // 200)).astype(np.int8)  # rows of text, not of stray dust
    near = rows[rows < height * HEADER_ZONE]
    lengths = np.count_nonzero(horizontal[near], axis=1)
    rules_at: list[list[int]] = []  # the rows of each candidate rule, top to bottom
    for r, n in zip(near.tolist(), lengths.tolist(), strict=True):
        if n < HEADER_RULE_SHARE * lengths.max():
            continue
        if int(np.count_nonzero(np.diff(inked[:r], prepend=0) == 1)) > HEADER_MAX_BANDS:
            break
        if rules_at and r - rules_at[-1][-1] <= 2:
            rules_at[-1].append(r)
        else:
            rules_at.append([r])
    if rules_at:
        k = 0
        while k + 1 < len(rules_at) and _box_sides(mask, horizontal, rules_at[k][-1], rules_at[k + 1][0]):
            k += 1
        top = rules_at[k][-1] + 2
    bottom = int(rows[rows > height * FOOTER_ZONE].min()) - 1 if (rows > height * FOOTER_ZONE).any() else height
    count, _, stats, _ = cv2.connectedComponentsWithStats(horizontal, connectivity=8)
    inside = [Block(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _ in stats[1:count]]
    return top, bottom, [b for b in inside if b.y0 >= top and b.y1 <= bottom]


def _box_sides(mask: np.ndarray, horizontal: np.ndarray, upper: int, lower: int) -> bool:
    """Whether the rules on rows `upper` and `lower` are the top and bottom of one box: ink joins their ends."""
    xs = np.flatnonzero(horizontal[max(0, upper - 3) : upper + 4].any(axis=0))  # the rule's rows, drift and all
    if len(xs) == 0 or lower - upper < 8:
        return False
    inside = slice(upper + 4, lower - 3)
    return all(
        float(mask[inside, max(0, x - 4) : x + 5].any(axis=1).mean()) >= FRAME_SIDE_COVER
        for x in (int(xs[0]), int(xs[-1]))
    )


def _blocks(mask: np.ndarray, word_gap: int) -> list[Block]:
    joined = join_marks(mask, word_gap, 3)
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    return [Block(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _ in stats[1:count]]


def _stacked(pieces: list[Block], line_h: float) -> list[Block]:
    """Small blocks that stack into one glyph: overlapping across, at most `STACK_GAP_LINES` apart down, together
    between half a line and a line and a half high; pieces narrower than `SLIVER_LINES` (dust) take no part."""
    gap = STACK_GAP_LINES * line_h
    merged: list[Block] = []
    for b in sorted((b for b in pieces if b.x1 - b.x0 > SLIVER_LINES * line_h), key=lambda b: b.y0):
        for k in range(len(merged) - 1, -1, -1):
            m = merged[k]
            if m.y1 < b.y0 - 2 * line_h:
                break  # sorted by top: the merged blocks further up end too far above
            if min(m.x1, b.x1) > max(m.x0, b.x0) and b.y0 - m.y1 <= gap:
                merged[k] = Block(min(m.x0, b.x0), min(m.y0, b.y0), max(m.x1, b.x1), max(m.y1, b.y1))
                break
        else:
            merged.append(b)
    return [m for m in merged if DOT_LINES * line_h <= m.y1 - m.y0 <= STACK_MAX_LINES * line_h]


def _line_height(blocks: list[Block]) -> float:
    """The width-weighted median block height: most of a page's width is words on text lines (dust has none)."""
    if not blocks:
        return 1.0
    heights = np.array([b.y1 - b.y0 for b in blocks], np.float64)
    widths = np.array([b.x1 - b.x0 for b in blocks], np.float64)
    return max(1.0, weighted_median(heights, widths))


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
    # Columns start together under the header; the far half of wide rows (spread-out choices) does not. A header
    # with no rule under it (a title across the gutter, a name field on one side) may start one side early: the later
    # side must then still start near the top (the two-column reading must also find numbers in both columns).
    top_left, top_right = min(b.y0 for b in left), min(b.y0 for b in right)
    later = max(top_left, top_right) - min(b.y0 for b in blocks)
    if abs(top_left - top_right) > COLUMN_TOP_LINES * line_h and later > HEAD_ZONE * (max(b.y1 for b in blocks)):
        return None
    return centre


def _runs(flags: np.ndarray, lo: int, hi: int) -> list[tuple[int, int]]:
    """The runs [start, end) of True in flags[lo:hi]."""
    padded = np.concatenate(([False], flags[lo:hi], [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(lo + int(a), lo + int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _left_of(block: Block, gutter: int) -> bool:
    return block.x0 + block.x1 < 2 * gutter


def _margin(blocks: list[Block], line_h: float, lo: int = 0) -> tuple[float, float]:
    """A column's left margin as a line x = a + b * y (a scan levelled to within a few tenths of a degree still
    drifts over a page): (a, b).

    The margin is the line, no steeper than `MAX_MARGIN_SLOPE`, that leaves the fewest line starts left of it and
    then has the most line starts on it: question labels stand leftmost even when few (a hanging indent puts most
    lines further right, and a one-line question may stand alone). It runs through one start (level) or two. Blocks
    smaller than half a line (dust, dots) do not count, nor lines that start left of `lo` (the gutter of a right
    column, which a line spanning both columns crosses), nor a narrow line far from any other.
    """
    lines = [line for line in _lines([b for b in blocks if b.y1 - b.y0 >= line_h / 2]) if line.x0 >= lo]
    # A narrow line far from any other (a page number, a stray mark) does not count either.
    reach = JOIN_GAP_LINES * line_h
    gaps = [b.y0 - a.y1 for a, b in itertools.pairwise(lines)]
    lines = [
        line
        for line, up, down in zip(lines, [math.inf, *gaps], [*gaps, math.inf], strict=True)
        if min(up, down) <= reach or line.x1 - line.x0 > LABEL_MAX_LINES * line_h
    ]
    if not lines:
        return float(lo), 0.0
    tol = MARGIN_TOL_LINES * line_h
    xs = np.array([line.x0 for line in lines], np.float64)
    ys = np.array([(line.y0 + line.y1) / 2 for line in lines])
    # Hypotheses through the starts near the leftmost: level through one, or through two.
    near_left = np.flatnonzero(xs <= xs.min() + MARGIN_BAND_LINES * line_h)
    i, j = np.meshgrid(near_left, near_left, indexing="ij")
    pair = (i < j) & (np.abs(ys[j] - ys[i]) > 0)
    i, j = i[pair], j[pair]
    slope = (xs[j] - xs[i]) / (ys[j] - ys[i])
    keep = np.abs(slope) <= MAX_MARGIN_SLOPE
    b = np.concatenate([np.zeros(len(near_left)), slope[keep]])
    a = np.concatenate([xs[near_left], xs[i[keep]] - slope[keep] * ys[i[keep]]])
    residual = xs[None, :] - (a[:, None] + b[:, None] * ys[None, :])
    left_of = (residual < -tol).sum(axis=1)
    on = (np.abs(residual) <= tol).sum(axis=1)
    spread = np.where(np.abs(residual) <= tol, np.abs(residual), 0.0).sum(axis=1)
    best = np.lexsort((np.abs(b), spread, -on, left_of))[0]
    return float(a[best]), float(b[best])


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


@dataclass(frozen=True)
class _Read:
    """What the leading token of a line at the margin says."""

    kind: str  # "start" (a question number) or "heading" (a range such as [1~5]: an instruction, not a question)
    family: str  # label family: "num" (1. 2) 문 3.), "q", "bracket", "boxed", "circled"
    number: int
    label: str
    hangul_prefix: bool = False  # an unreadable glyph before the number: "문" (the recogniser has no Hangul)
    guessed: bool = False  # the mark was inferred ("11" taken for "1)"): alone, such a read is no evidence


CIRCLED = {chr(0x2460 + i): i + 1 for i in range(20)} | {chr(0x3251 + i): 21 + i for i in range(15)}
_HEADING = re.compile(r"^\S{0,2}?\s*[\[(<{]\s*\d{1,3}\s*[~∼\-–—〜～]")  # [1~5], ※ [3-4], (6~7): a range
_NUM = re.compile(r"^([1-9]\d{0,2})\s*([.)．,])")
_Q = re.compile(r"^[Qq]\s*\.?\s*([1-9]\d{0,2})\s*([.):])")
_BRACKET = re.compile(r"^[\[({]\s*([1-9]\d{0,2})\s*[\])]")
# 문 (or a font's missing-glyph box in its place) read as 1-2 glyphs, or as a 0: no question number starts with 0
_PREFIXED = re.compile(r"^([^\d\s\[\](){}<>Qq①-⑳]{1,2}|0)\s*([1-9]\d{0,2})\s*([.)．,])")
_INCOMPLETE = re.compile(r"^(\S{0,2}\s*[\[(]?\s*\d{1,3}|[^\s\d①-⑳]{1,2})$")  # digits without their mark, a lone glyph
_DIGIT_LOOKALIKES = str.maketrans({"I": "1", "l": "1", "|": "1", "O": "0", "o": "0"})
_PAREN_LOST = re.compile(r"^([1-9]\d?)\s?[1lIi|!jJ]$")  # "1)" read "11", "4)" read "4i"
_BARE = re.compile(r"^[\[|(]?\s*([1-9]\d{0,2})\s*[\]|]?$")  # a number with no mark ("4]": a box's side left)
_BOXED = re.compile(r"^[\[|(]?\s*([1-9]\d{0,2})\s*([.)]?)\s*[\]|]?$")


def parse_label(text: str, frame: str = "") -> _Read | None:
    """The question label (or section heading) a line's leading text starts with, if any.

    `frame` is "box" or "circle" when `text` was read inside a drawn box or circle (a boxed or circled number).
    """
    t = text.strip()
    if frame:
        t = t.translate(_DIGIT_LOOKALIKES)
    if not t:
        return None
    if _HEADING.match(t):
        return _Read("heading", "heading", 0, t)
    if t[0] in CIRCLED:
        return _Read("start", "circled", CIRCLED[t[0]], t[0])
    if frame:
        m = _BOXED.match(t)
        if m and frame == "circle" and 1 <= int(m.group(1)) <= len(CIRCLED):
            number = int(m.group(1))
            return _Read("start", "circled", number, next(c for c, n in CIRCLED.items() if n == number))
        if m:
            return _Read("start", "boxed", int(m.group(1)), m.group(1) + m.group(2))
    m = _NUM.match(t)
    if m:
        mark = "." if m.group(2) in ".．," else ")"
        return _Read("start", "num", int(m.group(1)), m.group(1) + mark)
    m = _Q.match(t)
    if m:
        return _Read("start", "q", int(m.group(1)), f"Q{m.group(1)}{m.group(2)}")
    m = _BRACKET.match(t)
    if m and t[0] in "[{":
        return _Read("start", "bracket", int(m.group(1)), f"[{m.group(1)}]")
    m = _PREFIXED.match(t)
    if m:
        mark = "." if m.group(3) in ".．," else ")"
        return _Read("start", "num", int(m.group(2)), f"문 {m.group(2)}{mark}", hangul_prefix=True)
    m = _PAREN_LOST.match(t)
    if m:
        # A label needs its mark: digits ending in a thin stroke ("11", "4i", "9!") are a number and its ")" broken
        # up by a black-and-white scan.
        return _Read("start", "num", int(m.group(1)), f"{m.group(1)})", guessed=True)
    return None


class _Reader:
    """Reads the leading token of text lines with the PP-OCR recogniser (`textlines`)."""

    def __init__(
        self,
        gray: np.ndarray,
        mask: np.ndarray,
        line_h: float,
        raw: np.ndarray | None = None,
        fallback: _Reader | None = None,
    ) -> None:
        # raw: the ink before dust removal, where a hairline frame broken into dots by a scan still shows
        self.gray, self.mask, self.line_h, self.fallback = gray, mask, line_h, fallback
        self.raw = mask if raw is None else raw
        self._cache: dict[tuple[int, int, int, int], _Read | None] = {}
        self.bare: dict[tuple[int, int, int], int] = {}  # (x0, y0, y1) of a line: the bare number its first word reads

    def _token_end(self, line: Block, x: int, gap_lines: float) -> int | None:
        """The x where the run of ink starting at or after `x` ends at a blank gap, within LABEL_MAX_LINES."""
        limit = min(line.x1, line.x0 + round(LABEL_MAX_LINES * self.line_h))
        profile: np.ndarray = np.asarray(self.mask[line.y0 : line.y1, x:limit].any(axis=0))
        gap = max(2, round(gap_lines * self.line_h))
        inked = np.flatnonzero(profile)
        if len(inked) == 0:
            return None
        blank = 0
        for i in range(int(inked[0]), len(profile)):
            blank = 0 if profile[i] else blank + 1
            if blank >= gap:
                return x + i - blank + 1
        return x + len(profile) if limit == line.x1 else None

    def token_end(self, line: Block) -> int | None:
        """Where the line's first word ends."""
        return self._token_end(line, line.x0, SPACE_LINES)

    def _window(self, line: Block, lines: float) -> np.ndarray:
        """A crop of the line from its start, `lines` line heights wide."""
        return self._crop(line, line.x0, min(line.x1, line.x0 + round(lines * self.line_h)))

    def _crop(self, line: Block, x0: int, x1: int) -> np.ndarray:
        pad = max(2, round(0.2 * self.line_h))
        return self.gray[max(0, line.y0 - pad) : line.y1 + pad, max(0, x0 - pad) : x1 + pad]

    def _frame_inside(self, line: Block, end: int | None) -> tuple[int, int, int, int, bool] | None:
        """The inside of a box or circle drawn around the line's first token (`_box_inside`), ending at the first word
        gap (`end`) or, when the text runs into the frame, at a vertical stroke that closes it."""
        if end is not None and end - line.x0 <= FRAME_MAX_LINES * self.line_h:
            return self._box_inside(line, end)
        # Candidate right sides: columns a frame's height tall that are mostly ink, between a frame's least and most
        # width from the line start.
        pad = round(FRAME_PAD_LINES * self.line_h)
        lo = line.x0 + round(FRAME_MIN_LINES * self.line_h)
        hi = min(line.x1, line.x0 + round(FRAME_MAX_LINES * self.line_h))
        if hi <= lo:
            return None
        band = self.raw[max(0, line.y0 - pad) : line.y1 + pad, lo:hi]
        size = max(3, round(FRAME_BREAK_LINES * self.line_h) | 1)
        closed = cv2.morphologyEx(band, cv2.MORPH_CLOSE, np.ones((size, 1), np.uint8))
        cover = closed.sum(axis=0) / max(1, line.y1 - line.y0)
        strokes = np.flatnonzero(cover >= FRAME_SIDE_COVER)
        # The last column of each stroke run is a frame's right edge candidate.
        ends = [int(x) for k, x in enumerate(strokes) if k + 1 == len(strokes) or strokes[k + 1] != x + 1]
        for x in ends[:FRAME_CANDIDATES]:
            inside = self._box_inside(line, lo + x + 1)
            if inside is not None:
                return inside
        return None

    def _inside_crop(self, inside: tuple[int, int, int, int, bool]) -> np.ndarray:
        """A grey crop of what a box holds with its sides painted out (a side left in the crop reads as a digit: "0",
        "[1]", "1l"), or the inside of a circle."""
        x0, y0, x1, y1, circle = inside
        pad = max(2, round(0.15 * self.line_h))
        if circle:
            return self.gray[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad]
        inset = max(2, round(0.12 * min(x1 - x0, y1 - y0)))
        ox0, oy0, ox1, oy1 = x0 - inset, y0 - inset, x1 + inset, y1 + inset  # the frame's outer box
        ink = self.raw[oy0:oy1, ox0:ox1].astype(bool)
        h, w = ink.shape
        if h < 4 or w < 4:
            return self.gray[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad]

        def depth(rows: np.ndarray) -> float:
            """Median length of the ink run from the edge inward, over the middle half of a side."""
            runs = np.argmin(rows, axis=1)  # the first blank pixel from the edge
            middle = runs[len(runs) // 4 : len(runs) - len(runs) // 4]
            return float(np.median(middle)) if len(middle) else 0.0

        sides = (depth(ink), depth(ink[:, ::-1]), depth(ink.T), depth(ink.T[:, ::-1]))
        t = min(max(1, round(max(sides)) + 1), min(h, w) // 3)
        crop = self.gray[oy0:oy1, ox0:ox1].copy()
        paper = np.uint8(np.percentile(self.gray[max(0, oy0 - pad) : oy1 + pad, max(0, ox0 - pad) : ox1 + pad], 90))
        crop[:t, :] = crop[-t:, :] = paper
        crop[:, :t] = crop[:, -t:] = paper
        inner = ink.copy()
        inner[:t, :] = inner[-t:, :] = False
        inner[:, :t] = inner[:, -t:] = False
        inner = remove_specks(inner.astype(np.uint8), max(2, round(0.02 * self.line_h**2))).astype(bool)
        ys, xs = np.nonzero(inner)
        if len(xs) == 0:
            return self.gray[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad]
        body = crop[max(0, ys.min() - 1) : ys.max() + 2, max(0, xs.min() - 1) : xs.max() + 2]
        return cv2.copyMakeBorder(body, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=int(paper))

    def _box_inside(self, line: Block, x1: int) -> tuple[int, int, int, int, bool] | None:
        """The inside of a drawn box or circle around the token (a boxed or circled number), and whether it is a
        circle; None when the token is not enclosed.

        Each side of a frame is a stroke along its middle half: most columns (rows) there have ink in the band along
        that side once small breaks are closed. A thin frame on a black-and-white scan may lose most of one side, so
        three sides must be strokes and the fourth show some ink; the strokes of a digit ("2)", "[5]") leave gaps on
        two sides at least.
        """
        pad = round(FRAME_PAD_LINES * self.line_h)
        top, left = max(0, line.y0 - pad), max(0, line.x0 - pad)
        window = self.raw[top : line.y1 + pad, left : x1 + 1]
        # Scan dust beside a frame is no side of it; but a thin frame broken up by a black-and-white scan is specks
        # too: the window as it is when the frame is not found without them.
        found = self._frame_in(remove_specks(window, max(2, round(FRAME_SPECK_AREA * self.line_h**2))))
        if found is None:
            found = self._frame_in(window)
        if found is None:
            return None
        x0, y0, x1, y1, circle = found
        return left + x0, top + y0, left + x1, top + y1, circle

    def _frame_in(self, window: np.ndarray) -> tuple[int, int, int, int, bool] | None:
        """`_box_inside` on a window of ink: the inside of the frame in window pixels, and whether it is a circle."""
        ys, xs = np.nonzero(window)
        if len(xs) == 0:
            return None
        x, y, w, h = int(xs.min()), int(ys.min()), int(xs.max()) + 1 - int(xs.min()), int(ys.max()) + 1 - int(ys.min())
        if h < 0.7 * self.line_h or w < 0.6 * self.line_h or w > 2.2 * h or h > 2 * self.line_h:
            return None
        band = max(1, round(0.15 * min(w, h)))
        mid_rows, mid_cols = slice(h // 4, h - h // 4), slice(w // 4, w - w // 4)
        size = max(3, round(FRAME_BREAK_LINES * self.line_h) | 1)  # odd: an even kernel shifts the closing
        frame = cv2.morphologyEx(window[y : y + h, x : x + w], cv2.MORPH_CLOSE, np.ones((size, size), np.uint8))
        covered = sorted(
            (
                frame[mid_rows, :band].any(axis=1).mean(),
                frame[mid_rows, -band:].any(axis=1).mean(),
                frame[:band, mid_cols].any(axis=0).mean(),
                frame[-band:, mid_cols].any(axis=0).mean(),
            )
        )
        if covered[0] == 0 or covered[1] < FRAME_SIDE_COVER or frame[band:-band, band:-band].mean() > ENCLOSED_MAX_FILL:
            return None
        # A box's sides run the full length of its bounding box; a circle touches each side only around its middle
        # (a band a tenth deep holds about 60 % of the arc's width). Corners alone would not do: a black-and-white
        # scan rounds a box's corners off.
        edge = max(1, round(0.1 * min(w, h)))
        full = (
            frame[:edge, :].any(axis=0).mean(),
            frame[-edge:, :].any(axis=0).mean(),
            frame[:, :edge].any(axis=1).mean(),
            frame[:, -edge:].any(axis=1).mean(),
        )
        circle = bool(np.mean(full) < BOX_SIDE_FULL)
        inset = max(2, round((0.2 if circle else 0.12) * min(w, h)))
        return x + inset, y + inset, x + w - inset, y + h - inset, circle

    def read(self, lines: list[Block]) -> list[_Read | None]:
        """The label each line starts with (None: none read); lines read before (the other column reading) are not
        read again. Lines left unread are read again by the `fallback` reader, if any (a black-and-white scan's
        label with its broken strokes joined)."""
        reach = round(LABEL_MAX_LINES * self.line_h)
        keys = [(line.x0, line.y0, line.y1, min(line.x1, line.x0 + reach)) for line in lines]
        todo = [i for i, key in enumerate(keys) if key not in self._cache]
        for i, read in zip(todo, self._read([lines[i] for i in todo]), strict=True):
            self._cache[keys[i]] = read
        unread = [i for i in todo if self._cache[keys[i]] is None]
        if self.fallback is not None and unread:
            for i, read in zip(unread, self.fallback.read([lines[i] for i in unread]), strict=True):
                self._cache[keys[i]] = read
            for key, number in self.fallback.bare.items():
                self.bare.setdefault(key, number)
        return [self._cache[key] for key in keys]

    def _read(self, lines: list[Block]) -> list[_Read | None]:
        from ai_worker.jobs import textlines

        crops: list[np.ndarray] = []
        owners: list[tuple[int, str]] = []  # (line, "box"/"circle" when the token is enclosed, else "")
        first: dict[int, int] = {}  # where each line's first word ends
        for i, line in enumerate(lines):
            end = self._token_end(line, line.x0, SPACE_LINES)
            # A frame is looked for at the line start whatever the word gap: text set close to a boxed number runs
            # into the frame once a scan blurs the gap shut.
            inside = self._frame_inside(line, end)
            if inside is not None:
                crops.append(self._inside_crop(inside))
                owners.append((i, "circle" if inside[4] else "box"))
            if end is None or end - line.x0 > LABEL_MAX_LINES * self.line_h:
                # No word gap near the start (text set flush against its label): the line's start is read.
                window = min(line.x1, line.x0 + round(WIDE_LABEL_LINES * self.line_h))
                crops.append(self._crop(line, line.x0, window))
                owners.append((i, ""))
                continue
            first[i] = end
            if end - line.x0 < PREFIX_MAX_LINES * self.line_h:
                # A lone glyph ("문", "Q") may be a prefix: read on to the end of the next word.
                further = self._token_end(line, end, SPACE_LINES)
                if further is not None and further - line.x0 <= LABEL_MAX_LINES * self.line_h:
                    end = further
            crops.append(self._crop(line, line.x0, end))
            owners.append((i, ""))
        reads: list[_Read | None] = [None] * len(lines)
        # The digits read inside a drawn box or circle win (the recogniser reads a boxed 5 whole as ⑤ or [5], and
        # confuses ⑪-⑳ with ①-⑩), except over a bracket or a heading read whole ("[5]" may pass for a box);
        # otherwise the plain read.
        results = list(zip(owners, textlines.recognise(crops), strict=True))
        plain: dict[int, str] = {}
        for (i, frame), (text, confidence) in sorted(results, key=lambda r: r[0][1] != ""):
            if confidence < MIN_READ_CONFIDENCE:
                continue
            read, before = parse_label(text, frame), reads[i]
            if before is None or (frame and read is not None and before.family not in ("bracket", "heading")):
                reads[i] = read or before
            if not frame:
                plain[i] = text
                if (digits := _BARE.match(text.strip())) is not None:
                    self.bare[_line_key(lines[i])] = int(digits.group(1))
        # A read that stops short of a label ("Q1" of "Q10.", "[1" of "[12]", "문" alone: a wide letter gap cut
        # the word) is read again over a wider window from the line start.
        again = [i for i, text in plain.items() if reads[i] is None and _INCOMPLETE.match(text.strip())]
        for i, (text, confidence) in zip(
            again, textlines.recognise([self._window(lines[i], WIDE_LABEL_LINES) for i in again]), strict=True
        ):
            if confidence >= MIN_READ_CONFIDENCE:
                reads[i] = parse_label(text)
        # A heading's range is wider ("※ [11~15]"), and a scan's broken `문 7.` may read whole only with the text
        # after it: a read still short of a label is read over a wider window, and so is every bracketed number
        # ("※ [8" cut by a letter gap reads "[8]", where the line goes on "~9] ...": a section heading).
        wider = [
            i
            for i, text in plain.items()
            if (reads[i] is None and _INCOMPLETE.match(text.strip()))
            or ((read := reads[i]) is not None and read.family == "bracket")
        ]
        for i, (text, confidence) in zip(
            wider, textlines.recognise([self._window(lines[i], AGAIN_LABEL_LINES) for i in wider]), strict=True
        ):
            if confidence < MIN_READ_CONFIDENCE:
                continue
            if reads[i] is None:
                reads[i] = parse_label(text)
            elif (read := parse_label(text)) is not None and read.kind == "heading":
                reads[i] = read
        # The recogniser may drop a Hangul glyph altogether ("문 3." read "3."): when the number is not the first
        # word, the first word read alone is no digit, and it is the prefix.
        bare = [
            i
            for i, r in enumerate(reads)
            if r is not None
            and r.family == "num"
            and not r.hangul_prefix
            and i in first
            and (end := self._token_end(lines[i], first[i], SPACE_LINES)) is not None
            and end > first[i]
        ]
        alone = textlines.recognise([self._crop(lines[i], lines[i].x0, first[i]) for i in bare])
        for i, (text, _) in zip(bare, alone, strict=True):
            read = reads[i]
            # ... or a 0: 문, or a font's missing-glyph box in its place, read alone (no number starts with 0).
            if read is not None and not ("1" <= text.strip()[:1] <= "9"):
                reads[i] = replace(read, label=f"문 {read.label}", hangul_prefix=True)
        return reads


def _chain(cands: list[tuple[int, _Read]]) -> list[int]:
    """The indices (into `cands`, in reading order) of the question numbers: one label family, increasing.

    Within a family the chain maximises its length (an inferred mark counting `GUESSED_WEIGHT`) minus `SKIP_PENALTY`
    per skipped number; families compete on that
    score less `REPEAT_PENALTY` per repeated number (choice markers ① ② ... restart with every question), a circled
    chain counting `CIRCLED_WEIGHT`.
    """
    families: dict[str, list[int]] = {}
    for k, (_, r) in enumerate(cands):
        if r.kind == "start":
            families.setdefault(r.family, []).append(k)
    best: tuple[tuple[float, float], list[int]] = ((-math.inf, 0.0), [])  # ((weighted score, score), chain)
    for family, members in families.items():
        numbers = [cands[k][1].number for k in members]
        score = [0.0] * len(members)
        back = [-1] * len(members)
        for i, k in enumerate(members):
            gain = GUESSED_WEIGHT if cands[k][1].guessed else 1.0
            score[i] = gain
            for j in range(i):
                step = cands[k][1].number - cands[members[j]][1].number
                if step >= 1 and score[j] + gain - SKIP_PENALTY * (step - 1) > score[i]:
                    score[i], back[i] = score[j] + gain - SKIP_PENALTY * (step - 1), j
        end = int(np.argmax(score))
        chain: list[int] = []
        while end >= 0:
            chain.append(members[end])
            end = back[end]
        weight = CIRCLED_WEIGHT if family == "circled" else 1.0
        key = (max(score) * weight - REPEAT_PENALTY * (len(numbers) - len(set(numbers))), max(score))
        if key > best[0]:
            best = (key, chain[::-1])
    return best[1]


def _line_key(line: Block) -> tuple[int, int, int]:
    return line.x0, line.y0, line.y1


def _misread(read: int, expected: int) -> bool:
    """Whether `read` is `expected` with one digit misread (7 read as 1, 8 as 3)."""
    a, b = str(read), str(expected)
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1


def _renumbered(read: _Read, number: int) -> _Read:
    """`read` for a neighbouring question the recogniser missed: the same label style with `number`."""
    if read.family == "circled":
        label = next((c for c, n in CIRCLED.items() if n == number), str(number))
    else:
        label = read.label.replace(str(read.number), str(number), 1)
    return replace(read, number=number, label=label)


def _questions(
    reader: _Reader, columns: list[list[Block]], line_h: float, width: int, foot: float, gutter: int = 0
) -> list[Question]:
    """Questions of one layout hypothesis (a list of columns of blocks), in reading order.

    `foot`: the y (body pixels) where the page's foot begins, whose narrow centred lines are page numbers."""
    tol = MARGIN_TOL_LINES * line_h

    def folio(b: Block) -> bool:
        """A page number: narrow, centred, at the foot of the page."""
        return b.y0 >= foot and b.x1 - b.x0 < FOLIO_WIDTH * width and abs(b.x0 + b.x1 - width) < FOLIO_WIDTH * width

    # Page numbers are no part of a column (set left of a right column's margin, one would move the margin there).
    columns = [[b for b in blocks if not folio(b)] for blocks in columns]
    column_lines = [_lines(blocks) for blocks in columns]
    pending: list[tuple[int, int]] = []  # (column, line index) of lines that start at their column's margin
    for c, lines in enumerate(column_lines):
        a, b = _margin(columns[c], line_h, gutter if c else 0)
        pending += [
            (c, i)
            for i, line in enumerate(lines)
            if abs(line.x0 - (a + b * (line.y0 + line.y1) / 2)) <= tol and line.y1 - line.y0 >= line_h / 2
        ]
    reads = reader.read([column_lines[c][i] for c, i in pending])
    cands = [(p, r) for p, r in zip(pending, reads, strict=True) if r is not None]
    chosen = [cands[k] for k in _chain([(k, r) for k, (_, r) in enumerate(cands)])]
    if len(chosen) < 2 and all(r.guessed for _, r in chosen):
        chosen = []  # one inferred mark ("11" for "1)") on a page where nothing else reads is noise
    if len(chosen) < 2:
        # No label sequence read, but first words that read as bare numbers (a box whose thin sides the scan erased, a
        # number printed with no mark): a sequence of at least BARE_MIN_CHAIN of them numbers the questions.
        bare = [
            (p, _Read("start", "boxed", n, str(n), guessed=True))
            for p, r in zip(pending, reads, strict=True)
            if (r is None or r.kind == "start")
            and (n := reader.bare.get(_line_key(column_lines[p[0]][p[1]]))) is not None
        ]
        chain = [bare[k] for k in _chain([(k, r) for k, (_, r) in enumerate(bare)])]
        if len(chain) >= BARE_MIN_CHAIN:
            chosen = chain
    starts = {p: r for p, r in chosen}
    # A number the recogniser missed leaves a gap in the sequence: the unread margin lines in that gap that follow
    # the widest blank gaps become the missing questions.
    family = chosen[0][1].family if chosen else ""
    position = {p: k for k, p in enumerate(pending)}
    # Lines with no label read, with a label of another family, or with a label of the family whose number broke
    # the sequence (the recogniser reads a small 7 as 1): candidates for the numbers the sequence misses.
    unread = [p for p, r in zip(pending, reads, strict=True) if r is None or (r.kind == "start" and p not in starts)]

    def gap_above(p: tuple[int, int]) -> float:
        c, i = p
        return math.inf if i == 0 else column_lines[c][i].y0 - column_lines[c][i - 1].y1

    def token_width(p: tuple[int, int]) -> int | None:
        line = column_lines[p[0]][p[1]]
        end = reader.token_end(line)
        return None if end is None else end - line.x0

    if chosen:
        # After the last number read, labels of the family that broke the sequence by one misread digit continue it.
        last, read = chosen[-1]
        expected = read.number + 1
        for p in unread:
            r = reads[position[p]]
            if position[p] > position[last] and r is not None and r.family == family and _misread(r.number, expected):
                starts[p] = _renumbered(read, expected)
                expected += 1
        # Labels the recogniser could not read at all after the last one read: unread margin lines whose first word
        # is as wide as the labels read and that follow a blank gap like theirs continue the sequence.
        widths = [w for p, _ in chosen if (w := token_width(p)) is not None]
        gaps = [g for p, _ in chosen if math.isfinite(g := gap_above(p))]
        if widths and gaps:
            lo, hi = (LABEL_WIDTH_RANGE[0] * float(np.median(widths)), LABEL_WIDTH_RANGE[1] * float(np.median(widths)))
            min_gap = max(START_GAP_LINES * line_h, LABEL_GAP_SHARE * float(np.median(gaps)))
            last = max(p for p in starts if p in position) if starts else last
            last_number = starts[last].number
            for p in unread:
                if position[p] <= position[last] or p in starts:
                    continue
                w = token_width(p)
                if w is not None and lo <= w <= hi and gap_above(p) >= min_gap:
                    last_number += 1
                    starts[p] = _renumbered(read, last_number)

    if len(chosen) >= 2 and chosen[0][1].number > 1:
        # Before the first number read, only label-narrow unread lines after a blank gap may be the questions it
        # follows: those after the widest gaps.
        first, read = chosen[0]
        # A line closer to a question start right below it than to the text above is that question's preamble.
        narrow = [
            p
            for p in unread
            if position[p] < position[first]
            and (end := reader.token_end(column_lines[p[0]][p[1]])) is not None
            and end - column_lines[p[0]][p[1]].x0 <= NARROW_LABEL_LINES * line_h
            and gap_above(p) >= START_GAP_LINES * line_h
            and not (
                (p[0], p[1] + 1) in starts
                and math.isfinite(gap_above(p))
                and gap_above(p) > PREAMBLE_GAP_RATIO * gap_above((p[0], p[1] + 1))
            )
        ]
        picked = sorted(sorted(narrow, key=gap_above, reverse=True)[: read.number - 1], key=position.__getitem__)
        for n, p in enumerate(picked, start=read.number - len(picked)):
            starts[p] = _renumbered(read, n)
    for (pa, ra), (pb, rb) in itertools.pairwise(chosen):
        missing = rb.number - ra.number - 1
        between = [
            p for p in unread if position[pa] < position[p] < position[pb] and gap_above(p) >= START_GAP_LINES * line_h
        ]
        if missing <= 0 or not between:
            continue
        picked = sorted(sorted(between, key=gap_above, reverse=True)[:missing], key=position.__getitem__)
        for n, p in enumerate(picked, start=ra.number + 1):
            starts[p] = _renumbered(ra, n)
    headings = {p for p, r in cands if r.kind == "heading"}
    unlabelled: set[tuple[int, int]] = set()
    if not chosen:
        # No number read at all (a scan too degraded for the recogniser): questions start at margin lines after a
        # blank gap well above the usual line spacing, with no number.
        for c, lines in enumerate(column_lines):
            spacing = [b.y0 - a.y1 for a, b in itertools.pairwise(lines)]
            if not spacing:
                continue
            min_gap = max(START_GAP_LINES * line_h, UNREAD_GAP_RATIO * float(np.median(spacing)))
            unlabelled |= {
                (cc, i) for cc, i in pending if cc == c and (cc, i) not in headings and gap_above((cc, i)) >= min_gap
            }
    # A margin line set apart from the text above it and closer to the question start below it is that question's
    # preamble (a section heading the recogniser could not read), not the end of the question above.
    for c, i in pending:
        lines = column_lines[c]
        if (c, i) in starts or (c, i + 1) not in starts or i == 0:
            continue
        above, below = gap_above((c, i)), gap_above((c, i + 1))
        if above >= START_GAP_LINES * line_h and above > PREAMBLE_GAP_RATIO * max(below, 1.0):
            headings.add((c, i))
    hangul = sum(r.hangul_prefix for _, r in chosen) * 2 > len(chosen)
    found: list[Question] = []
    for c, lines in enumerate(column_lines):
        current: list[int] | None = None
        for i, line in enumerate(lines):
            if folio(line):
                continue  # a page number whose pieces joined into a line
            start = starts.get((c, i))
            if (c, i) in unlabelled:
                current = [line.x0, line.y0, line.x1, line.y1]
                found.append(Question((0, 0, 0, 0), None, None, c))
            elif start is not None:
                read = start
                label = read.label
                if read.family == "num" and hangul and not read.hangul_prefix:
                    label = f"문 {label}"  # one page, one label style: the majority's
                elif read.family == "num" and not hangul and read.hangul_prefix:
                    label = label.removeprefix("문 ")
                current = [line.x0, line.y0, line.x1, line.y1]
                found.append(Question((0, 0, 0, 0), read.number, label, c))
            elif (c, i) in headings or current is None or line.y0 - current[3] > JOIN_GAP_LINES * line_h:
                current = None  # a section heading, text above the first question, a page number far below
                continue
            else:
                current[:] = [min(current[0], line.x0), current[1], max(current[2], line.x1), max(current[3], line.y1)]
            found[-1] = replace(found[-1], box=(current[0], current[1], current[2], current[3]))
    return found
