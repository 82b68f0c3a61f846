"""textlines: the PP-OCR models packaged in the rapidocr wheel, run without importing rapidocr or downloading."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ai_worker.jobs import textlines


def _line(text: str, size: int = 28) -> np.ndarray:
    font = ImageFont.load_default(size=size)
    image = Image.new("L", (40 + int(font.getlength(text)), size + 24), 255)
    ImageDraw.Draw(image).text((20, 10), text, font=font, fill=0)
    return np.asarray(image)


def test_models_come_from_the_installed_wheel() -> None:
    folder = textlines.models_dir()
    assert (folder / textlines.REC_MODEL).is_file() and (folder / textlines.DET_MODEL).is_file()


def test_recognise_reads_labels_and_text() -> None:
    reads = textlines.recognise([_line("12."), _line("Q4."), _line("[5]"), _line("Answer 37")])
    assert [text for text, _ in reads] == ["12.", "Q4.", "[5]", "Answer 37"]
    assert all(0.5 < confidence <= 1.0 for _, confidence in reads)
    assert textlines.recognise([]) == []


def test_detect_finds_each_text_line() -> None:
    page = np.full((400, 600), 255, np.uint8)
    for k, text in enumerate(("First line of text", "Second line 42")):
        line = _line(text)
        page[60 + k * 150 : 60 + k * 150 + line.shape[0], 50 : 50 + line.shape[1]] = line
    boxes = textlines.detect(page)
    assert len(boxes) == 2
    for (x0, y0, x1, y1), top in zip(boxes, (60, 210), strict=True):
        assert 40 <= x0 <= 80 and top <= y0 + 10 and y1 <= top + 70 and x1 > 250
