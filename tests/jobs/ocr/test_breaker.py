"""The file-backed circuit breaker on its own: one probe at a time, and a damaged file never wedges it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ai_worker.errors import TransientError
from ai_worker.jobs.breaker import Breaker


def test_closed_admits_and_trip_blocks_every_instance(tmp_path: Path) -> None:
    path = str(tmp_path / "b.json")
    one, other = Breaker("ocr", path, 60.0), Breaker("ocr", path, 60.0)  # as in two job processes
    one.admit()
    error = one.trip("PermissionDenied: billing disabled")
    assert (error.code, error.retry_after_s) == ("ocr_provider_unavailable", 60.0)
    with pytest.raises(TransientError) as err:
        other.admit()
    assert "billing disabled" in err.value.message
    assert other.state()["state"] == "open"


def test_only_one_probe_after_the_open_period(tmp_path: Path) -> None:
    path = str(tmp_path / "b.json")
    breaker = Breaker("llm", path, 0.1)
    breaker.trip("AuthenticationError")
    time.sleep(0.15)
    breaker.admit()  # the probe
    with pytest.raises(TransientError):  # everyone else waits for its verdict
        Breaker("llm", path, 0.1).admit()
    breaker.record_success()
    assert breaker.state() == {}
    Breaker("llm", path, 0.1).admit()


def test_damaged_state_file_reads_as_closed(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"state": "op')
    Breaker("ocr", str(path), 60.0).admit()
