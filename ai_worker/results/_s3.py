"""How S3 failures become job outcomes: missing is None, anything else is transient (the trouble is ours)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ai_worker.errors import TransientError

MISSING: Final = frozenset({"404", "NoSuchKey", "NotFound"})
T = TypeVar("T")


def unless_missing(call: Callable[[], T], code: str, what: str) -> T | None:
    """`call()`, or None when S3 says the object does not exist. Any other S3 failure (after botocore's own
    retries) is a TransientError: the trouble is ours, so the job is retried rather than failed."""
    try:
        return call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in MISSING:
            return None
        raise TransientError(code, f"{what} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise TransientError(code, f"{what} failed: {exc}") from exc
