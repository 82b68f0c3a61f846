"""problem_generation with the real openai client against a local /v1/chat/completions server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai_fake import VALID_PROBLEM, Completion, HttpError, OpenAIFake

from ai_worker.config import LlmSettings, Settings
from ai_worker.errors import INVALID_INPUT, PermanentError, TransientError
from ai_worker.jobs import problem_generation as pg
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.problem_schema import N_CHOICES, RESPONSE_FORMAT

OCR_TEXT = "3. 이차방정식 x^2 - 5x + 6 = 0 의 두 근을 구하시오."


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIFake]:
    fake = OpenAIFake()
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    yield fake
    fake.close()


@pytest.fixture
def run(openai_server: OpenAIFake, tmp_path: Path) -> Any:
    def run(payload: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
        fields = {"breaker_file": str(tmp_path / "breaker-llm.json"), "inline_retry_max_s": 2.0, **overrides}
        settings = Settings(llm=LlmSettings(**fields))
        payload = {"text": OCR_TEXT} if payload is None else payload
        ctx = JobContext.for_test("problem_generation", payload, settings=settings)
        return pg.handle(ctx)

    return run


def invalid(problem_changes: dict[str, Any]) -> Completion:
    return Completion(json.dumps({**VALID_PROBLEM, **problem_changes}))


def test_success_with_structured_output_and_usage(run: Any, openai_server: OpenAIFake) -> None:
    result = run({"text": OCR_TEXT, "language": "ko", "subject": "수학", "difficulty": "easy"})
    assert {k: result[k] for k in VALID_PROBLEM} == VALID_PROBLEM
    assert len(result["choices"]) == N_CHOICES
    assert result["language"] == "ko" and result["repaired"] is False
    assert result["model"] == "gpt-4o-mini-2024-07-18"
    assert result["usage"] == {"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200, "calls": 1}

    (call,) = openai_server.calls
    body = call["body"]
    assert call["auth"] == "Bearer sk-test"
    assert body["model"] == "gpt-4o-mini"
    assert body["response_format"] == RESPONSE_FORMAT
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["max_completion_tokens"] == 2048
    system, user = body["messages"]
    assert system["role"] == "system" and "객관식" in system["content"]
    assert OCR_TEXT in user["content"] and "수학" in user["content"] and "easy" in user["content"]


def test_english_prompt(run: Any, openai_server: OpenAIFake) -> None:
    run({"text": "Solve 2x + 3 = 7.", "language": "en"})
    system, user = openai_server.calls[0]["body"]["messages"]
    assert "multiple-choice" in system["content"] and "English" in system["content"]
    assert "not specified" in user["content"]


def test_429_then_success_honours_retry_after(run: Any, openai_server: OpenAIFake) -> None:
    openai_server.replies.append(HttpError(429, "requests", "rate_limit_exceeded", {"Retry-After": "0.4"}))
    started = time.monotonic()
    result = run()
    assert result["body"] == VALID_PROBLEM["body"]
    first, second = openai_server.calls
    assert second["at"] - first["at"] >= 0.4  # waited as long as the server asked
    assert time.monotonic() - started < 5
    assert result["usage"]["calls"] == 1  # failed calls carry no usage


def test_long_retry_after_goes_back_to_the_queue(run: Any, openai_server: OpenAIFake) -> None:
    openai_server.replies.append(HttpError(429, "requests", "rate_limit_exceeded", {"retry-after-ms": "90000"}))
    with pytest.raises(TransientError) as err:
        run()
    assert err.value.code == pg.LLM_RATE_LIMITED
    assert err.value.retry_after_s == 90.0
    assert len(openai_server.calls) == 1


def test_5xx_retried_inline_then_handed_back(run: Any, openai_server: OpenAIFake) -> None:
    openai_server.replies.extend([HttpError(503, "server_error", headers={"Retry-After": "0.1"})] * 3)
    with pytest.raises(TransientError) as err:
        run(max_retries=2)
    assert err.value.code == pg.LLM_PROVIDER_ERROR
    assert len(openai_server.calls) == 3  # the first try and two retries


def test_invalid_json_then_repaired(run: Any, openai_server: OpenAIFake) -> None:
    openai_server.replies.append(Completion('{"body": "unterminated'))
    result = run()
    assert result["repaired"] is True
    assert result["choices"] == VALID_PROBLEM["choices"]
    assert result["usage"] == {"prompt_tokens": 240, "completion_tokens": 160, "total_tokens": 400, "calls": 2}
    repair_messages = openai_server.calls[1]["body"]["messages"]
    assert repair_messages[2] == {"role": "assistant", "content": '{"body": "unterminated'}
    assert repair_messages[3]["role"] == "user" and "not valid JSON" in repair_messages[3]["content"]


def test_wrong_number_of_choices_then_repaired(run: Any, openai_server: OpenAIFake) -> None:
    openai_server.replies.append(invalid({"choices": ["1", "5", "6", "-5"]}))
    assert run()["repaired"] is True
    assert "choices" in openai_server.calls[1]["body"]["messages"][3]["content"]


def test_invalid_twice_fails_permanently(run: Any, openai_server: OpenAIFake) -> None:
    openai_server.replies.extend([Completion("not json"), invalid({"choices": ["a", "a", "b", "c", "d"]})])
    with pytest.raises(PermanentError) as err:
        run()
    assert err.value.code == pg.LLM_INVALID_OUTPUT
    assert "distinct" in err.value.message
    assert len(openai_server.calls) == 2  # one repair attempt, no more


def test_refusal_is_permanent(run: Any, openai_server: OpenAIFake) -> None:
    openai_server.replies.append(Completion(None, refusal="I can't help with that."))
    with pytest.raises(PermanentError) as err:
        run()
    assert err.value.code == pg.LLM_REFUSED


@pytest.mark.parametrize(
    "reply",
    [
        HttpError(401, "invalid_request_error", "invalid_api_key"),
        HttpError(403, "invalid_request_error", "unsupported_country_region_territory"),
        HttpError(404, "invalid_request_error", "model_not_found"),
        HttpError(429, "insufficient_quota", "insufficient_quota"),
    ],
)
def test_auth_and_billing_open_the_breaker(run: Any, openai_server: OpenAIFake, reply: HttpError) -> None:
    openai_server.replies.append(reply)
    with pytest.raises(TransientError) as first:
        run()
    assert first.value.code == "llm_provider_unavailable"
    with pytest.raises(TransientError) as second:
        run()
    assert second.value.code == "llm_provider_unavailable"
    assert len(openai_server.calls) == 1  # the open breaker spared the second call


def test_missing_api_key_opens_the_breaker(
    run: Any, openai_server: OpenAIFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(TransientError) as err:
        run()
    assert err.value.code == "llm_provider_unavailable"
    assert "OPENAI_API_KEY" in err.value.message
    assert openai_server.calls == []


def test_bad_request_is_permanent(run: Any, openai_server: OpenAIFake) -> None:
    openai_server.replies.append(HttpError(400, "invalid_request_error", "context_length_exceeded"))
    with pytest.raises(PermanentError) as err:
        run()
    assert err.value.code == pg.LLM_REQUEST_REJECTED


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 101}, "101 characters, the limit is 100"),
        ({"text": "ok", "language": "ja"}, "language"),
        ({"text": "ok", "difficulty": "extreme"}, "difficulty"),
        ({"text": "ok", "subject": 5}, "subject"),
    ],
)
def test_invalid_input(run: Any, openai_server: OpenAIFake, payload: dict[str, Any], message: str) -> None:
    with pytest.raises(PermanentError, match=message) as err:
        run(payload, max_input_chars=100)
    assert err.value.code == INVALID_INPUT
    assert openai_server.calls == []


def test_every_language_ships_every_prompt() -> None:
    for language in pg.LANGUAGES:
        for role, values in (("system", {}), ("user", {"text": "t", "subject": "s", "difficulty": "d"})):
            assert pg.prompt(role, language, **values)
        assert "E!" in pg.prompt("repair", language, error="E!")
