"""A silent connection stall: SQS traffic goes through a TCP proxy on 127.0.0.1 that, on demand, keeps connections
open but stops forwarding a byte (a dropped route, a dead NAT entry). The worker logs the failed polls, the health
probe turns unhealthy while no receive completes, and once the proxy forwards again receiving resumes within 30 s
(each long poll is bounded by its wait time plus a margin, not botocore's 60 s default)."""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from worker.fake_handlers import REGISTRY
from worker.harness import connect, create_infra, make_settings, send_job, wait_for, wait_result

from ai_worker.aws import make_clients
from ai_worker.worker import heartbeat, run_worker

pytestmark = pytest.mark.slow


class BlackholeProxy:
    """Forwards 127.0.0.1:<port> to the upstream; while `blackholed`, any connection that carries data is
    silently dead from then on (bytes swallowed, never closed). New connections after `recover()` work."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.blackholed = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._sockets += [client, upstream]
            state = {"dead": self.blackholed}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, state), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, state: dict[str, bool]) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                for s in (src, dst):
                    s.close()
                return
            state["dead"] = state["dead"] or self.blackholed
            if not state["dead"]:
                try:
                    dst.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        self.listener.close()
        for s in self._sockets:
            s.close()


def test_blackholed_connection_is_detected_and_receiving_resumes(
    moto_endpoint: str, unique_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(unique_prefix, tmp_path, slots=1, wait_time_s=1)
    clients = connect(settings)
    create_infra(clients, settings)
    parts = urllib.parse.urlsplit(moto_endpoint)
    proxy = BlackholeProxy((parts.hostname or "127.0.0.1", parts.port or 80))
    through_proxy = make_clients(settings, endpoint_url=f"http://127.0.0.1:{proxy.port}")
    stop = threading.Event()
    exit_code: list[int] = []
    worker = threading.Thread(
        target=lambda: exit_code.append(
            run_worker(settings, "cpu", registry=REGISTRY, stop=stop, clients=through_proxy)
        ),
        daemon=True,
    )
    worker.start()
    try:
        first = send_job(clients, settings, "lite", "ocr", do="echo")
        assert wait_result(clients, settings, first)["status"] == "done"
        wait_for(lambda: heartbeat.check(settings)[0], 15, "a healthy worker")

        proxy.blackholed = True
        unhealthy = wait_for(lambda: not heartbeat.check(settings)[0] and heartbeat.check(settings), 45, "unhealthy")
        assert "no receive from SQS completed" in unhealthy[1]
        assert any("receive from" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)
        second = send_job(clients, settings, "lite", "ocr", do="echo")

        proxy.blackholed = False
        recovered = time.monotonic()
        assert wait_result(clients, settings, second, timeout=40)["status"] == "done"
        resumed_s = time.monotonic() - recovered
        assert resumed_s < 30, resumed_s
        wait_for(lambda: heartbeat.check(settings)[0], 20, "healthy again")
        print(f"receiving resumed {resumed_s:.1f}s after the connection recovered")
    finally:
        stop.set()
        worker.join(60)
        proxy.close()
    assert exit_code == [0]
