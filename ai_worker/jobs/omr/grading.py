"""Answer keys and scores.

Guarantees: an answer key is either a list (item i is question i+1; null leaves it ungraded) or an object
{question number: answer}; an answer is a choice letter (case-insensitive) or a 0-based choice index (0 = A).
Anything else, or a question the sheet does not have, is PermanentError(invalid_input). Only questions with a key
are graded; a blank or multiple answer is never correct.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ai_worker.errors import INVALID_INPUT, PermanentError


def parse_answer_key(raw: Any, numbers: Sequence[int], choices: Sequence[str]) -> dict[int, int]:
    """{question number: choice index} for the questions that have a key."""
    if isinstance(raw, Mapping):
        items: list[tuple[Any, Any]] = list(raw.items())
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        if len(raw) > len(numbers):
            _invalid(f"has {len(raw)} entries but the sheet is read for {len(numbers)} questions")
        items = [(numbers[i], answer) for i, answer in enumerate(raw)]
    else:
        _invalid("must be a list or an object {question: answer}")
    known = set(numbers)
    key: dict[int, int] = {}
    for question, answer in items:
        number = _question_number(question)
        if number not in known:
            _invalid(f"names question {question!r}, which is not on the sheet as read")
        if answer is not None:
            key[number] = _choice_index(answer, choices, number)
    return key


def score(answers: list[dict[str, Any]], key: Mapping[int, int], choices: Sequence[str]) -> dict[str, Any]:
    """Mark each answer with `correct` where a key exists, and return the totals."""
    totals = {"correct": 0, "incorrect": 0, "blank": 0, "multiple": 0}
    for answer in answers:
        expected = key.get(answer["question"])
        if expected is None:
            continue
        answer["correct"] = answer["choice"] == choices[expected]
        if answer["correct"]:
            totals["correct"] += 1
        elif answer["status"] in ("blank", "multiple"):
            totals[answer["status"]] += 1
        else:
            totals["incorrect"] += 1
    graded = len(key)
    percent = round(100.0 * totals["correct"] / graded, 2) if graded else None
    return {**totals, "graded": graded, "percent": percent}


def _invalid(what: str) -> NoReturn:
    raise PermanentError(INVALID_INPUT, f"answer_key {what}")


def _question_number(question: Any) -> int:
    if isinstance(question, int) and not isinstance(question, bool):
        return question
    if isinstance(question, str) and question.strip().isdigit():
        return int(question)
    _invalid(f"question {question!r} is not a question number")


def _choice_index(answer: Any, choices: Sequence[str], number: int) -> int:
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices):
        return answer
    if isinstance(answer, str):
        upper = [c.upper() for c in choices]
        if answer.strip().upper() in upper:
            return upper.index(answer.strip().upper())
    _invalid(f"answer {answer!r} for question {number} is not one of {list(choices)} or an index 0-{len(choices) - 1}")
