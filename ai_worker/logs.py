"""Structured logging: one JSON object per line on stderr, carrying job_id / tenant_id / job_type when known.

`setup(level)` is idempotent and safe to call in the worker and in every job process. A record may carry
`extra={"job": {...}}` (the fields that identify a job) and `extra={"emf": {...}}` (a CloudWatch embedded-metric
document, see `ai_worker.metrics`): both are merged into the top level of the line, which is what CloudWatch
Logs needs to extract embedded metrics.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from ai_worker.envelope import Envelope

JOB_FIELDS = ("job_id", "tenant_id", "job_type", "tier")
# Attributes every LogRecord has; anything else on a record was passed through `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; extras (job fields, EMF documents, anything else) become keys."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS:
                continue
            if key in ("job", "emf") and isinstance(value, Mapping):
                line.update(value)
            else:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def setup(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines (installing the handler once per process)."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    # botocore logs every retry and credential lookup at INFO/DEBUG; keep the worker's own lines readable.
    logging.getLogger("botocore").setLevel(max(logging.WARNING, root.level))


def job_fields(env: Envelope) -> dict[str, str]:
    """The fields that tie a log line to a job."""
    fields = {"job_id": env.job_id, "tenant_id": env.tenant, "job_type": env.job_type, "tier": env.tier}
    return {k: v for k, v in fields.items() if v is not None}


class JobLogAdapter(logging.LoggerAdapter[logging.Logger]):
    """Adds the job's fields to every line and keeps the caller's own `extra=` (3.11's adapter drops it)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def job_logger(name: str, env: Envelope) -> logging.LoggerAdapter[logging.Logger]:
    """A logger whose every line carries the job's identifying fields."""
    return JobLogAdapter(logging.getLogger(name), {"job": job_fields(env)})
