"""The producer client: submit a job the way the platform does, and wait for its result document.

`submit` refuses a job the contract refuses (id rules, tier not allowing the job type, tenant mismatch) before
anything is uploaded or sent; a `--file` is uploaded under the tenant's input prefix.
"""

from __future__ import annotations

import mimetypes
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ai_worker.broker.sqs import SqsBroker
from ai_worker.config import Settings
from ai_worker.envelope import MAX_BODY_BYTES, Envelope, valid_job_id, valid_tenant_id, validate_envelope
from ai_worker.errors import PermanentError
from ai_worker.inputs import tenant_input_prefix
from ai_worker.provisioning import AdminError, Client
from ai_worker.results import read_result

RESULT_POLL_S = 0.5  # one S3 GET per pending job per poll: cheap, and fast enough for an interactive wait


def submit(
    sqs: Client,
    s3: Client,
    settings: Settings,
    *,
    job_type: str,
    tier: str,
    payload: dict[str, Any],
    file: Path | None = None,
    tenant_id: str | None = None,
    job_id: str | None = None,
) -> Envelope:
    """Enqueue one job on the queue of its tier, uploading `file` first and passing it as `payload.s3_key`."""
    envelope = Envelope(
        job_id=job_id or uuid.uuid4().hex,
        job_type=job_type,
        tier=tier,
        payload=dict(payload),
        tenant_id=tenant_id,
        created_at=datetime.now(UTC).isoformat(),
    )
    if not valid_job_id(envelope.job_id) or not valid_tenant_id(envelope.tenant):
        raise AdminError(
            "job_id (1-128 of A-Z a-z 0-9 . _ : -) or tenant_id (1-64 of A-Z a-z 0-9 . _ -) breaks the id rules"
        )
    try:
        validate_envelope(envelope)
    except PermanentError as exc:
        raise AdminError(exc.message) from exc
    if file is not None:
        if not file.is_file():
            raise AdminError(f"{file} is not a file")
        key = f"{tenant_input_prefix(envelope.tenant)}{envelope.job_id}/{file.name}"
        s3.put_object(
            Bucket=settings.inputs.bucket or settings.results_bucket,
            Key=key,
            Body=file.read_bytes(),
            ContentType=mimetypes.guess_type(file.name)[0] or "application/octet-stream",
        )
        envelope.payload["s3_key"] = key
    body = envelope.to_message()
    if len(body.encode()) > MAX_BODY_BYTES:
        raise AdminError(f"message is {len(body.encode())} bytes (limit {MAX_BODY_BYTES}): pass large data as --file")
    SqsBroker(sqs).send(settings.queue_names[tier], body)
    return envelope


def wait_for_results(
    s3: Client,
    settings: Settings,
    jobs: list[Envelope],
    timeout_s: float,
    poll_s: float = RESULT_POLL_S,
    worth_waiting: Callable[[], bool] = lambda: True,
) -> dict[str, dict[str, Any] | None]:
    """The result document of each job by job_id (None when missing), polling until all exist, `timeout_s`
    passes, or `worth_waiting()` turns false (e.g. the workers that would write them have stopped)."""
    found: dict[str, dict[str, Any] | None] = dict.fromkeys((job.job_id for job in jobs), None)
    deadline = time.monotonic() + timeout_s
    while True:
        for job in jobs:
            if found[job.job_id] is None:
                found[job.job_id] = read_result(s3, settings, job.tenant, job.job_id)
        if all(found.values()) or time.monotonic() >= deadline or not worth_waiting():
            return found
        time.sleep(poll_s)
