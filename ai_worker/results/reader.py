"""Reading a job's result document (producers, `ai-worker submit --wait`, tests)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from ai_worker.config import Settings
from ai_worker.results._s3 import MISSING
from ai_worker.results.document import result_key


def read_result(s3: Any, settings: Settings, tenant: str, job_id: str) -> dict[str, Any] | None:
    """The result document of a job, or None while it does not exist."""
    try:
        response = s3.get_object(Bucket=settings.results_bucket, Key=result_key(settings, tenant, job_id))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in MISSING:
            return None
        raise
    document: dict[str, Any] = json.loads(response["Body"].read())
    return document
