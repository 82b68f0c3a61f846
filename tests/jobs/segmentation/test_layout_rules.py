"""Layout rules of question_segmentation on small synthetic inputs: the column margin, drawn frames around numbers,
and the TrueType tuning pages (bilevel, boxed, `문 N.`, English, skewed before the scan)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
from seg_font_pages import faces, render_font_page
from seg_pages import iou

from ai_worker.jobs.context import JobContext
from ai_worker.jobs.layout import Block, _ink, _margin, _Reader
from ai_worker.jobs.segmentation import handle

LINE_H = 25.0


def _column(label_rows: list[int], rows: int, label_x: int = 100, body_x: int = 140) -> list[Block]:
    """A hanging-indent column: a label line at `label_x` on `label_rows`, body lines at `body_x` elsewhere."""
    return [Block(label_x if r in label_rows else body_x, 40 * r, 500, 40 * r + 25) for r in range(rows)]


def test_margin_goes_through_few_labels_left_of_many_indented_lines() -> None:
    # Four labels among forty lines, far apart: the margin is theirs, not the body's.
    a, b = _margin(_column([0, 13, 26, 39], 40), LINE_H)
    assert abs(a + b * 500 - 100) < 3 and abs(b) < 0.01


def test_margin_keeps_a_lone_one_line_question_and_ignores_a_page_number() -> None:
    blocks = [*_column([0, 4], 5), Block(100, 600, 480, 625)]  # a one-line question far below the others
    assert abs(_margin(blocks, LINE_H)[0] - 100) < 3
    folio = [*_column([0, 6], 12), Block(60, 1400, 90, 1425)]  # a narrow page number alone, left of the margin
    assert abs(_margin(folio, LINE_H)[0] - 100) < 3


def test_margin_of_a_right_column_ignores_lines_crossing_the_gutter() -> None:
    blocks = [*_column([0, 5], 10, 700, 740), Block(300, 900, 900, 925), Block(310, 940, 880, 965)]
    assert abs(_margin(blocks, LINE_H, 620)[0] - 700) < 3


def _token(draw: str, thin: bool) -> tuple[np.ndarray, Block]:
    """A grey strip holding a number drawn in a box, in a circle, or bare with a bracket, then thresholded."""
    img = np.full((60, 120), 255, np.uint8)
    cv2.putText(img, "7", (34, 42), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 2, cv2.LINE_AA)
    if draw == "box":
        cv2.rectangle(img, (24, 12), (58, 48), 0, 1 if thin else 2)
    elif draw == "circle":
        cv2.circle(img, (42, 30), 19, 0, 1 if thin else 2, cv2.LINE_AA)
    else:
        cv2.putText(img, ")", (52, 42), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 2, cv2.LINE_AA)
    noisy = cv2.GaussianBlur(img, (0, 0), 0.7).astype(np.float32)
    noisy += np.random.default_rng(3).normal(0, 18, img.shape).astype(np.float32)
    return np.where(noisy < 150, 0, 255).astype(np.uint8), Block(24, 14, 120, 46)


@pytest.mark.parametrize("thin", [False, True])
@pytest.mark.parametrize(("draw", "expected"), [("box", False), ("circle", True), ("bare", None)])
def test_frames_around_numbers_are_told_apart_on_a_black_and_white_scan(
    draw: str, expected: bool | None, thin: bool
) -> None:
    gray, line = _token(draw, thin)
    mask = (gray < 128).astype(np.uint8)
    inside = _Reader(gray, mask, 32.0)._box_inside(line, 62 if draw != "bare" else 66)
    assert (None if inside is None else inside[4]) == expected


@pytest.mark.parametrize("digit", ["1", "4", "7"])
def test_a_boxed_number_with_text_run_into_its_frame_and_dust_beside_it_is_read(digit: str) -> None:
    """Text set close to a box (no word gap left once blurred) and a speck of dust under the frame: the frame is
    still found from its closing side, and its sides are painted out before the digit is read."""
    img = np.full((70, 260), 255, np.uint8)
    cv2.rectangle(img, (20, 14), (50, 50), 0, 2)
    cv2.putText(img, digit, (27, 44), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 2, cv2.LINE_AA)
    cv2.putText(img, "Find", (53, 44), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 2, cv2.LINE_AA)  # touching the frame
    cv2.circle(img, (40, 57), 1, 0, -1)  # dust under the box
    gray = cv2.GaussianBlur(img, (0, 0), 0.8)
    mask = (gray < 128).astype(np.uint8)
    reader = _Reader(gray, mask, 32.0)
    line = Block(20, 14, 140, 51)
    inside = reader._frame_inside(line, None)
    assert inside is not None and inside[4] is False  # a box
    from ai_worker.jobs import textlines

    text, confidence = textlines.recognise([reader._inside_crop(inside)])[0]
    assert text == digit and confidence >= 0.5


@pytest.mark.parametrize("angle", [-1.6, 0.9, 2.2])
def test_skew_of_two_columns_whose_lines_are_at_different_heights(angle: float) -> None:
    """Two columns of text lines, the right one's lines half a line pitch lower: one row profile over both would be
    sharpest where one column's line k lines up with the other's line k + 1."""
    from ai_worker.jobs.deskew import estimate_skew

    page = np.zeros((1754, 1240), np.uint8)
    for row in range(34):
        y = 150 + 44 * row
        cv2.rectangle(page, (80, y), (560, y + 16), 1, -1)
        cv2.rectangle(page, (680, y + 22), (1160, y + 38), 1, -1)
    rotation = cv2.getRotationMatrix2D((620, 877), angle, 1.0)
    skewed = cv2.warpAffine(page, rotation, (1240, 1754), flags=cv2.INTER_NEAREST)
    assert abs(-estimate_skew(skewed) - angle) <= 0.1


def test_a_column_rule_broken_into_dashes_by_a_black_and_white_scan_is_erased() -> None:
    from ai_worker.jobs.layout import _strip_rules

    mask = np.zeros((1754, 1240), np.uint8)
    for y in range(200, 1600, 20):
        mask[y : y + 9, 620:622] = 1  # 9 px dashes, 11 px gaps: under half of any window is ink
    for y in range(200, 1600, 40):
        mask[y : y + 16, 630:900] = 1  # text lines set close to the rule
    _strip_rules(mask, mask.copy())
    assert not mask[:, 615:627].any()
    assert mask[:, 630:900].any()


@pytest.mark.skipif(len(faces()) < 3, reason="TrueType faces absent: apt-get install fonts-nanum fonts-noto-cjk")
def test_truetype_tuning_pages_read_numbers_and_boxes() -> None:
    """Bilevel and grey scans, boxed/circled/`문 N.` labels, Korean and English (tuning generator, seeded)."""
    hits = total = numbers = 0
    for seed in (1, 3, 24, 32, 35):  # otsu circled two columns, harsh, bilevel skewed, otsu `문 N.`, otsu boxed
        page = render_font_page(seed)
        found = handle(JobContext.for_test("question_segmentation", {}, page.encode()))["questions"]
        for i, (box, number, label) in enumerate(zip(page.boxes, page.numbers, page.labels, strict=True)):
            hits += i < len(found) and iou(box, found[i]["bbox"]) >= 0.85
            numbers += i < len(found) and found[i]["number"] == number and found[i]["label"] == label
        total += len(page.boxes)
    assert hits / total >= 0.9
    assert numbers / total >= 0.9


def test_questions_whose_numbers_cannot_be_read_are_split_at_wide_gaps_with_no_number() -> None:
    """No label at all (numbers lost to a degraded scan): blocks of lines apart by wide gaps, number null."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=22)
    page = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(page)
    y = 150
    for block in range(4):
        for line in range(3):
            draw.text((100, y), f"some words of block {block} on line {line} of its text", font=font, fill=0)
            y += 34
        y += 120
    ok, png = cv2.imencode(".png", np.asarray(page))
    assert ok
    found = handle(JobContext.for_test("question_segmentation", {}, png.tobytes()))["questions"]
    assert [(q["number"], q["label"]) for q in found] == [(None, None)] * 4
    assert [q["bbox"][1] for q in found] == sorted(q["bbox"][1] for q in found)


def _three_questions_with_a_table(
    draw: Any, font: Any, y: int, *, lines: tuple[int, int], table: tuple[int, int]
) -> None:
    """Questions 1-3 from `y`, with `lines` text lines under question 1's label and under each other's, question 1
    ending in a three-row table whose rules run from x = `table[0]` to `table[1]`."""
    for number in (1, 2, 3):
        draw.text((100, y), f"{number}. Which of the following values is the sum below", font=font, fill=0)
        for line in range(lines[0] if number == 1 else lines[1]):
            y += 40
            draw.text((140, y), f"the text of question {number} on its line {line} of words", font=font, fill=0)
        if number == 1:
            for row in range(3):
                y += 40
                draw.line((table[0], y, table[1], y), fill=0, width=2)
                draw.text((160, y + 8), f"row {row}    12    34    56", font=font, fill=0)
            y += 40
            draw.line((table[0], y, table[1], y), fill=0, width=2)
        y += 150


def test_a_table_rule_in_the_first_question_of_a_page_with_no_header_closes_no_header() -> None:
    """A full-width rule near the top with more text lines above it than a header holds is a table's."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=24)
    page = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(page)
    _three_questions_with_a_table(draw, font, 80, lines=(5, 3), table=(140, 1140))  # a table as wide as the text
    ok, png = cv2.imencode(".png", np.asarray(page))
    assert ok
    found = handle(JobContext.for_test("question_segmentation", {}, png.tobytes()))["questions"]
    assert [(q["number"], q["label"]) for q in found] == [(1, "1."), (2, "2."), (3, "3.")]
    assert found[0]["bbox"][1] < 100  # from its label down, not from under the table


def test_a_thin_circle_dotted_by_a_black_and_white_scan_is_kept_and_lone_dust_is_not() -> None:
    # A circled number's hairline ring that the scanner's threshold left as specks too small and too far apart for
    # the speck filter and the closing: they crowd along the ring, where dust lies alone.
    page = np.full((400, 1240), 255, np.uint8)
    ring = [(300 + round(14 * np.cos(t)), 200 + round(14 * np.sin(t))) for t in np.arange(0, 2 * np.pi, 6 / 14)]
    for x, y in ring:
        page[y : y + 2, x : x + 2] = 0
    dust = [(500 + 67 * k, 60 + 29 * k) for k in range(8)]
    for x, y in dust:
        page[y, x] = 0
    ink = _ink(page, bilevel=True)
    assert sum(bool(ink[y, x]) for x, y in ring) >= 0.9 * len(ring)
    assert not any(ink[y, x] for x, y in dust)


@pytest.mark.skipif(not faces(), reason="TrueType faces missing: apt-get install fonts-nanum fonts-dejavu")
def test_headings_a_black_and_white_scan_broke_up_are_read_and_end_the_question_above() -> None:
    """An Otsu-thresholded skewed page (tuning generator, seeded): the section headings (`※ [n~m] ...`) under ① and ⑤,
    their strokes broken by the threshold, read as nothing and joined the question above until unread lines were read
    again with the breaks closed."""
    page = render_font_page(25)
    assert page.tags["scan"] == "otsu" and page.tags["style"] == "circled"
    found = handle(JobContext.for_test("question_segmentation", {}, page.encode()))["questions"]
    assert [q["label"] for q in found] == page.labels
    assert all(iou(box, q["bbox"]) >= 0.85 for box, q in zip(page.boxes, found, strict=True))


def test_a_clean_read_of_a_number_wins_over_a_body_line_whose_digits_were_taken_for_a_label() -> None:
    """`9.` heads the right column; a flush body line of question 8 starts with "91", read as `9)` with its mark
    inferred: the sequence 8, 9, 10 goes through the clean read."""
    from ai_worker.jobs.layout import _chain, parse_label

    texts = ["7.", "8.", "91", "9.", "10."]
    reads = [parse_label(t) for t in texts]
    assert reads[2] is not None and reads[2].guessed
    chain = _chain([(k, r) for k, r in enumerate(reads) if r is not None])
    assert chain == [0, 1, 3, 4]


def test_ink_on_a_pale_copy_is_found_at_the_page_own_contrast() -> None:
    """Grey ink on grey paper (a faded copy): the thin strokes of a label are under the usual contrast floor, and are
    ink at the page's own; black print keeps the usual floor."""
    from ai_worker.jobs.imaging import INK_MIN_CONTRAST
    from ai_worker.jobs.layout import _ink_contrast

    page = np.full((600, 800), 255, np.uint8)
    for row in range(8):
        cv2.putText(page, f"{row + 1}. some words of a line", (60, 60 + 60 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 1)
    assert _ink_contrast(page) == INK_MIN_CONTRAST
    pale = (130 + page.astype(np.float32) / 255 * 75).astype(np.uint8)  # ink 130 on paper 205
    pale = cv2.GaussianBlur(pale, (0, 0), 0.9)
    contrast = _ink_contrast(pale)
    assert contrast < INK_MIN_CONTRAST
    strokes = page < 128
    usual, own = _ink(pale), _ink(pale, contrast=contrast)
    assert own[strokes].mean() > 0.8 > usual[strokes].mean() + 0.2
    assert own[cv2.dilate(strokes.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0].mean() < 0.001


def _page_png(draw_page: Any) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=24)
    page = Image.new("L", (1240, 1100), 255)  # A4 wide, short: a third less to analyse
    draw_page(ImageDraw.Draw(page), font)
    ok, png = cv2.imencode(".png", np.asarray(page))
    assert ok
    return png.tobytes()


@pytest.mark.parametrize("title_box", [False, True])
def test_a_table_in_the_first_question_under_a_header_is_no_header_rule(title_box: bool) -> None:
    """A header (a title, a name field; a rule under it or a box around it), then a first question of three lines
    and a ruled table as wide as the text: the header closes at its own rule, and the question's box reaches the
    table's rules (erased as long rules, they still are its ink)."""

    def draw_page(draw: Any, font: Any) -> None:
        draw.text((520, 60), "Unit Test 3", font=font, fill=0)
        draw.text((820, 100), "Name ______", font=font, fill=0)
        if title_box:
            draw.rectangle((90, 45, 1150, 140), outline=0, width=2)
        else:
            draw.line((90, 140, 1150, 140), fill=0, width=2)
        _three_questions_with_a_table(draw, font, 200, lines=(2, 2), table=(100, 1150))

    found = handle(JobContext.for_test("question_segmentation", {}, _page_png(draw_page)))["questions"]
    assert [(q["number"], q["label"]) for q in found] == [(1, "1."), (2, "2."), (3, "3.")]
    assert 195 <= found[0]["bbox"][1] < 210  # from its label down, not from under the table
    assert found[0]["bbox"][2] >= 1148  # to the table's right end


def test_a_heading_whose_range_a_letter_gap_cut_is_read_again_whole() -> None:
    """`※ [12 ~15]`: the first word read alone is `※`, and with the next, `[12`: read again over a wider window, it
    is a section heading, not question 12."""
    from PIL import Image, ImageDraw, ImageFont

    from ai_worker.jobs.layout import _blocks, _lines

    font = ImageFont.load_default(size=28)
    img = Image.new("L", (900, 80), 255)
    draw = ImageDraw.Draw(img)
    draw.text((20, 20), "※ [12", font=font, fill=0)
    draw.text((20 + int(font.getlength("※ [12")) + 14, 20), "~15] Read and answer.", font=font, fill=0)
    gray = np.asarray(img).copy()
    mask = (gray < 128).astype(np.uint8)
    line = _lines(_blocks(mask, 8))[0]
    reader = _Reader(gray, mask, float(line.y1 - line.y0))
    read = reader.read([line])[0]
    assert read is not None and read.kind == "heading"


def test_dashes_of_a_column_rule_too_sparse_to_be_found_do_not_move_the_right_column_margin() -> None:
    """A column rule a scan left as a few tall dashes (too far apart to close into a rule), just left of the right
    column: no word is that narrow, and the right column's margin stays at its labels."""

    def draw_page(draw: Any, font: Any) -> None:
        for column, x in enumerate((80, 660)):
            y = 120
            for k in range(3):
                number = 1 + k + 3 * column
                draw.text((x, y), f"{number}. Which value is the sum of", font=font, fill=0)
                for line in range(3):
                    y += 40
                    draw.text((x + 40, y), f"the words of line {line} here", font=font, fill=0)
                y += 160
        for y in range(110, 1050, 45):
            draw.rectangle((638, y, 641, y + 14), fill=0)  # 4 px wide, 15 px tall, 30 px apart

    found = handle(JobContext.for_test("question_segmentation", {}, _page_png(draw_page)))["questions"]
    assert [q["number"] for q in found] == [1, 2, 3, 4, 5, 6]
    assert [q["column"] for q in found] == [0, 0, 0, 1, 1, 1]


def test_pieces_of_a_glyph_a_scan_broke_apart_stack_into_one_block_and_dust_does_not() -> None:
    """문 on a black-and-white scan: its ㅁ, ㅜ and ㄴ come apart, each under half a line high (the size of dust);
    stacked, they are one glyph that starts its line at the margin. A lone dash and specks stay out."""
    from ai_worker.jobs.layout import _stacked

    mun = [Block(100, 100, 120, 108), Block(97, 111, 123, 114), Block(101, 118, 121, 126)]
    dust = [Block(300, 50, 303, 53), Block(301, 56, 304, 59), Block(500, 300, 512, 303)]
    assert _stacked(mun + dust, 28.0) == [Block(97, 100, 123, 126)]


def test_questions_before_the_first_number_read_start_after_the_widest_gaps() -> None:
    """Flush text; the labels of questions 1 and 2 are blots the recogniser cannot read, and body lines of question 2
    start with words as short as a label: questions 1 and 2 start after the blank gaps, not at the body lines right
    above question 3."""
    starts: list[int] = []

    def draw_page(draw: Any, font: Any) -> None:
        y = 120
        for number in (1, 2, 3, 4, 5):
            starts.append(y)
            if number <= 2:
                draw.rectangle((100, y + 4, 118, y + 22), fill=0)  # a label no one can read
                draw.text((126, y), "Which value is the sum of the words", font=font, fill=0)
            else:
                draw.text((100, y), f"{number}. Which value is the sum of the words", font=font, fill=0)
            for line in range(2):
                y += 40
                draw.text((100, y), f"ab cd the words of line {line} here and more", font=font, fill=0)
            y += 110

    found = handle(JobContext.for_test("question_segmentation", {}, _page_png(draw_page)))["questions"]
    assert [q["number"] for q in found] == [1, 2, 3, 4, 5]
    assert all(abs(q["bbox"][1] - y) <= 8 for q, y in zip(found, starts, strict=True))


def test_a_bracketed_number_read_from_a_cut_word_is_checked_over_the_wider_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The recogniser closes a cut `[8` as `[8]`: the line read over a wider window goes on `~9] ...`, a heading."""
    from ai_worker.jobs import textlines

    gray = np.full((60, 600), 255, np.uint8)
    cv2.putText(gray, "[8", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 2)
    cv2.putText(gray, "~9] Read and answer", (75, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 2)
    mask = (gray < 128).astype(np.uint8)

    def recognise(crops: list[np.ndarray]) -> list[tuple[str, float]]:
        return [("[8]", 0.9) if crop.shape[1] < 100 else ("[8~9] Read and", 0.9) for crop in crops]

    monkeypatch.setattr(textlines, "recognise", recognise)
    read = _Reader(gray, mask, 25.0).read([Block(20, 18, 420, 42)])[0]
    assert read is not None and read.kind == "heading"


def test_numbers_printed_with_no_mark_number_the_questions_when_no_label_is_read() -> None:
    """`1`, `2`, `3` with no mark (as a box whose thin sides a scan erased leaves them): no label family reads, and the
    bare numbers in sequence number the questions, labelled as printed."""

    def draw_page(draw: Any, font: Any) -> None:
        y = 120
        for number in (1, 2, 3):
            draw.text((100, y), str(number), font=font, fill=0)
            draw.text((140, y), "Which value is the sum of the words", font=font, fill=0)
            for line in range(2):
                y += 40
                draw.text((140, y), f"the words of line {line} of its text", font=font, fill=0)
            y += 150

    found = handle(JobContext.for_test("question_segmentation", {}, _page_png(draw_page)))["questions"]
    assert [(q["number"], q["label"]) for q in found] == [(1, "1"), (2, "2"), (3, "3")]
