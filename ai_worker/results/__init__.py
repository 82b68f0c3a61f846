"""Result documents: addressed by tenant and job id, written once, never overwritten.

`s3://<results_bucket>/<results_prefix><tenant>/<job_id>.json` holds {job_id, job_type, tier, tenant_id, status,
result | error, worker, timings, attempts} (docs/design.md). By concern: `document` (the schema, its key and the
notice), `sink` (the write-once store), `blobs` (handlers' large outputs), `reader` (reading a document back).
"""

from __future__ import annotations

from ai_worker.results.blobs import BLOB_STORE_FAILED, S3BlobStore
from ai_worker.results.document import ResultRef, Status, build_document, notice, result_key
from ai_worker.results.reader import read_result
from ai_worker.results.sink import RESULT_WRITE_FAILED, ResultSink, S3ResultSink, s3_sink

__all__ = [
    "BLOB_STORE_FAILED",
    "RESULT_WRITE_FAILED",
    "ResultRef",
    "ResultSink",
    "S3BlobStore",
    "S3ResultSink",
    "Status",
    "build_document",
    "notice",
    "read_result",
    "result_key",
    "s3_sink",
]
