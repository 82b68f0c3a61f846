"""Input fetching: the SSRF guard (scheme, resolved and connected addresses), size caps, timeouts, expired
presigned URLs and the error codes of each failure, against small local HTTP servers and moto's S3."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ai_worker import inputs
from ai_worker.config import InputSettings
from ai_worker.errors import PermanentError, TransientError
from ai_worker.inputs import check_presigned_expiry, fetch_s3, fetch_url, refuse_address

from .harness import connect, make_settings

BODY = b"0123456789" * 1000
LOCAL = InputSettings(allow_http=True, allow_private=True, timeout_s=3, max_bytes=len(BODY))
GUARDED = InputSettings(allow_http=True, allow_private=False, timeout_s=3)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/ok":
            self._send(200, BODY)
        elif path == "/chunked":  # no Content-Length: the cap must hold while streaming
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(3):
                chunk = BODY
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/missing":
            self._send(404, b"<Error><Code>NoSuchKey</Code></Error>")
        elif path == "/expired":
            self._send(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
        elif path == "/denied":
            self._send(403, b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")
        elif path == "/busy":
            self._send(503, b"slow down", {"Retry-After": "7"})
        elif path == "/redirect":
            self._send(307, b"", {"Location": "/ok"})
        else:
            self._send(500, b"unexpected")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("169.254.169.254", True),  # instance metadata
        ("127.0.0.1", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("192.168.0.10", True),
        ("172.16.5.5", True),
        ("100.64.0.1", True),  # carrier-grade NAT / shared
        ("224.0.0.1", True),
        ("0.0.0.0", True),
        ("fe80::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
        ("fd00::1", True),
        ("52.95.110.1", False),
        ("2600:1f18::1", False),
    ],
)
def test_refuse_address(address: str, refused: bool) -> None:
    assert (refuse_address(address) is not None) is refused


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://localhost/secret",
        "https://127.0.0.1:8443/x",
        "https://[::1]/x",
        "http://10.0.0.5/x",
    ],
)
def test_guard_refuses_metadata_loopback_and_private(url: str) -> None:
    with pytest.raises(PermanentError) as err:
        fetch_url(url, GUARDED)
    assert err.value.code == "input_url_refused"


@pytest.mark.parametrize("url", ["http://example.com/x", "file:///etc/passwd", "ftp://example.com/x", "https:///x"])
def test_only_https_by_default(url: str) -> None:
    with pytest.raises(PermanentError) as err:
        fetch_url(url, InputSettings())
    assert err.value.code == "input_url_refused"


def test_guard_checks_the_connected_address_not_just_the_name(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # DNS rebinding: the first lookup says "public", the connection lands on loopback. The socket check refuses.
    monkeypatch.setattr(inputs, "resolve", lambda host, port: ["52.95.110.1"])
    with pytest.raises(PermanentError) as err:
        fetch_url(server + "/ok", GUARDED)
    assert err.value.code == "input_url_refused" and "127.0.0.1" in err.value.message


def test_fetch_ok_and_redirect(server: str) -> None:
    assert fetch_url(server + "/ok", LOCAL) == BODY
    assert fetch_url(server + "/redirect", LOCAL) == BODY


def test_size_cap_by_content_length_and_while_streaming(server: str) -> None:
    small = InputSettings(allow_http=True, allow_private=True, max_bytes=len(BODY) - 1)
    with pytest.raises(PermanentError) as err:
        fetch_url(server + "/ok", small)
    assert err.value.code == "input_too_large"
    with pytest.raises(PermanentError) as err:
        fetch_url(server + "/chunked", LOCAL)  # 3x the cap, no Content-Length
    assert err.value.code == "input_too_large"


@pytest.mark.parametrize(
    ("path", "kind", "code"),
    [
        ("/missing", PermanentError, "input_not_found"),
        ("/expired", PermanentError, "input_url_expired"),
        ("/denied", PermanentError, "input_fetch_failed"),
        ("/busy", TransientError, "input_fetch_failed"),
    ],
)
def test_http_failures_have_codes(server: str, path: str, kind: type[Exception], code: str) -> None:
    with pytest.raises(kind) as err:
        fetch_url(server + path, LOCAL)
    assert getattr(err.value, "code", None) == code


def test_retry_after_is_passed_on(server: str) -> None:
    with pytest.raises(TransientError) as err:
        fetch_url(server + "/busy", LOCAL)
    assert err.value.retry_after_s == 7


def test_unreachable_server_is_transient() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    with pytest.raises(TransientError) as err:
        fetch_url(f"http://127.0.0.1:{port}/x", LOCAL)
    assert err.value.code == "input_fetch_failed"


def test_presigned_expiry_is_read_from_the_url() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    signed = (now - timedelta(hours=2)).strftime("%Y%m%dT%H%M%SZ")
    with pytest.raises(PermanentError) as err:
        check_presigned_expiry(f"X-Amz-Date={signed}&X-Amz-Expires=3600&X-Amz-Signature=x", now)
    assert err.value.code == "input_url_expired"
    check_presigned_expiry(f"X-Amz-Date={signed}&X-Amz-Expires=86400", now)  # still valid
    with pytest.raises(PermanentError):
        check_presigned_expiry(f"Expires={int(now.timestamp()) - 1}&Signature=x", now)  # SigV2
    check_presigned_expiry("X-Amz-Date=garbage&X-Amz-Expires=1", now)  # malformed: the server decides


def test_fetch_s3_caps_and_codes(moto_endpoint: str, unique_prefix: str, tmp_path: Path) -> None:
    settings = make_settings(unique_prefix, tmp_path)
    s3 = connect(settings).s3
    s3.create_bucket(Bucket=settings.results_bucket)
    s3.put_object(Bucket=settings.results_bucket, Key="in/a.bin", Body=BODY)
    assert fetch_s3(s3, settings.results_bucket, "in/a.bin", len(BODY)) == BODY
    with pytest.raises(PermanentError) as err:
        fetch_s3(s3, settings.results_bucket, "in/a.bin", len(BODY) - 1)
    assert err.value.code == "input_too_large"
    with pytest.raises(PermanentError) as err:
        fetch_s3(s3, settings.results_bucket, "in/none.bin", len(BODY))
    assert err.value.code == "input_not_found"
