"""Reading a server's requested pause from the HTTP response attached to a client library's exception.

Works for the exceptions of google-api-core (a `requests` response) and openai (an httpx response): both expose
`.response.headers`, a case-insensitive mapping. Only numeric values are read (`retry-after-ms`, then
`retry-after` in seconds); an HTTP-date or a missing header gives None and the caller's own backoff applies.
"""

from __future__ import annotations

from typing import Any


def retry_after_s(exc: BaseException) -> float | None:
    headers: Any = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            continue
    return None
