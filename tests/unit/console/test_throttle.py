"""The sign-in throttle: failures per address group and per access key id in a sliding window, successes
forgotten, memory bounded."""

from __future__ import annotations

import pytest

from ember.console.throttle import LoginThrottle, address_group
from ember.contract.errors import ThrottlingException
from tests.unit.console.conftest import Clock

KEY = "AKIAEXAMPLE000000001"


def test_the_eleventh_attempt_in_a_minute_is_throttled_until_the_oldest_leaves_the_window() -> None:
    clock = Clock(0.0)
    throttle = LoginThrottle(clock=clock)
    for n in range(10):
        throttle.begin("10.0.0.1", f"AKIA{n}")
        clock.advance(2)
    with pytest.raises(ThrottlingException, match="from this address: at most 10 per 60 s") as refused:
        throttle.begin("10.0.0.1", "AKIAOTHER")
    assert refused.value.retry_after_seconds == 40
    throttle.begin("10.0.0.2", "AKIAOTHER")
    clock.advance(40)
    throttle.begin("10.0.0.1", "AKIAOTHER")
    with pytest.raises(ThrottlingException):
        throttle.begin("10.0.0.1", "AKIAOTHER")


def test_failures_for_one_key_id_are_throttled_whatever_address_they_come_from() -> None:
    clock = Clock(0.0)
    throttle = LoginThrottle(clock=clock)
    for n in range(10):
        throttle.begin(f"198.51.100.{n}", KEY)
        clock.advance(3)
    with pytest.raises(ThrottlingException, match="with this access key id: at most 10 per 60 s") as refused:
        throttle.begin("203.0.113.9", KEY)
    assert refused.value.retry_after_seconds == 30
    throttle.begin("203.0.113.9", "AKIAANOTHERKEY")  # the fresh address is not counted by the refusal
    clock.advance(30)
    throttle.begin("203.0.113.9", KEY)


def test_when_both_are_used_up_retry_after_is_the_longer_wait() -> None:
    clock = Clock(0.0)
    throttle = LoginThrottle(max_failures=2, max_key_failures=2, clock=clock)
    throttle.begin("10.0.0.1", KEY)
    clock.advance(10)
    throttle.begin("10.0.0.2", "AKIAB")
    throttle.begin("10.0.0.2", KEY)
    clock.advance(5)
    throttle.begin("10.0.0.1", "AKIAC")
    # 10.0.0.1 may try again in 45 s, KEY in 45 s, 10.0.0.2 in 55 s.
    with pytest.raises(ThrottlingException, match="from this address") as refused:
        throttle.begin("10.0.0.2", KEY)
    assert refused.value.retry_after_seconds == 55


def test_ipv6_addresses_count_by_their_64() -> None:
    throttle = LoginThrottle(max_failures=2, clock=Clock(0.0))
    throttle.begin("2001:db8:1:2::1", "AKIAA")
    throttle.begin("2001:db8:1:2:ffff:ffff:ffff:fffe", "AKIAB")
    with pytest.raises(ThrottlingException, match="from this address's /64"):
        throttle.begin("2001:db8:1:2:abcd::9", "AKIAC")
    throttle.begin("2001:db8:1:3::1", "AKIAD")  # the next /64 is another host


def test_address_groups() -> None:
    assert address_group("192.0.2.7") == "192.0.2.7"
    assert address_group("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_group("2001:DB8:1:2::") == "2001:db8:1:2::/64"
    assert address_group("::ffff:192.0.2.7") == "192.0.2.7"  # an IPv4 client on a dual-stack socket
    assert address_group("fe80::1%eth0") == "fe80::/64"
    assert address_group("::1") == "::/64"
    assert address_group("unknown") == "unknown"


def test_a_successful_attempt_is_forgotten() -> None:
    clock = Clock(0.0)
    throttle = LoginThrottle(max_failures=2, max_key_failures=2, clock=clock)
    for _ in range(5):
        throttle.succeeded(throttle.begin("a", KEY))
    throttle.begin("a", KEY)
    throttle.begin("a", KEY)
    with pytest.raises(ThrottlingException):
        throttle.begin("a", KEY)
    with pytest.raises(ThrottlingException):
        throttle.begin("b", KEY)
    with pytest.raises(ThrottlingException):
        throttle.begin("a", "AKIAOTHER")


def test_a_success_forgets_only_its_own_attempt() -> None:
    clock = Clock(0.0)
    throttle = LoginThrottle(max_failures=2, max_key_failures=2, clock=clock)
    failed = throttle.begin("a", KEY)
    clock.advance(1)
    throttle.succeeded(throttle.begin("a", KEY))
    throttle.begin("a", KEY)
    with pytest.raises(ThrottlingException):
        throttle.begin("a", KEY)
    throttle.succeeded(failed)  # a late success of an older attempt frees exactly that one
    throttle.begin("a", KEY)


def test_tracked_addresses_and_key_ids_are_bounded() -> None:
    throttle = LoginThrottle(max_failures=1, max_key_failures=1, max_tracked=3, clock=Clock(0.0))
    for n, address in enumerate(("a", "b", "c", "d")):
        throttle.begin(address, f"AKIA{n}")
    throttle.begin("a", "AKIA0")  # both forgotten: the least recently failing ones went first
    with pytest.raises(ThrottlingException):
        throttle.begin("d", "AKIANEW")
    with pytest.raises(ThrottlingException):
        throttle.begin("new", "AKIA3")
