"""The console sign-in throttle: at most ``MAX_FAILURES`` failed (or unfinished) sign-ins per remote address and
``MAX_KEY_FAILURES`` per access key id per ``WINDOW_S``, then ThrottlingException (429, Retry-After) until the
oldest one leaves the window.

Addresses are counted by ``address_group``: an IPv4 address on its own, an IPv6 address by its /64 (one host is
usually given a whole /64, so counting single IPv6 addresses would give it 2^64 fresh counters). The count per
access key id (unknown ids included, so the answer says nothing of which exist) stops a guesser who spreads its
attempts over many addresses; the price is that anyone can hold a known key id's console sign-in off for a
minute at a time. SigV4 calls with that key are not affected.

``ember.api.quotas.RateLimiter`` does not fit: it spends a token on every call, successes included, and cannot
refuse *before* a credential check. Here an attempt is counted when it starts and forgotten only if it succeeds,
so concurrent guesses cannot all slip past the count while their store reads are in flight, and a throttled
address or key id is refused even with the right key pair (otherwise a 200 among 429s would still confirm a guess).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from ember.contract.errors import ThrottlingException

MAX_FAILURES = 10
"""Failed sign-ins per remote address (IPv6: per /64) per window."""
MAX_KEY_FAILURES = 10
"""Failed sign-ins per access key id per window, from any number of addresses."""
WINDOW_S = 60.0
MAX_TRACKED = 10_000
"""Addresses (and, separately, key ids) tracked at once; beyond it the least recently failing one is forgotten
(memory stays bounded)."""
IPV6_GROUP_PREFIX = 64


def address_group(remote: str) -> str:
    """What ``remote`` is counted as: an IPv4 address itself (also when IPv4-mapped), an IPv6 address its /64
    (``2001:db8:1:2::/64``); anything that is not an address (``unknown``, a Unix socket) as it is."""
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])  # a zone (fe80::1%eth0) is no part of the address
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_GROUP_PREFIX), strict=False))
    return str(address)


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt being counted: pass it to ``LoginThrottle.succeeded`` when it signs in."""

    address: str
    """The address group it was counted under (``address_group``)."""
    access_key_id: str
    stamp: float


class _Window:
    """Attempt stamps per key in a sliding window, at most ``max_tracked`` keys (least recently failing dropped)."""

    def __init__(self, limit: int, window_s: float, max_tracked: int) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_tracked = max_tracked
        self._stamps: OrderedDict[str, deque[float]] = OrderedDict()

    def wait_s(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may try again, or None if it may now (expired stamps are dropped)."""
        stamps = self._stamps.get(key)
        if stamps is None:
            return None
        while stamps and stamps[0] <= now - self.window_s:
            stamps.popleft()
        if len(stamps) < self.limit:
            return None
        return stamps[0] + self.window_s - now

    def add(self, key: str, now: float) -> None:
        self._stamps.setdefault(key, deque()).append(now)
        self._stamps.move_to_end(key)
        while len(self._stamps) > self.max_tracked:
            self._stamps.popitem(last=False)

    def forget(self, key: str, stamp: float) -> None:
        stamps = self._stamps.get(key)
        if stamps is None:
            return
        try:
            stamps.remove(stamp)
        except ValueError:
            return
        if not stamps:
            del self._stamps[key]


class LoginThrottle:
    """Failed sign-in attempts per remote address group and per access key id, each in a sliding window."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        max_key_failures: int = MAX_KEY_FAILURES,
        window_s: float = WINDOW_S,
        max_tracked: int = MAX_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        self._by_address = _Window(max_failures, window_s, max_tracked)
        self._by_key = _Window(max_key_failures, window_s, max_tracked)

    def begin(self, remote: str, access_key_id: str) -> Attempt:
        """Count an attempt from ``remote`` with ``access_key_id``, or raise ThrottlingException (nothing counted)
        when either has used up its failures in the window; Retry-After is then the longer of the two waits."""
        now = self.clock()
        address = address_group(remote)
        refusals = []
        wait_s = self._by_address.wait_s(address, now)
        if wait_s is not None:
            where = "this address's /64" if "/" in address else "this address"
            refusals.append((wait_s, f"from {where}: at most {self._by_address.limit}"))
        wait_s = self._by_key.wait_s(access_key_id, now)
        if wait_s is not None:
            refusals.append((wait_s, f"with this access key id: at most {self._by_key.limit}"))
        if refusals:
            wait_s, what = max(refusals)
            raise ThrottlingException(
                f"too many failed console sign-ins {what} per {self.window_s:g} s; retry after {math.ceil(wait_s)} s",
                retry_after_seconds=max(1, math.ceil(wait_s)),
            )
        self._by_address.add(address, now)
        self._by_key.add(access_key_id, now)
        return Attempt(address, access_key_id, now)

    def succeeded(self, attempt: Attempt) -> None:
        """Forget ``attempt``: it signed in."""
        self._by_address.forget(attempt.address, attempt.stamp)
        self._by_key.forget(attempt.access_key_id, attempt.stamp)
