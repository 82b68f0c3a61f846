"""What a handler sees of its job: the envelope, the settings, its input and an object store.

The worker builds a context backed by S3 and HTTPS (`ai_worker.inputs`); tests build one from bytes with
`JobContext.for_test`. Handlers never talk to SQS and never write the result document themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ai_worker.config import Settings
from ai_worker.envelope import Envelope
from ai_worker.errors import INVALID_INPUT, PermanentError

InputLoader = Callable[[], bytes]


class BlobStore(Protocol):
    """Objects under the results bucket: large outputs by reference, and content-addressed caches."""

    def put(self, key: str, data: bytes, content_type: str) -> dict[str, Any]:
        """Store `data` at `key`; return a reference: {"bucket", "key", "s3_uri", "bytes"}."""
        ...

    def get(self, key: str) -> bytes | None:
        """The object at `key`, or None when it does not exist."""
        ...


class MemoryBlobStore:
    """A BlobStore in a dict, for tests and tools."""

    def __init__(self, bucket: str = "test") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes, content_type: str) -> dict[str, Any]:
        self.objects[key] = data
        return {"bucket": self.bucket, "key": key, "s3_uri": f"s3://{self.bucket}/{key}", "bytes": len(data)}

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)


@dataclass
class JobContext:
    job: Envelope
    settings: Settings
    load_input: InputLoader
    blobs: BlobStore
    log: logging.LoggerAdapter[logging.Logger] = field(
        default_factory=lambda: logging.LoggerAdapter(logging.getLogger("ai_worker.job"), {})
    )
    _input: bytes | None = field(default=None, repr=False)

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    def read_input(self) -> bytes:
        """The job's input file (`payload.download_url` or `payload.s3_key`), fetched once, size-capped."""
        if self._input is None:
            self._input = self.load_input()
        return self._input

    @classmethod
    def for_test(
        cls,
        job_type: str,
        payload: dict[str, Any] | None = None,
        data: bytes | None = None,
        settings: Settings | None = None,
        tier: str = "premium",
        blobs: BlobStore | None = None,
    ) -> JobContext:
        """A context whose input is `data` and whose blob store is in memory."""

        def load() -> bytes:
            if data is None:
                raise PermanentError(INVALID_INPUT, "payload has neither download_url nor s3_key")
            return data

        env = Envelope(job_id="test-job", job_type=job_type, tier=tier, tenant_id="t", payload=payload or {})
        return cls(job=env, settings=settings or Settings(), load_input=load, blobs=blobs or MemoryBlobStore())
