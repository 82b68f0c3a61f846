"""Errors are values with a code a producer can act on.

A handler raises `PermanentError` for anything retrying cannot fix (bad input, unsupported type, policy
violations) and `TransientError` for anything that may succeed later (network, throttling, 5xx, timeouts of a
downstream). The worker turns the first into a `failed` result and the second into a `retry` outcome.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorInfo:
    """An error as it travels (job process -> worker -> result document): {code, message, retryable}."""

    code: str
    message: str
    retryable: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JobError(Exception):
    """A job-level error with a stable machine-readable code."""

    retryable: bool = False

    def __init__(self, code: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        # A hint from the downstream (e.g. HTTP Retry-After) the worker may use for the backoff.
        self.retry_after_s = retry_after_s

    def info(self) -> ErrorInfo:
        return ErrorInfo(self.code, self.message, self.retryable)

    def to_dict(self) -> dict[str, Any]:
        return self.info().to_dict()


class PermanentError(JobError):
    """Retrying cannot help: report a failed result and delete the message."""

    retryable = False


class TransientError(JobError):
    """May succeed later: leave the message on the queue with a backoff."""

    retryable = True


# Codes shared across the worker and handlers. Handlers may add their own (e.g. "alignment_failed").
INVALID_INPUT = "invalid_input"
INVALID_ENVELOPE = "invalid_envelope"
UNSUPPORTED_JOB_TYPE = "unsupported_job_type"
TIER_NOT_ALLOWED = "tier_not_allowed"
TENANT_MISMATCH = "tenant_mismatch"
INPUT_EXPIRED = "input_url_expired"
INPUT_TOO_LARGE = "input_too_large"
INPUT_NOT_FOUND = "input_not_found"
INPUT_URL_REFUSED = "input_url_refused"
INPUT_KEY_REFUSED = "input_key_refused"  # an s3_key outside the job's own tenant prefix (or a shared one)
INPUT_FETCH_FAILED = "input_fetch_failed"
JOB_EXPIRED = "expired"  # received after the envelope's expires_at: acknowledged without running
JOB_TIMEOUT = "job_timeout"
JOB_OUT_OF_MEMORY = "job_out_of_memory"
JOB_CRASHED = "job_crashed"
INTERNAL_ERROR = "internal_error"
