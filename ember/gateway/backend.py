"""What the gateway needs from the rest of Ember: the seam between the data plane and the lifecycle.

The lifecycle layer implements :class:`GatewayBackend`; tests use a fake. The
gateway never touches the store or the VMM directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ember.host.agent_client import AgentClient


@dataclass(frozen=True)
class VmTarget:
    """What the gateway must know about a MicroVM to decide how to answer a request."""

    microvm_id: str
    account_id: str
    state: str  # the contract's MicrovmState value: PENDING, RUNNING, SUSPENDING, SUSPENDED, ...
    auto_resume: bool
    shell_ingress: bool


class Unavailable(Exception):
    """The VM cannot serve now: ``status`` is the HTTP status to answer (404 or 502), ``reason`` the JSON reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class GatewayBackend(Protocol):
    token_secret: bytes
    """Key that signs and checks endpoint tokens (shared with the API, which mints them)."""

    def lookup(self, microvm_id: str) -> VmTarget | None:
        """The VM's current facts, or None when it does not exist (any account)."""

    async def ensure_running(self, microvm_id: str, timeout: float) -> AgentClient:
        """The VM's agent, once it is RUNNING.

        PENDING: waits until RUNNING. SUSPENDED with auto-resume: resumes it (one
        resume however many requests wait) and waits. Raises Unavailable(502) when
        auto-resume is off or the resume failed, Unavailable(404) when TERMINATED or
        unknown, TimeoutError after ``timeout`` seconds.
        """

    def connection_opened(self, microvm_id: str) -> None:
        """An inbound request or stream started (resets the idle clock, counts open connections)."""

    def connection_closed(self, microvm_id: str) -> None:
        """That request or stream ended (the idle clock starts once none is open)."""
