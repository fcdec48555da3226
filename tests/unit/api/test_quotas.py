"""The RunMicrovm token bucket."""

from __future__ import annotations

import pytest

from ember.api.quotas import RateLimiter
from ember.contract.errors import ThrottlingException


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    for _ in range(3):
        limiter.take("a", now=0.0)
    with pytest.raises(ThrottlingException) as e:
        limiter.take("a", now=0.0)
    assert e.value.retry_after_seconds == 1
    limiter.take("a", now=0.5)
    limiter.take("b", now=0.5)  # accounts have separate buckets


def test_retry_after_is_whole_seconds_until_a_token() -> None:
    limiter = RateLimiter(rate=0.25, burst=1)
    limiter.take("a", now=0.0)
    with pytest.raises(ThrottlingException, match="retry after 4 s") as e:
        limiter.take("a", now=0.0)
    assert e.value.retry_after_seconds == 4
