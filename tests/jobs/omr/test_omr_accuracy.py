"""The omr_grading acceptance set: 200 seeded sheets under scan and phone-photo conditions (issue 4).

Prints the confusion counts (truth x reading) per condition; asserts >= 99.5 % of answers right overall, 100 % on
clean scans, and the identifier right on >= 99 % of sheets. Rendered at 150 dpi so it runs in well under a minute.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from omr_synth import CONDITIONS, Sheet, generate

from ai_worker.jobs.context import JobContext
from ai_worker.jobs.omr import handle

SEED = 20261127
SHEETS = 200
TRUTHS = ("blank", "single", "multiple")
READINGS = ("blank", "right", "wrong", "multiple")


def _truth_kind(marked: tuple[int, ...]) -> str:
    return "blank" if not marked else "single" if len(marked) == 1 else "multiple"


def _reading_kind(answer: dict[str, Any], marked: tuple[int, ...], letters: str) -> str:
    if answer["status"] == "blank":
        return "blank"
    if answer["status"] == "multiple":
        return "multiple"
    return "right" if len(marked) == 1 and answer["choice"] == letters[marked[0]] else "wrong"


def _is_correct(answer: dict[str, Any], marked: tuple[int, ...], letters: str) -> bool:
    """Right status, right choice, and for multiples the right set of marked choices."""
    return answer["marked"] == [letters[i] for i in marked]


def _read(sheet: Sheet) -> dict[str, Any]:
    payload = {"question_count": sheet.questions, "n_choices": sheet.choices}
    return handle(JobContext.for_test("omr_grading", payload, sheet.data))


@pytest.mark.slow
def test_generated_set_meets_accuracy_thresholds() -> None:
    confusion: Counter[tuple[str, str, str]] = Counter()
    answers_total: Counter[str] = Counter()
    answers_right: Counter[str] = Counter()
    ids_right = 0
    letters = "ABCDE"
    sheets = generate(SEED, SHEETS)
    for sheet in sheets:
        result = _read(sheet)
        condition = sheet.truth.condition
        assert result["aligned"] is True
        for answer, marked in zip(result["answers"], sheet.truth.answers, strict=True):
            confusion[condition, _truth_kind(marked), _reading_kind(answer, marked, letters)] += 1
            answers_total[condition] += 1
            answers_right[condition] += _is_correct(answer, marked, letters)
        ids_right += result["identifier"]["value"] == sheet.truth.identifier

    pencil = sum(s.truth.instrument == "pencil" for s in sheets)
    erasures = sum(s.truth.erasures for s in sheets)
    print(f"\nOMR confusion counts over {SHEETS} sheets (rows: truth, columns: reading)")
    print(f"  {pencil} pencil and {SHEETS - pencil} pen sheets; {erasures} erased marks that must read as blank")
    for condition in CONDITIONS:
        print(f"  {condition}: {answers_right[condition]}/{answers_total[condition]} answers right")
        for truth in TRUTHS:
            row = "  ".join(f"{r}={confusion[condition, truth, r]:4d}" for r in READINGS)
            print(f"    {truth:8s} {row}")
    overall = sum(answers_right.values()) / sum(answers_total.values())
    print(f"  overall {overall:.4%} of {sum(answers_total.values())} answers; identifiers {ids_right}/{SHEETS}")

    assert answers_right["clean"] == answers_total["clean"] > 0
    assert overall >= 0.995
    assert ids_right >= 0.99 * SHEETS
