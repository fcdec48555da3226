"""Per-VM token buckets: burst, refill, Retry-After, independence between VMs, and forgetting idle buckets."""

from __future__ import annotations

import pytest

from ember.gateway.ratelimit import SWEEP_INTERVAL_S, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refusal_with_the_wait_until_the_next_token() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_buckets_are_per_vm() -> None:
    limiter = RateLimiter(1.0, 1, Clock())
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0.0


def test_refill_is_capped_at_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(10.0, 2, clock)
    limiter.acquire("a")
    clock.now += 100
    assert [limiter.acquire("a") for _ in range(3)][-1] > 0


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert RateLimiter.retry_after_header(0.01) == "1"
    assert RateLimiter.retry_after_header(1.2) == "2"


def test_full_buckets_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 5, clock)
    limiter.acquire("idle")
    clock.now += SWEEP_INTERVAL_S + 1
    limiter.acquire("busy")
    assert len(limiter) == 1


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_settings_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)
