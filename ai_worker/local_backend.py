"""The embedded local backend: SQS and S3 served in memory by moto on 127.0.0.1, for development and the demo.

Guarantees:
- Nothing goes to AWS: while the backend is open, this process and every child it starts point the AWS SDK at
  127.0.0.1 (`AWS_ENDPOINT_URL*`) with dummy credentials, and a banner on stderr says so.
- Production never lands here: `auto` selects local only when no AWS configuration at all is present, and the
  images and ECS task definitions set `AI_WORKER_BACKEND=aws` explicitly.
- The queues, DLQs and buckets of the configured layout exist once `open_backend` yields.
- State lives in the process that started the server and ends with it. Another process on the same machine
  (`ai-worker submit` beside `ai-worker run`) finds the server on `AI_WORKER_LOCAL_PORT` and uses it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from ai_worker.config import Settings

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

HOST = "127.0.0.1"  # loopback only: the embedded server is never reachable from another machine
DEFAULT_REGION = "us-east-1"
PROBE_TIMEOUT_S = 2.0
# Any of these means the SDK has somewhere real to go, so `auto` must not pick the local backend.
AWS_CONFIG_VARS = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
# Variables that would send the SDK elsewhere, or with other credentials, while the local backend is open.
_CLEARED_VARS = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")

Backend = Literal["aws", "local"]


class LocalBackendError(RuntimeError):
    """The local backend cannot start (e.g. its port is taken by something else)."""


def aws_configuration(environ: Mapping[str, str] | None = None) -> str | None:
    """The first variable that configures AWS, or None when the environment has no AWS configuration."""
    env = os.environ if environ is None else environ
    return next((name for name in AWS_CONFIG_VARS if env.get(name)), None)


def resolve_backend(settings: Settings, environ: Mapping[str, str] | None = None) -> Backend:
    if settings.backend == "aws":
        return "aws"
    if settings.backend == "local":
        return "local"
    return "aws" if aws_configuration(environ) else "local"


def local_settings(settings: Settings) -> Settings:
    """Settings for local mode: inputs may come over http from the loopback endpoint (the SSRF guard allows it)."""
    inputs = dataclasses.replace(settings.inputs, allow_http=True, allow_private=True)
    return dataclasses.replace(settings, backend="local", inputs=inputs)


def silence_request_log() -> None:
    """Turn off werkzeug's log of every request (every SQS poll, at INFO): the worker's own logs are what matter,
    and formatting and writing a line per request is work for the server (14 % of a busy moto server's profile
    samples, though too little to tell apart in its CPU time per request on a loaded machine)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


def _is_local_backend(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=PROBE_TIMEOUT_S) as resp:
            return resp.status == 200 and b"moto" in resp.read().lower()
    except OSError:
        return False


class LocalBackend:
    """An embedded moto server (or one already running on the port) and the environment that points at it."""

    def __init__(self, settings: Settings, *, announce: bool = True, attach_only: bool = False) -> None:
        self.settings = settings
        self.announce = announce
        # Admin commands attach to a running backend: a server of their own would vanish with what they sent.
        self.attach_only = attach_only
        self.endpoint = ""
        self.owned = False  # False when another process's server is reused: stopping must leave it alone
        self._server: ThreadedMotoServer | None = None
        self._saved_env: dict[str, str | None] = {}

    def start(self) -> str:
        """Start (or find) the server, point the environment at it, create queues and buckets; return the URL."""
        port = self.settings.local_port
        if port and _port_in_use(port):
            endpoint = f"http://{HOST}:{port}"
            if not _is_local_backend(endpoint):
                raise LocalBackendError(
                    f"port {port} is in use by something that is not an ai-worker local backend; "
                    "set AI_WORKER_LOCAL_PORT to a free port"
                )
            self.endpoint = endpoint
        elif self.attach_only:
            raise LocalBackendError(
                f"no local backend is running on {HOST}:{port}: start one with `ai-worker run` in another "
                "terminal, or configure AWS (AI_WORKER_BACKEND=aws)"
            )
        else:
            from moto.server import ThreadedMotoServer

            silence_request_log()
            server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
            server.start()
            self._server = server
            self.owned = True
            self.endpoint = "http://{}:{}".format(*server.get_host_and_port())
        self._point_environment()
        self._create_resources()
        if self.announce:
            self._banner()
        return self.endpoint

    def stop(self) -> None:
        """Restore the environment and, when this process started the server, stop it (its state is lost)."""
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _point_environment(self) -> None:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        wanted: dict[str, str | None] = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL_SQS": self.endpoint,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            # botocore reads AWS_DEFAULT_REGION; other SDKs and tools read AWS_REGION.
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            # Children (job processes) that read their settings from the environment get the same local view.
            "AI_WORKER_INPUT_ALLOW_HTTP": "true",
            "AI_WORKER_INPUT_ALLOW_PRIVATE": "true",
            **dict.fromkeys(_CLEARED_VARS),
        }
        for name, value in wanted.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _create_resources(self) -> None:
        from ai_worker.aws import make_clients
        from ai_worker.provisioning import create_buckets, create_queues

        clients = make_clients(self.settings)
        create_queues(clients.sqs, self.settings)
        create_buckets(clients.s3, self.settings)

    def _banner(self) -> None:
        origin = "embedded in this process" if self.owned else "already running (started by another ai-worker)"
        lines = [
            "LOCAL MODE - nothing is sent to AWS.",
            f"SQS and S3 are served in memory by a moto server {origin} at {self.endpoint}.",
            "Queues, jobs and results vanish when the process that started it exits.",
            "To use AWS: set AI_WORKER_BACKEND=aws (or configure AWS credentials).",
        ]
        rule = "=" * max(len(line) for line in lines)
        print("\n".join([rule, *lines, rule]), file=sys.stderr, flush=True)


@contextmanager
def open_backend(settings: Settings, *, announce: bool = True, attach_only: bool = False) -> Iterator[Settings]:
    """Yield the settings to run with: unchanged on AWS; local settings with the local backend running."""
    if resolve_backend(settings) == "aws":
        yield settings
        return
    backend = LocalBackend(settings, announce=announce, attach_only=attach_only)
    backend.start()
    try:
        yield local_settings(settings)
    finally:
        backend.stop()
