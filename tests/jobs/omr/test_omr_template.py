"""The template schema (validation, JSON round trip) and the geometry of the project's standard sheet."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from ai_worker.errors import INVALID_INPUT, PermanentError
from ai_worker.jobs.omr.layout import MAX_QUESTIONS, standard_template
from ai_worker.jobs.omr.template import Template


def test_json_round_trip_is_lossless() -> None:
    template = standard_template(100, 5, "Final exam")
    assert Template.from_dict(json.loads(json.dumps(template.to_dict()))) == template


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_set("schema", "ai-worker/omr-template@9"), "template.schema"),
        (_set("frame", [186, 273]), "template.frame"),
        (_set("frame.width", 0), "template.frame.width"),
        (_set("frame.height", 5000), "height/width"),
        (_set("frame.width", True), "template.frame.width"),
        (_set("bubble_radius", 0.2), "template.bubble_radius"),
        (_set("fiducial_size", 0.5), "template.fiducial_size"),
        (_set("choices", ["A"]), "template.choices"),
        (_set("choices", ["A", "A", "C", "D"]), "distinct"),
        (_set("questions", []), "template.questions"),
        (_set("questions.0.number", 0), "template.questions[0].number"),
        (_set("questions.1.number", 1), "unique"),
        (_set("questions.0.bubbles", [[0.1, 0.5]]), "template.questions[0].bubbles"),
        (_set("questions.0.bubbles.2", [1.5, 0.5]), "outside the fiducial frame"),
        (_set("questions.0.bubbles.2", [0.3, float("nan")]), "finite number"),
        (_set("identifier.3", [[0.1, 0.1]] * 9), "template.identifier[3]"),
        (_set("labels.0.anchor", "xx"), "anchor"),
        (_set("page.width", -1), "template.page.width"),
    ],
)
def test_invalid_templates_are_refused_naming_the_field(edit: Callable[[dict[str, Any]], None], fragment: str) -> None:
    data = copy.deepcopy(standard_template(10, 4).to_dict())
    edit(data)
    with pytest.raises(PermanentError) as info:
        Template.from_dict(data)
    assert info.value.code == INVALID_INPUT
    assert fragment in info.value.message


def test_minimal_template_needs_only_geometry() -> None:
    minimal = {
        "frame": {"width": 1, "height": 1.4},
        "fiducial_size": 0.05,
        "bubble_radius": 0.015,
        "choices": ["T", "F"],
        "questions": [{"number": 7, "bubbles": [[0.2, 0.5], [0.3, 0.5]]}],
    }
    template = Template.from_dict(minimal)
    assert template.identifier == () and template.labels == () and template.questions[0].number == 7


def test_question_positions_do_not_depend_on_the_question_count() -> None:
    full = standard_template(MAX_QUESTIONS, 5)
    assert standard_template(37, 5).questions == full.questions[:37]
    four = standard_template(MAX_QUESTIONS, 4)
    assert all(q4.bubbles == q5.bubbles[:4] for q4, q5 in zip(four.questions, full.questions, strict=True))
    assert four.identifier == full.identifier


def test_standard_bubbles_are_inside_the_frame_and_never_touch() -> None:
    template = standard_template(MAX_QUESTIONS, 5)
    points = [p for q in template.questions for p in q.bubbles] + [p for c in template.identifier for p in c]
    xy = np.array(points) * np.array([template.frame_width, template.frame_height])  # millimetres
    radius_mm = template.bubble_radius * template.frame_width
    assert xy.min() >= 0 and (xy <= [template.frame_width, template.frame_height]).all()
    gaps = [float(np.linalg.norm(a - b)) for a, b in itertools.combinations(xy, 2)]
    assert min(gaps) >= 2 * radius_mm + 1.0  # at least 1 mm of paper between any two bubbles
    fiducial_reach = template.fiducial_size * template.frame_width / 2 + radius_mm
    corners = np.array([[0, 0], [template.frame_width, 0], [0, template.frame_height]])
    corners = np.vstack([corners, [[template.frame_width, template.frame_height]]])
    assert min(float(np.abs(xy - c).max(axis=1).min()) for c in corners) > fiducial_reach


@pytest.mark.parametrize(("questions", "choices"), [(0, 5), (101, 5), (20, 3), (20, 6)])
def test_standard_sheet_sizes_are_bounded(questions: int, choices: int) -> None:
    with pytest.raises(PermanentError) as info:
        standard_template(questions, choices)
    assert info.value.code == INVALID_INPUT
