"""The fake backend itself: it must behave like the seam's contract says, or the gateway tests prove nothing."""

from __future__ import annotations

import asyncio

import pytest

from ember.errors import AgentOpError
from ember.gateway.backend import Unavailable
from ember.gateway.testing import FakeAgent, FakeBackend


async def test_suspended_vm_resumes_once_for_many_waiters(backend: FakeBackend) -> None:
    backend.add_vm("mvm-1", state="SUSPENDED", resume_delay_s=0.05)
    agents = await asyncio.gather(*(backend.ensure_running("mvm-1", 5) for _ in range(10)))
    assert all(isinstance(a, FakeAgent) for a in agents)
    assert backend.resumes == 1


async def test_pending_vm_waits_for_running(backend: FakeBackend) -> None:
    vm = backend.add_vm("mvm-1", state="PENDING")
    waiter = asyncio.create_task(backend.ensure_running("mvm-1", 5))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    vm.set_state("RUNNING")
    assert isinstance(await waiter, FakeAgent)


@pytest.mark.parametrize(("fields", "status"), [
    ({"state": "TERMINATED"}, 404),
    ({"state": "SUSPENDED", "auto_resume": False}, 502),
    ({"state": "SUSPENDED", "resume_fails": True, "resume_delay_s": 0}, 502),
])
async def test_unavailable_states(backend: FakeBackend, fields: dict, status: int) -> None:  # type: ignore[type-arg]
    backend.add_vm("mvm-1", **fields)
    with pytest.raises(Unavailable) as info:
        await backend.ensure_running("mvm-1", 5)
    assert info.value.status == status


async def test_unknown_vm_is_404_and_lookup_none(backend: FakeBackend) -> None:
    assert backend.lookup("mvm-x") is None
    with pytest.raises(Unavailable):
        await backend.ensure_running("mvm-x", 5)


async def test_timeout_while_pending(backend: FakeBackend) -> None:
    backend.add_vm("mvm-1", state="PENDING")
    with pytest.raises(TimeoutError):
        await backend.ensure_running("mvm-1", 0.05)


async def test_unmapped_port_is_refused_like_the_agent_would(backend: FakeBackend) -> None:
    backend.add_vm("mvm-1")
    agent = await backend.ensure_running("mvm-1", 5)
    with pytest.raises(AgentOpError) as info:
        await agent.open_stream(1234)
    assert info.value.code == "ECONNREFUSED"
