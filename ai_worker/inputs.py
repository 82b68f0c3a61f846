"""Fetching a job's input: a presigned `download_url` or an `s3_key`, size-capped, time-bounded, SSRF-guarded.

Guarantees:
- At most `settings.inputs.max_bytes` are ever read: a larger Content-Length is refused before reading, and the
  body is streamed with a running count (`input_too_large`).
- URLs are https only (http only with `allow_http`). Unless `allow_private`, the address the socket actually
  connected to must be a global unicast address: loopback, link-local (the 169.254.169.254 instance metadata
  service), private, shared, multicast and reserved ranges are refused (`input_url_refused`). The check runs on
  the connected socket, so a name that resolves differently on a second lookup (DNS rebinding) cannot get past
  it; redirects are followed (a few) and each hop is checked the same way.
- Outcomes are errors with codes: an expired presigned URL is the permanent `input_url_expired`; 404 is the
  permanent `input_not_found`; other 4xx are permanent `input_fetch_failed`; 429, 5xx, timeouts and network
  errors are transient `input_fetch_failed` (honouring Retry-After).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
import urllib.parse
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

import urllib3
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ai_worker import errors
from ai_worker.config import InputSettings, Settings
from ai_worker.envelope import Envelope
from ai_worker.errors import PermanentError, TransientError

CHUNK_BYTES: Final = 256 * 1024
MAX_REDIRECTS: Final = 3  # presigned S3 URLs do not redirect; a few hops cover a region move
ERROR_BODY_BYTES: Final = 64 * 1024  # enough of an error response to recognise S3's "Request has expired"
EXPIRED_MARKERS: Final = ("request has expired", "<code>expiredtoken</code>", "token has expired")
_SIGV4_DATE: Final = "%Y%m%dT%H%M%SZ"
INPUT_PREFIX: Final = "inputs/"  # inputs/<tenant>/...: the only keys a tenant's jobs may read (with shared prefixes)


def load_input(env: Envelope, settings: Settings, s3: Any) -> bytes:
    """The job's input bytes from `payload.download_url` or `payload.s3_key`."""
    url = env.payload.get("download_url")
    key = env.payload.get("s3_key")
    if isinstance(url, str) and url:
        return fetch_url(url, settings.inputs)
    if isinstance(key, str) and key:
        check_input_key(env, settings.inputs)
        return fetch_s3(s3, settings.inputs.bucket or settings.results_bucket, key, settings.inputs.max_bytes)
    raise PermanentError(errors.INVALID_INPUT, "payload has neither download_url nor s3_key")


def tenant_input_prefix(tenant: str) -> str:
    """Where a tenant's inputs live in the input bucket (`ai-worker submit --file` uploads there)."""
    return f"{INPUT_PREFIX}{tenant}/"


def check_input_key(env: Envelope, inputs: InputSettings) -> None:
    """Tenant isolation: a `payload.s3_key` must lie under the job's own `inputs/<tenant>/` or a configured shared
    prefix, and may not contain empty, `.` or `..` segments; otherwise `input_key_refused` (permanent).
    Jobs without an `s3_key` pass."""
    url, key = env.payload.get("download_url"), env.payload.get("s3_key")
    if (isinstance(url, str) and url) or key is None:
        return  # a download_url wins over s3_key (see `load_input`); no key, nothing to check
    if not isinstance(key, str) or not key:
        raise PermanentError(errors.INPUT_KEY_REFUSED, "payload.s3_key must be a non-empty string")
    segments = key.split("/")
    if any(s in ("", ".", "..") for s in segments[:-1]) or segments[-1] in ("", ".", ".."):
        raise PermanentError(errors.INPUT_KEY_REFUSED, f"s3_key {key[:200]!r} has empty, '.' or '..' segments")
    allowed = (tenant_input_prefix(env.tenant), *inputs.shared_prefixes)
    if not key.startswith(allowed):
        raise PermanentError(
            errors.INPUT_KEY_REFUSED,
            f"s3_key {key[:200]!r} is outside this tenant's inputs ({' or '.join(allowed)})",
        )


# --- presigned URLs ---------------------------------------------------------------------------------------


def refuse_address(address: str) -> str | None:
    """Why an IP address may not be fetched from (None when it is a global unicast address)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (e.g. instance metadata)"
    if ip.is_multicast:
        return "multicast"
    if not ip.is_global:
        return "private or reserved"
    return None


def resolve(host: str, port: int) -> list[str]:
    """All addresses a host name resolves to (a separate function so tests can simulate DNS)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def _check_resolved(host: str, port: int) -> None:
    """Refuse before connecting when any address of the name is not global (the socket is checked again)."""
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise TransientError(errors.INPUT_FETCH_FAILED, f"cannot resolve {host}: {exc}") from exc
    for address in addresses:
        reason = refuse_address(address)
        if reason:
            raise PermanentError(errors.INPUT_URL_REFUSED, f"{host} resolves to {address}: {reason} address")


def _check_peer(sock: socket.socket, host: str) -> None:
    address = str(sock.getpeername()[0])
    reason = refuse_address(address)
    if reason:
        sock.close()
        raise PermanentError(errors.INPUT_URL_REFUSED, f"{host} connected to {address}: {reason} address")


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, self.host)
        return sock


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, self.host)
        return sock


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


def check_presigned_expiry(query: str, now: datetime | None = None) -> None:
    """Refuse a presigned URL whose signature has visibly expired (SigV4 X-Amz-Date + X-Amz-Expires, or SigV2
    Expires), without a network round trip."""
    params = {k.lower(): v for k, v in urllib.parse.parse_qsl(query)}
    now = now or datetime.now(UTC)
    expires_at: float | None = None
    if "x-amz-date" in params and "x-amz-expires" in params:
        try:
            signed = datetime.strptime(params["x-amz-date"], _SIGV4_DATE).replace(tzinfo=UTC)
            expires_at = signed.timestamp() + int(params["x-amz-expires"])
        except ValueError:
            return  # malformed: let the server judge the signature
    elif "expires" in params and params["expires"].isdigit():
        expires_at = float(params["expires"])
    if expires_at is not None and now.timestamp() > expires_at:
        when = datetime.fromtimestamp(expires_at, UTC).isoformat()
        raise PermanentError(errors.INPUT_EXPIRED, f"the presigned download_url expired at {when}")


def _pool(parts: urllib.parse.SplitResult, inputs: InputSettings) -> HTTPConnectionPool:
    host = parts.hostname or ""
    timeout = urllib3.Timeout(connect=inputs.timeout_s, read=inputs.timeout_s)
    if parts.scheme == "https":
        cls: type[HTTPConnectionPool] = HTTPSConnectionPool if inputs.allow_private else _GuardedHTTPSPool
        return cls(host, parts.port or 443, timeout=timeout, retries=False)
    cls = HTTPConnectionPool if inputs.allow_private else _GuardedHTTPPool
    return cls(host, parts.port or 80, timeout=timeout, retries=False)


def _validate_url(url: str, inputs: InputSettings) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    allowed = ("https", "http") if inputs.allow_http else ("https",)
    if parts.scheme not in allowed:
        raise PermanentError(errors.INPUT_URL_REFUSED, f"scheme {parts.scheme!r} not allowed (allowed: {allowed})")
    if not parts.hostname:
        raise PermanentError(errors.INPUT_URL_REFUSED, "download_url has no host")
    check_presigned_expiry(parts.query)
    if not inputs.allow_private:
        _check_resolved(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    return parts


def fetch_url(url: str, inputs: InputSettings) -> bytes:
    """GET a (presigned) URL under the guards of this module and return its body."""
    deadline = time.monotonic() + inputs.timeout_s
    for _hop in range(MAX_REDIRECTS + 1):
        parts = _validate_url(url, inputs)
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        pool = _pool(parts, inputs)
        try:
            response = pool.urlopen("GET", target, redirect=False, preload_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(errors.INPUT_FETCH_FAILED, f"fetching the input failed: {exc}") from exc
        try:
            if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                url = urllib.parse.urljoin(url, response.headers["Location"])
                continue
            _raise_for_status(response)
            return _read_capped(response, inputs.max_bytes, deadline)
        finally:
            response.release_conn()
            pool.close()
    raise PermanentError(errors.INPUT_FETCH_FAILED, f"more than {MAX_REDIRECTS} redirects")


def _raise_for_status(response: urllib3.BaseHTTPResponse) -> None:
    status = response.status
    if status == 200:
        return
    detail = response.read(ERROR_BODY_BYTES, decode_content=True).decode("utf-8", "replace")
    summary = re.sub(r"\s+", " ", detail)[:300]
    if status == 403 and any(marker in detail.lower() for marker in EXPIRED_MARKERS):
        raise PermanentError(errors.INPUT_EXPIRED, f"the presigned download_url has expired: {summary}")
    if status in (404, 410):
        raise PermanentError(errors.INPUT_NOT_FOUND, f"input not found (HTTP {status})")
    if status == 429 or status >= 500:
        raise TransientError(
            errors.INPUT_FETCH_FAILED,
            f"input server answered HTTP {status}: {summary}",
            retry_after_s=_retry_after(response.headers.get("Retry-After")),
        )
    raise PermanentError(errors.INPUT_FETCH_FAILED, f"input server answered HTTP {status}: {summary}")


def _retry_after(value: str | None) -> float | None:
    return float(value) if value and value.strip().isdigit() else None


def _read_capped(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float) -> bytes:
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise PermanentError(errors.INPUT_TOO_LARGE, f"input is {length} bytes; the limit is {max_bytes}")
    try:
        return _collect(response.stream(CHUNK_BYTES), max_bytes, deadline)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientError(errors.INPUT_FETCH_FAILED, f"reading the input failed: {exc}") from exc


def _collect(chunks: Iterable[bytes], max_bytes: int, deadline: float) -> bytes:
    """Join streamed chunks, refusing past `max_bytes` and past the overall deadline."""
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > max_bytes:
            raise PermanentError(errors.INPUT_TOO_LARGE, f"input exceeds the limit of {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise TransientError(errors.INPUT_FETCH_FAILED, "input download exceeded its time limit")
    return bytes(data)


# --- S3 keys ----------------------------------------------------------------------------------------------


def fetch_s3(s3: Any, bucket: str, key: str, max_bytes: int) -> bytes:
    """GET an object, refusing one larger than `max_bytes` before reading it."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
        if int(response.get("ContentLength", 0)) > max_bytes:
            response["Body"].close()
            raise PermanentError(
                errors.INPUT_TOO_LARGE, f"s3://{bucket}/{key} is {response['ContentLength']} bytes; limit {max_bytes}"
            )
        return _collect(response["Body"].iter_chunks(CHUNK_BYTES), max_bytes, deadline=float("inf"))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NoSuchBucket"):
            raise PermanentError(errors.INPUT_NOT_FOUND, f"s3://{bucket}/{key} does not exist") from exc
        if code in ("AccessDenied", "403"):
            raise PermanentError(errors.INPUT_FETCH_FAILED, f"access to s3://{bucket}/{key} denied") from exc
        raise TransientError(errors.INPUT_FETCH_FAILED, f"reading s3://{bucket}/{key} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise TransientError(errors.INPUT_FETCH_FAILED, f"reading s3://{bucket}/{key} failed: {exc}") from exc
