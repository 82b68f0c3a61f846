"""Where result documents go: written once, never overwritten (`If-None-Match: *`).

When two workers run the same message (SQS delivers at least once) the first result stands and the second write
reports "already there" instead of replacing it. `ResultSink` is the interface; `S3ResultSink` the default, and
the worker accepts any factory building one from the settings.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ai_worker.aws import s3_client
from ai_worker.config import Settings
from ai_worker.errors import TransientError
from ai_worker.results._s3 import unless_missing
from ai_worker.results.document import ResultRef, result_key

RESULT_WRITE_FAILED: Final = "result_write_failed"


class ResultSink(Protocol):
    """Where result documents go. Implementations must never overwrite an existing result."""

    def exists(self, tenant: str, job_id: str) -> ResultRef | None:
        """The reference of an existing result (with its status, for the notice re-sent on a redelivery), or
        None; raise TransientError when the store is failing."""
        ...

    def write(self, doc: dict[str, Any]) -> ResultRef:
        """Store the document unless one exists for the job; raise TransientError when the store is failing."""
        ...


class S3ResultSink:
    """Result documents in S3, written with a conditional put."""

    def __init__(self, settings: Settings, s3: Any) -> None:
        self.settings = settings
        self.s3 = s3

    def exists(self, tenant: str, job_id: str) -> ResultRef | None:
        # A GET rather than a HEAD: the same one call, and the status is needed for the re-sent notice.
        key = result_key(self.settings, tenant, job_id)

        def read() -> bytes:
            data: bytes = self.s3.get_object(Bucket=self.settings.results_bucket, Key=key)["Body"].read()
            return data

        body = unless_missing(read, RESULT_WRITE_FAILED, "checking for an existing result")
        if body is None:
            return None
        return ResultRef(self.settings.results_bucket, key, created=False, status=_status_of(body))

    def write(self, doc: dict[str, Any]) -> ResultRef:
        key = result_key(self.settings, doc["tenant_id"], doc["job_id"])
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            self.s3.put_object(
                Bucket=self.settings.results_bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return self.exists(doc["tenant_id"], doc["job_id"]) or ResultRef(
                    self.settings.results_bucket, key, created=False
                )
            # Includes 409 ConditionalRequestConflict: a concurrent write is in flight; a retry will find it.
            raise TransientError(RESULT_WRITE_FAILED, f"writing the result failed: {exc}") from exc
        except BotoCoreError as exc:
            raise TransientError(RESULT_WRITE_FAILED, f"writing the result failed: {exc}") from exc
        return ResultRef(self.settings.results_bucket, key, created=True, status=doc["status"])


def _status_of(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    status = doc.get("status") if isinstance(doc, dict) else None
    return status if isinstance(status, str) else None


def s3_sink(settings: Settings) -> ResultSink:
    """The default sink factory (module-level, so job processes can be handed it by reference)."""
    return S3ResultSink(settings, s3_client())
