"""The message contract and the result document.

Parsing is split in two so that nothing is lost:
- `parse_envelope` only needs a JSON object with a `job_id`; without one no result can be addressed, so the
  message is `dead` (sent to the DLQ intact).
- `validate_envelope` enforces the contract (known job type, tier allows it, tenant consistency, ISO
  `created_at`); a violation is a permanent failure that *is* reported with a failed result.
Unknown extra fields are kept (pydantic `extra="allow"`) and never rejected.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ai_worker import errors
from ai_worker.errors import PermanentError
from ai_worker.jobs import JOB_TYPES, allows
from ai_worker.tiers import TIERS, Tier

MAX_ID_LENGTH = 256  # job ids end up in S3 keys; keep them bounded
JOB_TYPE_ALIASES = ("job_type", "type", "task")  # older producers send `type` or `task`


class UnparseableMessage(Exception):
    """The body cannot be tied to a job: no result can be written, the message goes to the DLQ as-is."""


class Envelope(BaseModel):
    """One job message. Only `job_id` is required to parse; `validate_envelope` checks the rest."""

    model_config = ConfigDict(extra="allow", frozen=False)

    job_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    job_type: str | None = None
    tier: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    tenant_id: str | None = None
    source_domain: str | None = None
    source_id: str | None = None
    created_at: str | None = None
    attempt: int = 1

    @property
    def tenant(self) -> str:
        """The tenant used to address results; payload.tenant_id is the fallback, then "unknown"."""
        return self.tenant_id or str(self.payload.get("tenant_id") or "unknown")

    def created_at_datetime(self) -> datetime | None:
        if not self.created_at:
            return None
        parsed = datetime.fromisoformat(self.created_at.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def to_message(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), ensure_ascii=False, separators=(",", ":"))


def parse_envelope(body: str | bytes) -> Envelope:
    """Parse a raw SQS body; raise `UnparseableMessage` when no job can be identified."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnparseableMessage(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UnparseableMessage(f"body is JSON {type(data).__name__}, expected an object")
    for alias in JOB_TYPE_ALIASES[1:]:
        if data.get("job_type") is None and isinstance(data.get(alias), str):
            data["job_type"] = data[alias]
    job_id = data.get("job_id")
    if isinstance(job_id, int) and not isinstance(job_id, bool):
        data["job_id"] = str(job_id)
    try:
        return Envelope.model_validate(_coerce_loose_fields(data))
    except ValidationError as exc:
        raise UnparseableMessage(f"envelope has no usable job_id or malformed fields: {exc}") from exc


def _coerce_loose_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Keep mistyped optional fields for `validate_envelope` to report instead of killing the message."""
    out = dict(data)
    for key in ("job_type", "tier", "tenant_id", "source_domain", "source_id", "created_at"):
        if key in out and out[key] is not None and not isinstance(out[key], str):
            out[key] = json.dumps(out[key]) if isinstance(out[key], dict | list) else str(out[key])
    if not isinstance(out.get("payload", {}), dict):
        out["_invalid_payload"] = out.pop("payload")
    attempt = out.get("attempt", 1)
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        out["attempt"] = 1
        out["_invalid_attempt"] = attempt
    return out


def validate_envelope(env: Envelope, *, queue_tiers: frozenset[str] | None = None) -> Tier:
    """Enforce the contract and return the effective tier; raise `PermanentError` on a violation.

    The tier is the message's own, or the queue's when the message has none and the queue serves exactly one
    tier. `queue_tiers` is the set of tiers the queue the message arrived on serves (all three on a shared
    queue); a message claiming a tier its queue does not serve is a violation.
    """
    extras = env.model_extra or {}
    if "_invalid_payload" in extras:
        raise PermanentError(errors.INVALID_ENVELOPE, "payload must be a JSON object")
    if "_invalid_attempt" in extras:
        raise PermanentError(errors.INVALID_ENVELOPE, "attempt must be an integer")
    if not env.job_type:
        raise PermanentError(errors.INVALID_ENVELOPE, "job_type (or type/task) is required")
    if env.job_type not in JOB_TYPES:
        raise PermanentError(
            errors.UNSUPPORTED_JOB_TYPE, f"unknown job_type {env.job_type!r}; known: {', '.join(JOB_TYPES)}"
        )
    tier = env.tier
    if tier is None and queue_tiers is not None and len(queue_tiers) == 1:
        tier = next(iter(queue_tiers))
    if tier is None:
        raise PermanentError(errors.INVALID_ENVELOPE, "tier is required on a queue shared by several tiers")
    if tier not in TIERS:
        raise PermanentError(errors.INVALID_ENVELOPE, f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
    if queue_tiers is not None and tier not in queue_tiers:
        raise PermanentError(
            errors.TIER_NOT_ALLOWED, f"tier {tier!r} does not belong on a queue serving {sorted(queue_tiers)}"
        )
    if not allows(tier, env.job_type):
        raise PermanentError(errors.TIER_NOT_ALLOWED, f"tier {tier!r} may not run job_type {env.job_type!r}")
    payload_tenant = env.payload.get("tenant_id")
    if env.tenant_id and payload_tenant is not None and str(payload_tenant) != env.tenant_id:
        raise PermanentError(
            errors.TENANT_MISMATCH, f"tenant_id {env.tenant_id!r} != payload.tenant_id {payload_tenant!r}"
        )
    if env.created_at:
        try:
            env.created_at_datetime()
        except ValueError as exc:
            raise PermanentError(errors.INVALID_ENVELOPE, f"created_at is not ISO 8601: {exc}") from exc
    if env.attempt < 1:
        raise PermanentError(errors.INVALID_ENVELOPE, "attempt must be >= 1")
    env.tier = tier
    return tier
