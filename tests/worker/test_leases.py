"""Leases and backoff: renewals at half-life within the 12 h cap, exponential jittered retry delays. (A job longer
than its lease processed exactly once: test_engine_memory.py.)"""

from __future__ import annotations

from ai_worker.broker import Message
from ai_worker.worker.leases import MAX_VISIBILITY_S, Leases, retry_delay, visibility_left


def message(received_at: float, handle: str = "r1") -> Message:
    return Message("q", "m1", handle, "{}", receive_count=1, sent_at=received_at, received_at=received_at)


def test_retry_delay_grows_with_jitter_and_caps() -> None:
    assert [retry_delay(n, 10, 900, rng=lambda: 0.0) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert [retry_delay(n, 10, 900, rng=lambda: 1.0) for n in (1, 2, 3, 4)] == [8, 15, 30, 60]
    assert retry_delay(20, 10, 900, rng=lambda: 0.0) == 900
    # each step is longer than the previous one whatever the jitter draws (shortest next > longest previous)
    for n in range(1, 10):
        assert retry_delay(n + 1, 1, 10_000, rng=lambda: 1.0) > retry_delay(n, 1, 10_000, rng=lambda: 0.0)


def test_retry_after_hint_is_honoured_within_the_cap() -> None:
    assert retry_delay(1, 10, 900, retry_after_s=120, rng=lambda: 0.0) == 120
    assert retry_delay(1, 10, 900, retry_after_s=5, rng=lambda: 0.0) == 10
    assert retry_delay(1, 10, 900, retry_after_s=10_000, rng=lambda: 0.0) == 900


def test_leases_renew_at_half_life_and_never_past_12h() -> None:
    now = [1000.0]
    leases = Leases(visibility_s=60, clock=lambda: now[0])
    m = message(received_at=1000.0)
    leases.add(m)
    assert leases.due() == []
    now[0] = 1029.0
    assert leases.due() == []
    now[0] = 1031.0
    assert leases.due() == [(m, 60)]
    assert leases.due() == []  # renewed: not due again until half of the new lease has passed
    now[0] = 1000.0 + MAX_VISIBILITY_S - 40
    renewal = leases.due()
    assert renewal and renewal[0][1] < 60
    assert now[0] + renewal[0][1] <= 1000.0 + MAX_VISIBILITY_S
    assert visibility_left(m, 1000.0 + MAX_VISIBILITY_S) == 0
    leases.drop(m)
    assert len(leases) == 0
