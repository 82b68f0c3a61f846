"""The `BlobStore` handlers get in production: objects under the results bucket."""

from __future__ import annotations

from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from ai_worker.errors import TransientError
from ai_worker.results._s3 import unless_missing

BLOB_STORE_FAILED: Final = "blob_store_failed"


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

        return unless_missing(read, BLOB_STORE_FAILED, f"reading s3://{self.bucket}/{key}")
