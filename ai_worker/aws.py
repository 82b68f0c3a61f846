"""The AWS client factory: boto3 clients for SQS and S3 with bounded timeouts.

AWS settings come only from the SDK's own chain (credentials, `AWS_REGION`, `AWS_ENDPOINT_URL[_SQS|_S3]`), and
AWS calls are retried by botocore's `standard` retry mode (or whatever `AWS_RETRY_MODE` says), never by loops of
our own. Every call is bounded by what it waits for, so a connection that stops answering without being closed
(a silent drop) costs seconds, not botocore's 60 s default: SQS answers a plain call in milliseconds; a long
poll answers within its wait time; S3 reads of inputs stream, and the read timeout bounds each socket read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config

from ai_worker.config import Settings

CONNECT_TIMEOUT_S: Final = 3
SQS_READ_TIMEOUT_S: Final = 5
S3_READ_TIMEOUT_S: Final = 15
RECEIVE_MARGIN_S: Final = 5  # a long poll's read timeout is its wait time plus this


@dataclass(frozen=True)
class Clients:
    """The boto3 clients the worker uses; thread-safe, shared by the loop and the poller.

    `sqs_receive` serves long polls only: its read timeout is the poll's wait plus a margin and botocore does
    not retry it (the poller does, logging each failure), so a stalled poll is noticed within one read timeout."""

    sqs: Any
    s3: Any
    sqs_receive: Any = None


def client_config(read_timeout_s: float = SQS_READ_TIMEOUT_S, attempts: int | None = None) -> Config:
    """Bounded timeouts; botocore's standard retries unless AWS_RETRY_MODE chooses otherwise."""
    retries: Any = None if os.environ.get("AWS_RETRY_MODE") else {"mode": "standard"}
    if attempts is not None:
        retries = {**(retries or {}), "total_max_attempts": attempts}
    return Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=read_timeout_s, retries=retries)


def receive_timeout_s(wait_time_s: int) -> float:
    """The read timeout of a long poll of `wait_time_s`: past it, the connection is taken as dead."""
    return wait_time_s + RECEIVE_MARGIN_S


def make_clients(
    settings: Settings, session: boto3.session.Session | None = None, endpoint_url: str | None = None
) -> Clients:
    """SQS and S3 clients from the SDK chain. Pass a `session` to hook botocore events (e.g. to count calls);
    `endpoint_url` overrides the SQS endpoint (tests route it through a fault-injecting proxy)."""
    session = session or boto3.session.Session()
    sqs_kw: dict[str, Any] = {"endpoint_url": endpoint_url} if endpoint_url else {}
    return Clients(
        sqs=session.client("sqs", config=client_config(), **sqs_kw),
        s3=session.client("s3", config=client_config(S3_READ_TIMEOUT_S)),
        sqs_receive=session.client(
            "sqs", config=client_config(receive_timeout_s(settings.wait_time_s), attempts=1), **sqs_kw
        ),
    )


def s3_client() -> Any:
    """An S3 client alone, from the SDK chain (job processes read inputs and write results with it)."""
    return boto3.session.Session().client("s3", config=client_config(S3_READ_TIMEOUT_S))
