"""The OMR template: where every bubble of a sheet is, in coordinates relative to its four corner fiducials.

Guarantees:
- All geometry is normalised to the fiducial frame: (0, 0) is the centre of the top-left fiducial, (1, 1) the
  centre of the bottom-right one; `x` runs along the frame width, `y` along its height. Sizes (bubble radius,
  fiducial side) are fractions of the frame width. A template therefore works at any dpi and any camera distance.
- `Template.from_dict` accepts only well-formed templates and raises `PermanentError("invalid_input")` naming
  the offending field; everything downstream may trust the geometry it gets.
- Fiducials are a fixed convention, not described per template: four solid squares centred on the frame corners,
  the top-left one with a hollow centre (`FIDUCIAL_HOLE`), each with clear paper around it (about half its side).
  A template describes everything else.
- Pure Python: importing this module costs nothing (no cv2, numpy or PIL).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ai_worker.errors import INVALID_INPUT, PermanentError

SCHEMA = "ai-worker/omr-template@1"
MAX_QUESTIONS = 300  # bounds the work and the result size a payload template can ask for
MAX_CHOICES = 10  # one bubble per digit is the widest row the reader measures
ID_DIGIT_BUBBLES = 10  # an identifier position has one bubble per digit 0-9
MAX_ID_POSITIONS = 16
COORD_MARGIN = 0.1  # bubbles may sit slightly outside the fiducial frame, not far outside it
MIN_ASPECT, MAX_ASPECT = 0.25, 4.0  # frame height / width; beyond this fiducials are not page corners
MAX_BUBBLE_RADIUS = 0.05  # a fraction of the frame width; larger "bubbles" are not bubbles
MIN_BUBBLE_RADIUS = 0.002
# Fiducial convention shared by every template: four solid squares at the frame corners; the top-left one has a
# white square hole of this fraction of its side, which tells the reader which way up the page is.
FIDUCIAL_HOLE = 0.4

Point = tuple[float, float]


@dataclass(frozen=True)
class Question:
    number: int
    bubbles: tuple[Point, ...]  # one centre per choice, in choice order


@dataclass(frozen=True)
class Label:
    """Printed text, used only when rendering a sheet; the reader ignores it."""

    text: str
    x: float
    y: float
    size: float  # text height as a fraction of the frame width
    anchor: str = "mm"  # PIL text anchor: "mm" centred, "lm" left-middle, "rm" right-middle


@dataclass(frozen=True)
class Template:
    frame_width: float  # distance between fiducial centres, any unit (the ratio is what matters)
    frame_height: float
    fiducial_size: float
    bubble_radius: float
    choices: tuple[str, ...]
    questions: tuple[Question, ...]
    identifier: tuple[tuple[Point, ...], ...] = ()  # one column of ten bubbles (digits 0-9) per position
    title: str = ""
    labels: tuple[Label, ...] = ()
    page: Mapping[str, float] = field(default_factory=dict)  # width/height/frame_left/frame_top, for rendering

    @property
    def aspect(self) -> float:
        return self.frame_height / self.frame_width

    def prefix(self, question_count: int) -> Template:
        """The same sheet reading only its first `question_count` questions."""
        return Template(
            frame_width=self.frame_width,
            frame_height=self.frame_height,
            fiducial_size=self.fiducial_size,
            bubble_radius=self.bubble_radius,
            choices=self.choices,
            questions=self.questions[:question_count],
            identifier=self.identifier,
            title=self.title,
            labels=self.labels,
            page=self.page,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "title": self.title,
            "frame": {"width": self.frame_width, "height": self.frame_height},
            "fiducial_size": self.fiducial_size,
            "bubble_radius": self.bubble_radius,
            "choices": list(self.choices),
            "questions": [{"number": q.number, "bubbles": [list(p) for p in q.bubbles]} for q in self.questions],
            "identifier": [[list(p) for p in column] for column in self.identifier],
            "labels": [
                {"text": lb.text, "x": lb.x, "y": lb.y, "size": lb.size, "anchor": lb.anchor} for lb in self.labels
            ],
            "page": dict(self.page),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Template:
        """Validate and build; PermanentError(invalid_input) says which field is wrong."""
        if not isinstance(data, Mapping):
            _invalid("template", "must be a JSON object")
        schema = data.get("schema", SCHEMA)
        if schema != SCHEMA:
            _invalid("template.schema", f"is {schema!r}, this reader understands {SCHEMA!r}")
        frame = data.get("frame")
        if not isinstance(frame, Mapping):
            _invalid("template.frame", "must be an object {width, height}")
        width = _positive(frame.get("width"), "template.frame.width")
        height = _positive(frame.get("height"), "template.frame.height")
        if not MIN_ASPECT <= height / width <= MAX_ASPECT:
            _invalid("template.frame", f"height/width must be between {MIN_ASPECT} and {MAX_ASPECT}")
        radius = _positive(data.get("bubble_radius"), "template.bubble_radius")
        if not MIN_BUBBLE_RADIUS <= radius <= MAX_BUBBLE_RADIUS:
            _invalid("template.bubble_radius", f"must be between {MIN_BUBBLE_RADIUS} and {MAX_BUBBLE_RADIUS}")
        fiducial = _positive(data.get("fiducial_size"), "template.fiducial_size")
        if fiducial > 0.2:
            _invalid("template.fiducial_size", "must be at most 0.2 of the frame width")
        choices = _choices(data.get("choices"))
        questions = _questions(data.get("questions"), len(choices))
        identifier = _identifier(data.get("identifier", []))
        title = data.get("title", "")
        if not isinstance(title, str):
            _invalid("template.title", "must be a string")
        return cls(
            frame_width=width,
            frame_height=height,
            fiducial_size=fiducial,
            bubble_radius=radius,
            choices=choices,
            questions=questions,
            identifier=identifier,
            title=title,
            labels=_labels(data.get("labels", [])),
            page=_page(data.get("page", {})),
        )


def _invalid(where: str, what: str) -> NoReturn:
    raise PermanentError(INVALID_INPUT, f"{where} {what}")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _invalid(where, f"must be a finite number, got {value!r}")
    return float(value)


def _positive(value: Any, where: str) -> float:
    number = _number(value, where)
    if number <= 0:
        _invalid(where, f"must be > 0, got {number}")
    return number


def _point(value: Any, where: str) -> Point:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        _invalid(where, "must be a point [x, y]")
    x, y = _number(value[0], where), _number(value[1], where)
    if not (-COORD_MARGIN <= x <= 1 + COORD_MARGIN and -COORD_MARGIN <= y <= 1 + COORD_MARGIN):
        _invalid(where, f"[{x}, {y}] lies outside the fiducial frame (coordinates are fractions of it)")
    return x, y


def _points(value: Any, count: int, where: str) -> tuple[Point, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != count:
        _invalid(where, f"must be a list of {count} points [x, y]")
    return tuple(_point(p, f"{where}[{i}]") for i, p in enumerate(value))


def _choices(value: Any) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not 2 <= len(value) <= MAX_CHOICES:
        _invalid("template.choices", f"must be a list of 2 to {MAX_CHOICES} labels")
    if not all(isinstance(c, str) and c for c in value) or len(set(value)) != len(value):
        _invalid("template.choices", "labels must be distinct non-empty strings")
    return tuple(value)


def _questions(value: Any, n_choices: int) -> tuple[Question, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not 1 <= len(value) <= MAX_QUESTIONS:
        _invalid("template.questions", f"must be a list of 1 to {MAX_QUESTIONS} questions")
    questions: list[Question] = []
    for i, item in enumerate(value):
        where = f"template.questions[{i}]"
        if not isinstance(item, Mapping):
            _invalid(where, "must be an object {number, bubbles}")
        number = item.get("number")
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            _invalid(f"{where}.number", "must be a positive integer")
        questions.append(Question(number, _points(item.get("bubbles"), n_choices, f"{where}.bubbles")))
    if len({q.number for q in questions}) != len(questions):
        _invalid("template.questions", "numbers must be unique")
    return tuple(questions)


def _identifier(value: Any) -> tuple[tuple[Point, ...], ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) > MAX_ID_POSITIONS:
        _invalid("template.identifier", f"must be a list of at most {MAX_ID_POSITIONS} columns")
    return tuple(_points(col, ID_DIGIT_BUBBLES, f"template.identifier[{i}]") for i, col in enumerate(value))


def _labels(value: Any) -> tuple[Label, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        _invalid("template.labels", "must be a list")
    labels: list[Label] = []
    for i, item in enumerate(value):
        where = f"template.labels[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("text"), str):
            _invalid(where, "must be an object {text, x, y, size}")
        anchor = item.get("anchor", "mm")
        if anchor not in ("mm", "lm", "rm"):
            _invalid(f"{where}.anchor", "must be mm, lm or rm")
        labels.append(
            Label(
                text=item["text"],
                x=_number(item.get("x"), f"{where}.x"),
                y=_number(item.get("y"), f"{where}.y"),
                size=_positive(item.get("size"), f"{where}.size"),
                anchor=anchor,
            )
        )
    return tuple(labels)


def _page(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        _invalid("template.page", "must be an object")
    return {str(k): _positive(v, f"template.page.{k}") for k, v in value.items()}
