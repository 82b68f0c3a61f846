"""Where result documents go: written once, never overwritten (`If-None-Match: *`).

When two workers run the same message (SQS delivers at least once) the first result stands and the second write
reports "already there" instead of replacing it. `ResultSink` is the interface; `S3ResultSink` the default, and
the worker accepts any factory building one from the settings.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import determine_content_length

from ai_worker.aws import s3_client
from ai_worker.config import Settings
from ai_worker.errors import TransientError
from ai_worker.results._s3 import unless_missing
from ai_worker.results.document import ResultRef, result_key

RESULT_WRITE_FAILED: Final = "result_write_failed"
# Below this size a result document is sent with its headers, without waiting for `100 Continue` first.
EXPECT_CONTINUE_MIN_BYTES: Final = 1 << 20
STATUS_METADATA: Final = "status"  # user metadata of a result document (x-amz-meta-status): done / failed


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
        self._bucket_seen = False

    def exists(self, tenant: str, job_id: str) -> ResultRef | None:
        """Usually one HEAD: the stored status travels in the document's metadata (`x-amz-meta-status`, set by
        `write`), so no body is read. HEAD needs the same permission as GET (s3:GetObject) and is billed like one;
        on moto it costs the server about 30 % less than a GET's miss. But a HEAD's 404 has no body, so it cannot
        tell a missing document from a missing bucket: until S3 has shown the bucket exists (a GET answered, or a
        write succeeded), the check is a GET, whose NoSuchBucket is a transient failure, so a misconfigured
        worker does not run jobs whose results it cannot keep. A document without the metadata (written by an
        older worker, or by hand) is read with a GET for its status."""
        key = result_key(self.settings, tenant, job_id)
        if not self._bucket_seen:
            found = self._read(key)
            self._bucket_seen = True  # S3 answered for a key in the bucket: the bucket exists
            return None if found is None else self._ref(key, _status_of(found))

        def head() -> dict[str, Any]:
            response: dict[str, Any] = self.s3.head_object(Bucket=self.settings.results_bucket, Key=key)
            return response

        found_head = unless_missing(head, RESULT_WRITE_FAILED, "checking for an existing result")
        if found_head is None:
            return None
        status = found_head.get("Metadata", {}).get(STATUS_METADATA)
        if status is None:
            body = self._read(key)
            status = None if body is None else _status_of(body)
        return self._ref(key, status)

    def _read(self, key: str) -> bytes | None:
        def read() -> bytes:
            data: bytes = self.s3.get_object(Bucket=self.settings.results_bucket, Key=key)["Body"].read()
            return data

        return unless_missing(read, RESULT_WRITE_FAILED, "checking for an existing result")

    def _ref(self, key: str, status: str | None) -> ResultRef:
        return ResultRef(self.settings.results_bucket, key, created=False, status=status)

    def write(self, doc: dict[str, Any]) -> ResultRef:
        key = result_key(self.settings, doc["tenant_id"], doc["job_id"])
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            self.s3.put_object(
                Bucket=self.settings.results_bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                Metadata={STATUS_METADATA: doc["status"]},
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
        self._bucket_seen = True
        return ResultRef(self.settings.results_bucket, key, created=True, status=doc["status"])


def _status_of(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    status = doc.get("status") if isinstance(doc, dict) else None
    return status if isinstance(status, str) else None


def s3_sink(settings: Settings) -> ResultSink:
    """The default sink factory (module-level, so job processes can be handed it by reference). Its client is its
    own, so the sink may tune how it sends (`send_small_puts_at_once`)."""
    return S3ResultSink(settings, send_small_puts_at_once(s3_client()))


def send_small_puts_at_once(s3: Any) -> Any:
    """Make `s3` send a PutObject body of less than EXPECT_CONTINUE_MIN_BYTES with its headers, instead of
    sending `Expect: 100-continue` and waiting for the server's `100 Continue` before the body (botocore asks for
    it on every PutObject). The wait is a network round trip per result document; it only pays off for a large
    body the server might refuse (a failed precondition, a redirect), and a result document is a few KiB."""
    s3.meta.events.register_last("before-call.s3", _send_at_once)  # after botocore's add_expect_header
    return s3


def _send_at_once(model: Any, params: dict[str, Any], **_: Any) -> None:
    headers = params.get("headers", {})
    if model.name != "PutObject" or "Expect" not in headers:
        return
    size = determine_content_length(params.get("body"))
    if size is not None and size < EXPECT_CONTINUE_MIN_BYTES:
        del headers["Expect"]
