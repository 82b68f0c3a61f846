"""The message contract (docs/design.md, "Message envelope") and the rules a body must meet to be a job.

Parsing is split in two so that nothing is lost:
- `parse_envelope` turns a raw body into an `Envelope` or raises `UnparseableMessage`. A body is unparseable when
  no result can be addressed safely: not strict JSON (including NaN/Infinity, numbers out of range, duplicate
  keys, unpaired surrogates), larger than `MAX_BODY_BYTES`, nested deeper than `MAX_DEPTH`, not an object, or
  without a `job_id`/`tenant_id` that meets the id rules below. Such a message is `dead`: moved to the DLQ intact.
  Nothing a body contains can make parsing raise anything else (RecursionError and friends are caught here).
- `validate_envelope` enforces the rest of the contract (known job type, tier allows it, tenant consistency, ISO
  `created_at`/`expires_at`); a violation is a permanent failure that *is* reported with a failed result.
Unknown extra fields are kept (pydantic `extra="allow"`) and never rejected.

Id rules (they become S3 key segments, so nothing in them may act as a path): `job_id` is 1-128 characters of
`A-Z a-z 0-9 . _ : -` starting with a letter or digit; `tenant_id` is 1-64 characters of `A-Z a-z 0-9 . _ -`
starting with a letter or digit. A missing tenant is addressed as `unknown`.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ai_worker import errors
from ai_worker.errors import PermanentError
from ai_worker.jobs import JOB_TYPES, allows
from ai_worker.tiers import TIERS, Tier

MAX_ID_LENGTH: Final = 128  # job ids end up in S3 keys; keep them bounded
MAX_TENANT_LENGTH: Final = 64
JOB_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
TENANT_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
UNKNOWN_TENANT: Final = "unknown"
MAX_BODY_BYTES: Final = 256 * 1024  # the contract's limit (SQS accepts more); inputs travel by reference
MAX_DEPTH: Final = 32  # nesting of objects/arrays; real envelopes use 3-4 levels
JOB_TYPE_ALIASES: Final = ("job_type", "type", "task")  # older producers send `type` or `task`


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
    expires_at: str | None = None  # ISO 8601; a job received later is acknowledged as `expired` without running

    @property
    def tenant(self) -> str:
        """The tenant used to address results; payload.tenant_id is the fallback, then "unknown"."""
        return self.tenant_id or str(self.payload.get("tenant_id") or UNKNOWN_TENANT)

    def created_at_datetime(self) -> datetime | None:
        return _iso(self.created_at)

    def expires_at_datetime(self) -> datetime | None:
        return _iso(self.expires_at)

    def to_message(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), ensure_ascii=False, separators=(",", ":"))


def _iso(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def valid_job_id(value: str) -> bool:
    return JOB_ID_PATTERN.fullmatch(value) is not None


def valid_tenant_id(value: str) -> bool:
    return TENANT_ID_PATTERN.fullmatch(value) is not None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise UnparseableMessage(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnparseableMessage(f"number {text[:40]} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise UnparseableMessage(f"{name} is not JSON")


def _check_tree(data: Any) -> None:
    """Depth and string checks without recursion (a deep body must not exhaust the stack here either)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise UnparseableMessage(f"nested deeper than {MAX_DEPTH} levels")
            children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(node, str) and not node.isascii():
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise UnparseableMessage("a string holds an unpaired surrogate") from exc


def loads_strict(body: str | bytes) -> Any:
    """Strict JSON: what `json.loads` accepts minus NaN/Infinity, out-of-range numbers and duplicate keys, with
    every failure (however deep or large the body) raised as `UnparseableMessage`."""
    size = len(body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body)
    if size > MAX_BODY_BYTES:
        raise UnparseableMessage(f"body is {size} bytes, over the contract's {MAX_BODY_BYTES}")
    try:
        data = json.loads(body, object_pairs_hook=_no_duplicates, parse_float=_finite, parse_constant=_refuse_constant)
    except UnparseableMessage:
        raise
    except RecursionError as exc:
        raise UnparseableMessage("body is nested too deeply to parse") from exc
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:  # bad JSON or encoding, int digit limit
        raise UnparseableMessage(f"body is not JSON: {str(exc)[:200]}") from exc
    _check_tree(data)
    return data


def parse_envelope(body: str | bytes) -> Envelope:
    """Parse a raw SQS body; raise `UnparseableMessage` (and nothing else) when no job can be addressed."""
    data = loads_strict(body)
    if not isinstance(data, dict):
        raise UnparseableMessage(f"body is JSON {type(data).__name__}, expected an object")
    for alias in JOB_TYPE_ALIASES[1:]:
        if data.get("job_type") is None and isinstance(data.get(alias), str):
            data["job_type"] = data[alias]
    job_id = data.get("job_id")
    if isinstance(job_id, int) and not isinstance(job_id, bool):
        data["job_id"] = str(job_id)
    if not isinstance(data.get("job_id"), str) or not valid_job_id(data["job_id"]):
        raise UnparseableMessage(f"job_id {str(job_id)[:80]!r} does not meet the id rules")
    try:
        env = Envelope.model_validate(_coerce_loose_fields(data))
    except ValidationError as exc:
        raise UnparseableMessage(f"envelope has malformed fields: {str(exc)[:300]}") from exc
    if not valid_tenant_id(env.tenant):
        raise UnparseableMessage(f"tenant {env.tenant[:80]!r} does not meet the id rules")
    return env


def _coerce_loose_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Keep mistyped optional fields for `validate_envelope` to report instead of killing the message."""
    out = dict(data)
    for key in ("job_type", "tier", "tenant_id", "source_domain", "source_id", "created_at", "expires_at"):
        if key in out and out[key] is not None and not isinstance(out[key], str):
            out[key] = json.dumps(out[key]) if isinstance(out[key], dict | list) else str(out[key])
    if not isinstance(out.get("payload", {}), dict):
        out["_invalid_payload"] = out.pop("payload")
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
    for name in ("created_at", "expires_at"):
        try:
            _iso(getattr(env, name))
        except ValueError as exc:
            raise PermanentError(errors.INVALID_ENVELOPE, f"{name} is not ISO 8601: {exc}") from exc
    env.tier = tier
    return tier


def expired(env: Envelope, now: datetime | None = None) -> bool:
    """Whether the job's `expires_at` has passed (False without one; call after `validate_envelope`)."""
    deadline = env.expires_at_datetime()
    return deadline is not None and (now or datetime.now(UTC)) >= deadline
