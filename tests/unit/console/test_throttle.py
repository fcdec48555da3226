"""The sign-in throttle: failures per address in a sliding window, successes forgotten, memory bounded."""

from __future__ import annotations

import pytest

from ember.console.throttle import LoginThrottle
from ember.contract.errors import ThrottlingException
from tests.unit.console.conftest import Clock


def test_the_eleventh_attempt_in_a_minute_is_throttled_until_the_oldest_leaves_the_window() -> None:
    clock = Clock(0.0)
    throttle = LoginThrottle(clock=clock)
    for _ in range(10):
        throttle.begin("10.0.0.1")
        clock.advance(2)
    with pytest.raises(ThrottlingException) as refused:
        throttle.begin("10.0.0.1")
    assert refused.value.retry_after_seconds == 40
    throttle.begin("10.0.0.2")
    clock.advance(40)
    throttle.begin("10.0.0.1")
    with pytest.raises(ThrottlingException):
        throttle.begin("10.0.0.1")


def test_a_successful_attempt_is_forgotten() -> None:
    clock = Clock(0.0)
    throttle = LoginThrottle(max_failures=2, clock=clock)
    for _ in range(5):
        throttle.succeeded("a", throttle.begin("a"))
    throttle.begin("a")
    throttle.begin("a")
    with pytest.raises(ThrottlingException):
        throttle.begin("a")
    throttle.succeeded("a", 123.0)  # not an attempt: nothing changes
    throttle.succeeded("b", 0.0)


def test_tracked_addresses_are_bounded() -> None:
    throttle = LoginThrottle(max_failures=1, max_addresses=3, clock=Clock(0.0))
    for address in ("a", "b", "c", "d"):
        throttle.begin(address)
    throttle.begin("a")  # forgotten: the least recently failing one went first
    with pytest.raises(ThrottlingException):
        throttle.begin("d")
