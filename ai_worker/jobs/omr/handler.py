"""The omr_grading job: read a scanned or photographed answer sheet, its student identifier and, with a key, grade it.

Guarantees: the payload and any template are validated before the input is fetched (invalid_input); the image is
decoded under the byte and pixel caps (ai_worker.jobs.imaging); a sheet that cannot be aligned, or whose bubble
grid is not where the template says, fails with alignment_failed: answers are never reported from an unaligned
page. Memory is a few copies of the grayscale page (~9 MB each for A4 at 300 dpi), far under 1 GiB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ai_worker.errors import INVALID_INPUT, PermanentError
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.imaging import decode_image, image_size, is_pdf
from ai_worker.jobs.omr import bubbles
from ai_worker.jobs.omr.align import ALIGNMENT_FAILED, align
from ai_worker.jobs.omr.grading import parse_answer_key, score
from ai_worker.jobs.omr.layout import CHOICE_SETS, standard_template
from ai_worker.jobs.omr.template import Template

OMR_VERSION = "omr/1"
ALIGNMENT_METHOD = "fiducials"  # homography through the four corner fiducial centres
DEFAULT_CHOICES = 5
HALF_DECODE_MIN_SIDE = 2400  # short side from which a JPEG is decoded at half size: an A4 page at 290 dpi or more


def handle(ctx: JobContext) -> dict[str, Any]:
    payload = ctx.payload
    template, source = _template(payload)
    key = None
    if payload.get("answer_key") is not None:
        key = parse_answer_key(payload["answer_key"], [q.number for q in template.questions], template.choices)
    data = ctx.read_input()
    if is_pdf(data):
        raise PermanentError(INVALID_INPUT, "PDF input is not supported for omr_grading: send a PNG or JPEG image")
    # A large JPEG is decoded at half size by libjpeg (cheap): the reader's canvas needs ~130 dpi on the page.
    reduce = 2 if data and min(image_size(data)) >= HALF_DECODE_MIN_SIDE else 1
    gray = decode_image(data, max_pixels=ctx.settings.vision.max_pixels, grayscale=True, reduce=reduce)
    result = read_sheet(gray, template, mark_fill=ctx.settings.vision.omr_mark_fill)
    result["template"] = source
    if key is not None:
        result["score"] = score(result["answers"], key, template.choices)
    ctx.log.info(
        "omr read %d questions, orientation %d, mode %s",
        len(result["answers"]),
        result["orientation_deg"],
        result["mode"],
    )
    return result


def read_sheet(gray: np.ndarray, template: Template, mark_fill: float = bubbles.DEFAULT_MARK_FILL) -> dict[str, Any]:
    """Align, measure and decide every question and identifier digit of the page in `gray`."""
    alignment = align(gray, template)
    rows = [q.bubbles for q in template.questions] + list(template.identifier)
    centres = np.array([p for row in rows for p in row], dtype=np.float64)
    measured = bubbles.measure(alignment, centres, template.bubble_radius)
    if measured.ring_contrast < bubbles.MIN_RING_CONTRAST:
        raise PermanentError(
            ALIGNMENT_FAILED, "cannot align the sheet: no printed bubbles where the template places them"
        )
    readings: list[bubbles.RowReading] = []
    start = 0
    for row in rows:
        end = start + len(row)
        cut = slice(start, end)
        readings.append(bubbles.decide(measured.fills[cut], mark_fill, measured.low[cut], measured.high[cut]))
        start = end
    n_questions = len(template.questions)
    answers = [_answer(q.number, r, template.choices) for q, r in zip(template.questions, readings, strict=False)]
    identifier = _identifier(readings[n_questions:]) if template.identifier else None
    review = [a["question"] for a in answers if a["needs_review"]]
    return {
        "version": OMR_VERSION,
        "mode": alignment.mode,
        "aligned": True,
        "alignment_method": ALIGNMENT_METHOD,
        "orientation_deg": alignment.orientation_deg,
        "question_count": n_questions,
        "n_choices": len(template.choices),
        "threshold": round(mark_fill, 3),
        "ink_level": round(measured.ink_level, 3),
        "needs_review": bool(review) or bool(identifier and identifier["needs_review"]),
        "review_questions": review,
        "identifier": identifier,
        "answers": answers,
    }


def _answer(number: int, reading: bubbles.RowReading, choices: tuple[str, ...]) -> dict[str, Any]:
    return {
        "question": number,
        "choice": choices[reading.marked[0]] if reading.status == "marked" else None,
        "status": reading.status,
        "confidence": reading.confidence,
        "needs_review": reading.needs_review,
        "marked": [choices[i] for i in reading.marked],
    }


def _identifier(readings: list[bubbles.RowReading]) -> dict[str, Any]:
    digits = [str(r.marked[0]) if r.status == "marked" else None for r in readings]
    statuses = {r.status for r in readings}
    status = "read" if statuses == {"marked"} else "multiple" if "multiple" in statuses else "incomplete"
    confidence = min(r.confidence for r in readings)
    return {
        "value": "".join(d or "" for d in digits) if status == "read" else None,
        "digits": digits,
        "status": status,
        "confidence": confidence,
        "needs_review": status != "read" or confidence < bubbles.REVIEW_BELOW,
    }


def _template(payload: dict[str, Any]) -> tuple[Template, str]:
    """The template to read with (prefix of question_count questions) and where it came from."""
    raw = payload.get("template")
    if raw is not None:
        template, source = Template.from_dict(raw), "payload"
        count = _int_field(payload, "question_count", len(template.questions))
        choices = _int_field(payload, "n_choices", len(template.choices))
        if choices != len(template.choices):
            raise PermanentError(
                INVALID_INPUT, f"n_choices is {choices} but the template has {len(template.choices)} choices"
            )
        if count > len(template.questions):
            raise PermanentError(
                INVALID_INPUT, f"question_count is {count} but the template has {len(template.questions)} questions"
            )
        return template.prefix(count), source
    if payload.get("question_count") is None:
        raise PermanentError(INVALID_INPUT, "payload.question_count is required with the standard sheet")
    choices = _int_field(payload, "n_choices", DEFAULT_CHOICES)
    if choices not in CHOICE_SETS:
        raise PermanentError(INVALID_INPUT, f"n_choices must be 4 or 5 on the standard sheet, got {choices}")
    return standard_template(_int_field(payload, "question_count", 0), choices), "standard"


def _int_field(payload: dict[str, Any], name: str, default: int) -> int:
    value = payload.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PermanentError(INVALID_INPUT, f"payload.{name} must be a positive integer, got {value!r}")
    return value
