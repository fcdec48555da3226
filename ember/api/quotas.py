"""Per-account quotas of RunMicrovm: a call-rate token bucket (429) and capacity limits (402), from ``ctx.quotas``.

Capacity counts every MicroVM that is not TERMINATED, SUSPENDED ones included: a parked VM keeps its memory and
disk (CONTRACT.md §8.2). The checks run inside RunMicrovm's write transaction, so two launches cannot both take
the last slot.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ember.api.context import Quotas
from ember.contract.arns import RESOURCE_TYPE_MICROVM
from ember.contract.enums import MicrovmState
from ember.contract.errors import ServiceQuotaExceededException, ThrottlingException
from ember.store import microvms
from ember.store.models import Microvm

RUN_RATE_QUOTA_CODE = "L-535CA9B6"
"""The managed service's quota code of the RunMicrovm rate ([C])."""
MEMORY_QUOTA_CODE = "L-CD1C0CC4"
"""The managed service's quota code of "max allocated microVM memory" ([C])."""
MICROVM_COUNT_QUOTA_CODE = "ember-max-microvms"
"""Ember's quota of MicroVMs that are not TERMINATED (the managed service has no such published code)."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """A token bucket per account: ``rate`` calls per second on average, bursts up to ``burst``."""

    rate: float
    burst: int
    operation: str = "RunMicrovm"
    quota_code: str = RUN_RATE_QUOTA_CODE
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, account_id: str, *, now: float | None = None) -> None:
        """Spend one call, or raise ThrottlingException with the seconds until one is available (Retry-After)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.setdefault(account_id, _Bucket(float(self.burst), now))
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait_s = (1.0 - bucket.tokens) / self.rate if self.rate > 0 else 60.0
        raise ThrottlingException(
            f"Rate exceeded: {self.operation} allows {self.rate:g} calls per second (bursts of {self.burst}) per "
            f"account; retry after {math.ceil(wait_s)} s",
            quota_code=self.quota_code,
            retry_after_seconds=max(1, math.ceil(wait_s)),
        )


def live_microvms(session: Session, account_id: str) -> int:
    """How many of the account's MicroVMs are not TERMINATED."""
    stmt = (
        select(func.count())
        .select_from(Microvm)
        .where(Microvm.account_id == account_id, Microvm.state != MicrovmState.TERMINATED)
    )
    return int(session.scalar(stmt) or 0)


def check_capacity(session: Session, quotas: Quotas, account_id: str, memory_mib: int) -> None:
    """ServiceQuotaExceededException (402) if one more MicroVM of ``memory_mib`` would pass a capacity quota."""
    count = live_microvms(session, account_id)
    if count + 1 > quotas.max_microvms:
        raise ServiceQuotaExceededException(
            f"the account has {count} MicroVMs that are not TERMINATED, the maximum is {quotas.max_microvms}: "
            "terminate some (SUSPENDED ones count too)",
            resource_type=RESOURCE_TYPE_MICROVM,
            quota_code=MICROVM_COUNT_QUOTA_CODE,
        )
    used = microvms.allocated_memory_mib(session, account_id)
    if used + memory_mib > quotas.max_memory_mib:
        raise ServiceQuotaExceededException(
            f"a MicroVM of {memory_mib} MiB would bring the account's allocated memory to {used + memory_mib} MiB, "
            f"more than the maximum {quotas.max_memory_mib} MiB (SUSPENDED MicroVMs hold memory too): "
            "terminate some first",
            resource_type=RESOURCE_TYPE_MICROVM,
            quota_code=MEMORY_QUOTA_CODE,
        )


RUN_LIMITER = web.AppKey("ember_run_limiter", RateLimiter)
"""Where the app keeps its RunMicrovm rate limiter (one per server, built from ``ctx.quotas``)."""
