"""Endpoint tokens on the client side: a cache that re-mints early, and the data plane's retry policy.

A token (CreateMicrovmAuthToken) is cached per (MicroVM, port) and used until 80% of its lifetime has
passed, so a request never leaves with a token about to expire; a 401/403 drops it and mints a new one
once. ``RetryPolicy`` says how a request to an endpoint is retried (CONTRACT §3):

- **502** (the VM is resuming, or the app is not listening yet): again every ``resume_interval_s``
  for up to ``resume_patience_s``. Ember's gateway normally holds a request while the VM resumes,
  so this is a fallback. A 502 that says auto-resume is off is not retried.
- **429** (the endpoint's rate limit): after ``Retry-After``, else 0.5 s doubling to 8 s, 6 tries.
- **401/403** (token expired or refused): one new token, one more try.

Anything else is the app's answer and is returned as is, as is the last answer once retries run out.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TOKEN_HEADER = "X-aws-proxy-auth"
PORT_HEADER = "X-aws-proxy-port"
DEFAULT_PORT = 8080
DEFAULT_TOKEN_MINUTES = 15
"""Token lifetime when none is asked for ([C]'s default; the API allows 1-60 minutes)."""
REMINT_AT_FRACTION = 0.8
"""A cached token is replaced once this fraction of its lifetime has passed."""
NOT_RETRIED_502_CODES = frozenset({"microvm_suspended", "microvm_not_found"})
"""Gateway 502 codes that waiting cannot fix (auto-resume off)."""


@dataclass(frozen=True)
class CachedToken:
    """Headers to send (the TokenParts) and when to stop using them (``time.monotonic`` seconds)."""

    headers: dict[str, str]
    use_until: float


class TokenCache:
    """Tokens by (MicroVM id, port, kind), thread-safe; ``clock`` is monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, int, str], CachedToken] = {}
        self._lock = threading.Lock()

    def get(self, microvm_id: str, port: int, kind: str = "proxy") -> dict[str, str] | None:
        """The cached headers if still fresh, else None."""
        with self._lock:
            token = self._tokens.get((microvm_id, port, kind))
            if token is None or self._clock() >= token.use_until:
                return None
            return token.headers

    def put(self, microvm_id: str, port: int, headers: dict[str, str], minutes: int, kind: str = "proxy") -> None:
        """Remember ``headers`` for 80% of ``minutes``."""
        use_until = self._clock() + minutes * 60 * REMINT_AT_FRACTION
        with self._lock:
            self._tokens[(microvm_id, port, kind)] = CachedToken(dict(headers), use_until)

    def drop(self, microvm_id: str, port: int | None = None) -> None:
        """Forget the MicroVM's tokens (one port's, or all)."""
        with self._lock:
            for key in [k for k in self._tokens if k[0] == microvm_id and (port is None or k[1] == port)]:
                del self._tokens[key]


@dataclass(frozen=True)
class RetryPolicy:
    """How requests to an endpoint are retried (see the module docstring)."""

    resume_patience_s: float = 30.0
    resume_interval_s: float = 2.0
    throttle_attempts: int = 6
    throttle_base_s: float = 0.5
    throttle_cap_s: float = 8.0
    max_retry_after_s: float = 30.0

    def delay(self, status: int, headers: dict[str, str], body: bytes, *, attempt: int, waited_s: float,
              reminted: bool) -> float | None:
        """Seconds to wait before trying again, 0 to retry at once with a new token, None to return this answer.

        ``attempt`` counts tries so far (1 after the first), ``waited_s`` the time spent since the first.
        """
        if status in (401, 403):
            return None if reminted else 0.0
        if status == 502:
            if _gateway_code(body) in NOT_RETRIED_502_CODES:
                return None
            if waited_s + self.resume_interval_s > self.resume_patience_s:
                return None
            return self.resume_interval_s
        if status == 429:
            if attempt >= self.throttle_attempts:
                return None
            retry_after = _retry_after(headers)
            if retry_after is not None:
                return retry_after if retry_after <= self.max_retry_after_s else None
            return random.uniform(0.5, 1.0) * min(self.throttle_cap_s, self.throttle_base_s * 2 ** (attempt - 1))
        return None


def _retry_after(headers: dict[str, str]) -> float | None:
    from .errors import parse_retry_after

    return parse_retry_after(next((v for k, v in headers.items() if k.lower() == "retry-after"), None))


def _gateway_code(body: bytes) -> str | None:
    try:
        data = json.loads(body) if body and len(body) < 65536 else None
    except (ValueError, UnicodeDecodeError):
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


__all__ = ["DEFAULT_PORT", "DEFAULT_TOKEN_MINUTES", "PORT_HEADER", "TOKEN_HEADER", "RetryPolicy", "TokenCache"]
