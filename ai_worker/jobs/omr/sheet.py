"""Rendering printable answer sheets from a template: PNG, PDF and the template JSON the reader reads back.

Guarantees: what is printed is exactly what the template describes (fiducials on the frame corners, one circle per
bubble, the template's labels), so a sheet rendered here at any dpi is read by the reader with the same template.
Template lengths are taken as millimetres when converting to pixels. Optional marks (`answers`, `identifier`)
fill bubbles as a dark pen would, for demos and benchmarks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ai_worker.jobs.omr.layout import standard_template
from ai_worker.jobs.omr.template import FIDUCIAL_HOLE, Template

MM_PER_INCH = 25.4
RING_WIDTH_MM = 0.25  # printed bubble outline: visible, yet thin enough not to read as a mark
MARK_FILL = 0.85  # a demo mark covers 85 % of the bubble's radius, like a careful student
MIN_DPI, MAX_DPI = 72, 600  # below 72 dpi bubbles are a few pixels wide; above 600 the page exceeds the pixel cap
PAGE_MARGIN = 1.5  # custom templates without a page: margin around the frame, in fiducial sides

Answers = Mapping[int, str | Sequence[str]]


@dataclass(frozen=True)
class Placement:
    """Where the template frame lies on a page rendered at some dpi (template lengths are millimetres)."""

    template: Template
    dpi: int

    @property
    def scale(self) -> float:
        return self.dpi / MM_PER_INCH

    @property
    def origin(self) -> tuple[float, float]:
        margin = PAGE_MARGIN * self.template.fiducial_size * self.template.frame_width
        return self.template.page.get("frame_left", margin), self.template.page.get("frame_top", margin)

    @property
    def size(self) -> tuple[int, int]:
        left, top = self.origin
        width = self.template.page.get("width", self.template.frame_width + 2 * left)
        height = self.template.page.get("height", self.template.frame_height + 2 * top)
        return round(width * self.scale), round(height * self.scale)

    def point(self, u: float, v: float) -> tuple[float, float]:
        left, top = self.origin
        return (left + u * self.template.frame_width) * self.scale, (top + v * self.template.frame_height) * self.scale

    def length(self, fraction_of_width: float) -> float:
        return fraction_of_width * self.template.frame_width * self.scale


def render_sheet(
    template: Template,
    *,
    dpi: int = 200,
    answers: Answers | None = None,
    identifier: str | None = None,
) -> Image.Image:
    """The page as a grayscale PIL image; `answers` ({question: "B" or ["A", "C"]}) and `identifier` ("20261234")
    are filled in with dark marks."""
    if not MIN_DPI <= dpi <= MAX_DPI:
        raise ValueError(f"dpi must be between {MIN_DPI} and {MAX_DPI}")
    place = Placement(template, dpi)
    px = place.point
    image = Image.new("L", place.size, 255)
    draw = ImageDraw.Draw(image)
    side = place.length(template.fiducial_size)
    for i, corner in enumerate(((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))):
        x, y = px(*corner)
        draw.rectangle((x - side / 2, y - side / 2, x + side / 2, y + side / 2), fill=0)
        if i == 0:
            hole = side * FIDUCIAL_HOLE / 2
            draw.rectangle((x - hole, y - hole, x + hole, y + hole), fill=255)

    radius = place.length(template.bubble_radius)
    ring = max(1, round(RING_WIDTH_MM * place.scale))
    bubbles = [p for q in template.questions for p in q.bubbles] + [p for col in template.identifier for p in col]
    for u, v in bubbles:
        x, y = px(u, v)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=0, width=ring)
    for label in template.labels:
        font = _font(max(6, round(place.length(label.size))))
        draw.text(px(label.x, label.y), label.text, fill=0, font=font, anchor=label.anchor)

    marks = _mark_points(template, answers or {}, identifier or "")
    fill = radius * MARK_FILL
    for u, v in marks:
        x, y = px(u, v)
        draw.ellipse((x - fill, y - fill, x + fill, y + fill), fill=0)
    return image


def write_sheet(out_dir: Path, questions: int, choices: int, *, title: str = "", dpi: int = 300) -> dict[str, Path]:
    """Write the standard sheet as PNG, PDF (A4 at `dpi`) and template JSON; return the three paths."""
    template = standard_template(questions, choices, title)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"omr-sheet-{questions}q-{choices}c"
    paths = {kind: out_dir / f"{stem}.{kind}" for kind in ("png", "pdf", "json")}
    image = render_sheet(template, dpi=dpi)
    image.save(paths["png"], dpi=(dpi, dpi))
    image.save(paths["pdf"], "PDF", resolution=float(dpi))
    paths["json"].write_text(json.dumps(template.to_dict(), indent=1) + "\n", encoding="utf-8")
    return paths


def _mark_points(template: Template, answers: Answers, identifier: str) -> list[tuple[float, float]]:
    by_number = {q.number: q for q in template.questions}
    points: list[tuple[float, float]] = []
    for number, chosen in answers.items():
        letters = [chosen] if isinstance(chosen, str) else list(chosen)
        for letter in letters:
            points.append(by_number[number].bubbles[template.choices.index(letter)])
    if len(identifier) > len(template.identifier) or (identifier and not identifier.isdigit()):
        raise ValueError(f"identifier must be at most {len(template.identifier)} digits")
    points.extend(template.identifier[pos][int(d)] for pos, d in enumerate(identifier))
    return points


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)
