"""The console sign-in throttle: at most ``MAX_FAILURES`` failed (or unfinished) sign-ins per remote address per
``WINDOW_S``, then ThrottlingException (429, Retry-After) until the oldest one leaves the window.

``ember.api.quotas.RateLimiter`` does not fit: it spends a token on every call, successes included, and cannot
refuse *before* a credential check. Here an attempt is counted when it starts and forgotten only if it succeeds,
so concurrent guesses cannot all slip past the count while their store reads are in flight, and a throttled
address is refused even with the right key pair (otherwise a 200 among 429s would still confirm a guess).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from ember.contract.errors import ThrottlingException

MAX_FAILURES = 10
WINDOW_S = 60.0
MAX_ADDRESSES = 10_000
"""Addresses tracked at once; beyond it the least recently failing one is forgotten (memory stays bounded)."""


class LoginThrottle:
    """Failed sign-in attempts per remote address in a sliding window."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_addresses = max_addresses
        self.clock = clock
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()

    def begin(self, address: str) -> float:
        """Count an attempt from ``address`` (its stamp is returned) or raise ThrottlingException."""
        now = self.clock()
        stamps = self._attempts.get(address)
        if stamps is not None:
            while stamps and stamps[0] <= now - self.window_s:
                stamps.popleft()
            if len(stamps) >= self.max_failures:
                wait_s = stamps[0] + self.window_s - now
                raise ThrottlingException(
                    f"too many failed console sign-ins from this address: at most {self.max_failures} per "
                    f"{self.window_s:g} s; retry after {math.ceil(wait_s)} s",
                    retry_after_seconds=max(1, math.ceil(wait_s)),
                )
        else:
            stamps = self._attempts[address] = deque()
        stamps.append(now)
        self._attempts.move_to_end(address)
        while len(self._attempts) > self.max_addresses:
            self._attempts.popitem(last=False)
        return now

    def succeeded(self, address: str, stamp: float) -> None:
        """Forget the attempt ``stamp`` of ``address``: it signed in."""
        stamps = self._attempts.get(address)
        if stamps is None:
            return
        try:
            stamps.remove(stamp)
        except ValueError:
            return
        if not stamps:
            del self._attempts[address]
