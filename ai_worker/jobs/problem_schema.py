"""The generated problem: the JSON schema sent to OpenAI (strict structured output) and our own validation.

Strict mode constrains types, required keys and enums; it does not promise list lengths or distinct choices, so
`parse_problem` checks everything the platform relies on and its error text is what the repair request quotes.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

N_CHOICES: Final = 5  # Korean exam convention: ① to ⑤
MAX_TAGS: Final = 5

RESPONSE_FORMAT: Final[dict[str, Any]] = {
    "type": "json_schema",
    "json_schema": {
        "name": "multiple_choice_problem",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "body": {"type": "string", "description": "The question, self-contained."},
                "choices": {"type": "array", "items": {"type": "string"}, "description": "Exactly 5 options."},
                "answer": {"type": "integer", "enum": list(range(1, N_CHOICES + 1)), "description": "1-based."},
                "difficulty": {"type": "string", "enum": ["easy", "medium", "hard"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "explanation": {"type": "string"},
            },
            "required": ["body", "choices", "answer", "difficulty", "tags", "explanation"],
            "additionalProperties": False,
        },
    },
}


class InvalidOutput(ValueError):
    """The model's answer is not a usable problem; the message says why, for the repair request."""


# Surrounding whitespace is dropped, and what is left must not be empty.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Problem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Text
    choices: list[Text] = Field(min_length=N_CHOICES, max_length=N_CHOICES)
    answer: int = Field(ge=1, le=N_CHOICES, strict=True)
    difficulty: Literal["easy", "medium", "hard"]
    tags: list[Text] = Field(min_length=1, max_length=MAX_TAGS)
    explanation: Text

    @field_validator("choices")
    @classmethod
    def _distinct_choices(cls, choices: list[str]) -> list[str]:
        if len(set(choices)) != len(choices):
            raise ValueError("choices must be distinct")
        return choices


def parse_problem(content: str | None) -> dict[str, Any]:
    """The validated problem as a dict, or InvalidOutput with a short, model-readable reason."""
    if not content:
        raise InvalidOutput("the answer was empty")
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise InvalidOutput(f"the answer is not valid JSON ({exc})") from exc
    try:
        return Problem.model_validate(data).model_dump()
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'output'}: {e['msg']}" for e in exc.errors())
        raise InvalidOutput(reasons) from exc
