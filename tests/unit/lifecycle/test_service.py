"""The lifecycle service without VMs: a resume (ResumeMicrovm or a held gateway request) records when it started.

The host is a stand-in whose ``resume`` waits until the test lets it finish, so the test sees the MicroVM while
its resume is under way. Real VMs go through the same code in ``tests/vm/test_lifecycle.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ember.contract import MicrovmState as S
from ember.lifecycle.service import MicrovmService
from ember.store import Microvm, Store, microvms, transitions
from tests.unit.store.conftest import ACCOUNT, make_image, make_microvm

RESUME_S = 0.2


class StubVm:
    """A VM that is always alive, with an agent object the gateway would be handed."""

    def __init__(self, vm_id: str) -> None:
        self.id = vm_id
        self.alive = True
        self.agent = object()

    def require_agent(self) -> Any:
        return self.agent


class StubHost:
    """Resumes take ``RESUME_S`` once ``release`` is set; nothing else does anything."""

    def __init__(self) -> None:
        self._on_exit: Any = None
        self.release = asyncio.Event()
        self.resuming = asyncio.Event()

    async def resume(self, vm: StubVm) -> StubVm:
        self.resuming.set()
        await self.release.wait()
        await asyncio.sleep(RESUME_S)
        return vm

    async def suspend(self, vm: StubVm) -> int:
        return 0

    async def destroy(self, vm: StubVm) -> None:
        vm.alive = False

    def forget(self, vm_id: str) -> None:
        """Nothing is on disk."""


@pytest.fixture
async def svc(store: Store) -> AsyncIterator[MicrovmService]:
    service = MicrovmService(store, StubHost(), token_secret=b"k" * 32)  # type: ignore[arg-type]
    yield service
    for live in service._live.values():
        if live.op is not None:
            live.op.cancel()
            await asyncio.gather(live.op, return_exceptions=True)


def _suspended_vm(store: Store, svc: MicrovmService) -> str:
    """A SUSPENDED MicroVM (app logs off, so no log pump) whose stand-in VM this service holds."""
    image, version = make_image(store)
    vm_id = make_microvm(store, image, version).id
    with store.write() as session:
        for step in (S.RUNNING, S.SUSPENDING, S.SUSPENDED):
            transitions.transition(session, vm_id, step)
        row = session.get(Microvm, vm_id)
        assert row is not None
        row.logging = {"disabled": {}}
    svc.live(vm_id).vm = StubVm(vm_id)  # type: ignore[assignment]
    return vm_id


def _host(svc: MicrovmService) -> StubHost:
    return svc.host  # type: ignore[return-value]


def _state(store: Store, vm_id: str) -> tuple[S, str | None]:
    with store.read() as session:
        row = microvms.get_microvm(session, ACCOUNT, vm_id)
        return row.state, row.state_reason


def _last_event(store: Store, vm_id: str) -> Any:
    with store.read() as session:
        return transitions.list_events(session, vm_id)[-1]


async def test_resume_microvm_records_when_the_resume_started(store: Store, svc: MicrovmService) -> None:
    vm_id = _suspended_vm(store, svc)
    asked = datetime.now(UTC)
    svc.request_resume(ACCOUNT, vm_id)
    await _host(svc).resuming.wait()
    # Under way: clients still see SUSPENDED (no RESUMING state), and nothing is recorded yet.
    assert _state(store, vm_id) == (S.SUSPENDED, None)
    assert _last_event(store, vm_id).to_state is S.SUSPENDED
    _host(svc).release.set()
    op = svc.live(vm_id).op
    assert op is not None
    await op
    event = _last_event(store, vm_id)
    assert (event.from_state, event.to_state, event.reason) == (S.SUSPENDED, S.RUNNING, None)
    assert asked <= event.started_at < asked + timedelta(seconds=RESUME_S / 2)
    assert event.at - event.started_at >= timedelta(seconds=RESUME_S)
    assert _state(store, vm_id) == (S.RUNNING, None)


async def test_a_held_request_records_when_its_auto_resume_started(store: Store, svc: MicrovmService) -> None:
    vm_id = _suspended_vm(store, svc)
    _host(svc).release.set()
    asked = datetime.now(UTC)
    agent = await svc.ensure_running(vm_id, timeout=10)
    assert agent is svc.live(vm_id).vm.agent  # type: ignore[union-attr]
    event = _last_event(store, vm_id)
    assert (event.from_state, event.to_state) == (S.SUSPENDED, S.RUNNING)
    assert asked <= event.started_at < asked + timedelta(seconds=RESUME_S / 2)
    assert event.at - event.started_at >= timedelta(seconds=RESUME_S)


async def test_many_held_requests_share_one_resume_and_one_start(store: Store, svc: MicrovmService) -> None:
    vm_id = _suspended_vm(store, svc)
    waiting = [asyncio.ensure_future(svc.ensure_running(vm_id, timeout=10)) for _ in range(3)]
    await _host(svc).resuming.wait()
    svc.request_resume(ACCOUNT, vm_id)  # joins the resume under way
    _host(svc).release.set()
    await asyncio.gather(*waiting)
    with store.read() as session:
        resumes = [e for e in transitions.list_events(session, vm_id) if e.started_at is not None]
    assert len(resumes) == 1


async def test_other_moves_to_running_record_no_start(store: Store, svc: MicrovmService) -> None:
    image, version = make_image(store)
    vm_id = make_microvm(store, image, version).id
    with store.write() as session:
        transitions.transition(session, vm_id, S.RUNNING)
        transitions.transition(session, vm_id, S.SUSPENDING)
    svc._move(vm_id, S.RUNNING, "suspend failed, the VM keeps running: disk full", expect=S.SUSPENDING)
    with store.read() as session:
        assert [e.started_at for e in transitions.list_events(session, vm_id)] == [None, None, None, None]
