"""The `problem_generation` job: one multiple-choice problem from OCR text, through OpenAI chat completions.

Guarantees:
- The model answers under a strict JSON schema (ai_worker.jobs.problem_schema) and the answer is validated again
  here. An answer that fails validation gets exactly one repair request (quoting the validation error); a second
  failure is the permanent error `llm_invalid_output`.
- Prompts are package data in Korean and English (ai_worker/jobs/prompts/), chosen by `payload.language`.
- Token usage of every call of the job is summed into the result.
- Throttling and 5xx: when the server asks for a pause no longer than AI_WORKER_LLM_INLINE_RETRY_MAX_S (or gives no
  Retry-After, then 1 s, 2 s, ...), the handler waits and retries, at most AI_WORKER_LLM_MAX_RETRIES times; a
  longer pause, or the last failure, raises `TransientError` carrying the server's Retry-After so the worker's
  visibility backoff waits instead of a job slot. The client's own retries are off (one policy, not two).
- Credentials, permission, billing (`insufficient_quota`) and unknown-model errors open the shared LLM circuit
  breaker (ai_worker.jobs.breaker): jobs then fail fast and retryably with `llm_provider_unavailable` without
  calling the API until its open period ends. API key and base URL come from OPENAI_API_KEY / OPENAI_BASE_URL.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any, Final

from ai_worker.config import LlmSettings
from ai_worker.errors import INVALID_INPUT, PermanentError, TransientError
from ai_worker.jobs.breaker import Breaker
from ai_worker.jobs.context import JobContext
from ai_worker.jobs.problem_schema import RESPONSE_FORMAT, InvalidOutput, parse_problem
from ai_worker.jobs.retry_after import retry_after_s

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.chat import ChatCompletion

LANGUAGES: Final = ("ko", "en")
DIFFICULTIES: Final = ("easy", "medium", "hard")
UNSPECIFIED: Final = {"ko": "지정 없음", "en": "not specified"}
MAX_SUBJECT_CHARS: Final = 100
INLINE_BACKOFF_S: Final = 1.0  # first in-handler wait after a 429/5xx without Retry-After; doubles per retry

LLM_INVALID_OUTPUT = "llm_invalid_output"
LLM_REFUSED = "llm_refused"
LLM_REQUEST_REJECTED = "llm_request_rejected"
LLM_RATE_LIMITED = "llm_rate_limited"
LLM_PROVIDER_ERROR = "llm_provider_error"

_CLIENTS: dict[tuple[str | None, str, float], OpenAI] = {}


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    calls: int = 0

    def add(self, completion: ChatCompletion) -> None:
        self.calls += 1
        if completion.usage is not None:
            self.prompt_tokens += completion.usage.prompt_tokens
            self.completion_tokens += completion.usage.completion_tokens
            self.total_tokens += completion.usage.total_tokens


@dataclass(frozen=True)
class Request:
    text: str
    language: str
    subject: str | None
    difficulty: str | None


def handle(ctx: JobContext) -> dict[str, Any]:
    settings = ctx.settings.llm
    request = read_request(ctx.payload, settings)
    breaker = Breaker("llm", settings.breaker_file, settings.breaker_open_s, ctx.settings.metrics_namespace)
    breaker.admit()
    usage = Usage()
    messages = build_messages(request)
    completion = _complete(settings, breaker, messages, usage)
    content = _content(completion)
    repaired = False
    try:
        problem = parse_problem(content)
    except InvalidOutput as first:
        ctx.log.warning("problem_generation: invalid output, asking for one repair: %s", first)
        repair = prompt("repair", request.language, error=str(first))
        messages = [*messages, {"role": "assistant", "content": content or ""}, {"role": "user", "content": repair}]
        completion = _complete(settings, breaker, messages, usage)
        try:
            problem = parse_problem(_content(completion))
        except InvalidOutput as second:
            raise PermanentError(LLM_INVALID_OUTPUT, f"invalid after one repair attempt: {second}") from second
        repaired = True
    return {
        **problem,
        "language": request.language,
        "model": completion.model,
        "repaired": repaired,
        "usage": vars(usage),
    }


def read_request(payload: dict[str, Any], settings: LlmSettings) -> Request:
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        raise PermanentError(INVALID_INPUT, "text (the OCR text to build a problem from) must be a non-empty string")
    if len(text) > settings.max_input_chars:
        raise PermanentError(INVALID_INPUT, f"text has {len(text)} characters, the limit is {settings.max_input_chars}")
    language = payload.get("language", "ko")
    if language not in LANGUAGES:
        raise PermanentError(INVALID_INPUT, f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    subject = payload.get("subject")
    if subject is not None and (not isinstance(subject, str) or len(subject) > MAX_SUBJECT_CHARS):
        raise PermanentError(INVALID_INPUT, f"subject must be a string of at most {MAX_SUBJECT_CHARS} characters")
    difficulty = payload.get("difficulty")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise PermanentError(INVALID_INPUT, f"difficulty must be one of {', '.join(DIFFICULTIES)}")
    return Request(text.strip(), language, subject, difficulty)


def prompt(role: str, language: str, **values: str) -> str:
    """The `problem_generation_<role>.<language>.txt` template with `values` substituted."""
    source = resources.files("ai_worker.jobs.prompts").joinpath(f"problem_generation_{role}.{language}.txt")
    return Template(source.read_text(encoding="utf-8")).substitute(values).strip()


def build_messages(request: Request) -> list[dict[str, str]]:
    unspecified = UNSPECIFIED[request.language]
    user = prompt(
        "user",
        request.language,
        text=request.text,
        subject=request.subject or unspecified,
        difficulty=request.difficulty or unspecified,
    )
    return [{"role": "system", "content": prompt("system", request.language)}, {"role": "user", "content": user}]


def _content(completion: ChatCompletion) -> str | None:
    message = completion.choices[0].message
    if message.refusal:
        raise PermanentError(LLM_REFUSED, f"the model refused: {message.refusal}")
    return message.content


def _complete(settings: LlmSettings, breaker: Breaker, messages: list[dict[str, str]], usage: Usage) -> ChatCompletion:
    """One chat completion, with the short in-handler retries described in the module docstring."""
    import openai

    try:
        client = _client(settings)
    except openai.OpenAIError as exc:  # no OPENAI_API_KEY: nothing the provider could accept
        raise breaker.trip(f"{type(exc).__name__}: {exc}") from exc
    attempt = 0
    while True:
        try:
            # Messages and schema are plain dicts (templates, JSON Schema), not the SDK's TypedDicts.
            completion = client.chat.completions.create(  # type: ignore[call-overload]
                model=settings.model,
                messages=messages,
                response_format=RESPONSE_FORMAT,
                max_completion_tokens=settings.max_output_tokens,
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
            raise breaker.trip(f"{type(exc).__name__}: {exc}") from exc
        except openai.RateLimitError as exc:
            if exc.code == "insufficient_quota":  # billing, not throttling: waiting a minute will not help
                raise breaker.trip(f"{type(exc).__name__}: {exc}") from exc
            delay = _inline_delay(settings, exc, attempt)
            if delay is None:
                raise TransientError(LLM_RATE_LIMITED, str(exc), retry_after_s=retry_after_s(exc)) from exc
        except openai.BadRequestError as exc:
            raise PermanentError(LLM_REQUEST_REJECTED, str(exc)) from exc
        except openai.APIStatusError as exc:
            delay = _inline_delay(settings, exc, attempt) if exc.status_code >= 500 else None
            if delay is None:
                raise TransientError(LLM_PROVIDER_ERROR, str(exc), retry_after_s=retry_after_s(exc)) from exc
        except openai.APIConnectionError as exc:  # includes timeouts: the timeout already cost a full wait
            raise TransientError(LLM_PROVIDER_ERROR, f"{type(exc).__name__}: {exc}") from exc
        except openai.APIError as exc:  # e.g. a response that does not parse: the provider's fault, try later
            raise TransientError(LLM_PROVIDER_ERROR, f"{type(exc).__name__}: {exc}") from exc
        else:
            usage.add(completion)
            breaker.record_success()
            return completion
        time.sleep(delay)
        attempt += 1


def _client(settings: LlmSettings) -> OpenAI:
    """A warm client per base URL, key and timeout (all read from the environment by the openai package)."""
    key_id = hashlib.sha256(os.environ.get("OPENAI_API_KEY", "").encode()).hexdigest()
    key = (os.environ.get("OPENAI_BASE_URL"), key_id, settings.timeout_s)
    if key not in _CLIENTS:
        from openai import OpenAI

        _CLIENTS[key] = OpenAI(max_retries=0, timeout=settings.timeout_s)
    return _CLIENTS[key]


def _inline_delay(settings: LlmSettings, exc: Exception, attempt: int) -> float | None:
    """How long to wait before retrying inside the handler, or None to hand the job back to the queue."""
    if attempt >= settings.max_retries:
        return None
    retry_after = retry_after_s(exc)
    delay = retry_after if retry_after is not None else INLINE_BACKOFF_S * 2**attempt
    return delay if delay <= settings.inline_retry_max_s else None
