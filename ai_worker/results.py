"""Result documents: addressed by tenant and job id, written once, never overwritten.

`s3://<results_bucket>/<results_prefix><tenant>/<job_id>.json` holds {job_id, job_type, tier, tenant_id, status,
result | error, worker, timings, attempts}. Writes are conditional (`If-None-Match: *`), so when two workers run
the same message (SQS delivers at least once) the first result stands and the second write reports "already
there" instead of replacing it. The store is the `ResultSink` interface; `S3ResultSink` is the default and the
worker accepts any factory building one from the settings. After the write, the worker sends a small notice on
`settings.results_queue` pointing at the document.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ai_worker import __version__
from ai_worker.broker.sqs import make_clients
from ai_worker.config import Settings
from ai_worker.envelope import Envelope
from ai_worker.errors import TransientError

RESULT_WRITE_FAILED: Final = "result_write_failed"
BLOB_STORE_FAILED: Final = "blob_store_failed"
_MISSING: Final = frozenset({"404", "NoSuchKey", "NotFound"})
T = TypeVar("T")


def _unless_missing(call: Callable[[], T], code: str, what: str) -> T | None:
    """`call()`, or None when S3 says the object does not exist. Any other S3 failure (after botocore's own
    retries) is a TransientError: the trouble is ours, so the job is retried rather than failed."""
    try:
        return call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise TransientError(code, f"{what} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise TransientError(code, f"{what} failed: {exc}") from exc


Status = Literal["done", "failed"]


def result_key(settings: Settings, tenant: str, job_id: str) -> str:
    """The object key of a job's result document."""
    return f"{settings.results_prefix}{tenant}/{job_id}.json"


def build_document(
    env: Envelope,
    *,
    status: Status,
    kind: str,
    settings: Settings,
    attempts: int,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    queued_s: float | None = None,
    run_s: float | None = None,
) -> dict[str, Any]:
    """The result document of docs/design.md (`result` when done, `error` {code, message, retryable} when failed)."""
    doc: dict[str, Any] = {
        "job_id": env.job_id,
        "job_type": env.job_type,
        "tier": env.tier,
        "tenant_id": env.tenant,
        "status": status,
    }
    if status == "done":
        doc["result"] = result if result is not None else {}
    else:
        doc["error"] = error
    doc["worker"] = {"version": __version__, "image": settings.image, "device": kind}
    doc["timings"] = {
        "queued_s": None if queued_s is None else round(queued_s, 3),
        "run_s": None if run_s is None else round(run_s, 3),
    }
    doc["attempts"] = attempts
    return doc


def notice(env: Envelope, ref: ResultRef) -> dict[str, Any]:
    """The small message sent on the results queue: enough to route it, and where to read the document.

    Notices are at-least-once (a crash or a failed send re-sends them on the message's redelivery); `notice_id`
    is the same on every re-send for a job, so consumers deduplicate on it (or on `key`)."""
    return {
        "notice_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"s3://{ref.bucket}/{ref.key}")),
        "job_id": env.job_id,
        "job_type": env.job_type,
        "tenant_id": env.tenant,
        "status": ref.status,
        "bucket": ref.bucket,
        "key": ref.key,
        "s3_uri": f"s3://{ref.bucket}/{ref.key}",
    }


@dataclass(frozen=True)
class ResultRef:
    bucket: str
    key: str
    created: bool  # False: a result was already there (another delivery of the same job wrote it first)
    status: str | None = None  # the stored document's status ("done" / "failed"); None when unreadable


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

        body = _unless_missing(read, RESULT_WRITE_FAILED, "checking for an existing result")
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
    return S3ResultSink(settings, make_clients(settings).s3)


class S3BlobStore:
    """The `BlobStore` handlers get in production: objects under the results bucket.

    S3 failing (throttling, 5xx, the network, after botocore's own retries) is a TransientError: the job is
    retried later instead of failing permanently for a problem of ours that is not the producer's.
    """

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def put(self, key: str, data: bytes, content_type: str) -> dict[str, Any]:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(BLOB_STORE_FAILED, f"storing s3://{self.bucket}/{key} failed: {exc}") from exc
        return {"bucket": self.bucket, "key": key, "s3_uri": f"s3://{self.bucket}/{key}", "bytes": len(data)}

    def get(self, key: str) -> bytes | None:
        def read() -> bytes:
            data: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return data

        return _unless_missing(read, BLOB_STORE_FAILED, f"reading s3://{self.bucket}/{key}")


def read_result(s3: Any, settings: Settings, tenant: str, job_id: str) -> dict[str, Any] | None:
    """The result document of a job, or None while it does not exist."""
    try:
        response = s3.get_object(Bucket=settings.results_bucket, Key=result_key(settings, tenant, job_id))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise
    document: dict[str, Any] = json.loads(response["Body"].read())
    return document
