"""The MicroVM state machine: every legal move, every illegal one, events, timestamps and the log line."""

from __future__ import annotations

import itertools
import logging

import pytest

from ember.contract import MicrovmState as S
from ember.errors import StateConflict
from ember.store import IllegalTransition, RecordNotFound, Store, microvms
from ember.store.transitions import TRANSITIONS, can_transition, list_events, transition
from tests.unit.store.conftest import ACCOUNT, OTHER, later, make_image, make_microvm

LEGAL = [
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.TERMINATING),
    (S.RUNNING, S.SUSPENDING),
    (S.RUNNING, S.TERMINATING),
    (S.SUSPENDING, S.SUSPENDED),
    (S.SUSPENDING, S.RUNNING),
    (S.SUSPENDING, S.TERMINATING),
    (S.SUSPENDED, S.RUNNING),
    (S.SUSPENDED, S.TERMINATING),
    (S.TERMINATING, S.TERMINATED),
]
ILLEGAL = [pair for pair in itertools.product(S, S) if pair not in LEGAL]

PATH_TO: dict[S, list[S]] = {
    S.PENDING: [],
    S.RUNNING: [S.RUNNING],
    S.SUSPENDING: [S.RUNNING, S.SUSPENDING],
    S.SUSPENDED: [S.RUNNING, S.SUSPENDING, S.SUSPENDED],
    S.TERMINATING: [S.TERMINATING],
    S.TERMINATED: [S.TERMINATING, S.TERMINATED],
}
"""How to walk a new (PENDING) MicroVM to each state through legal moves."""


def vm_in(store: Store, state: S) -> str:
    image, version = make_image(store, name=f"img-{state.value.lower()}")
    vm = make_microvm(store, image, version)
    with store.write() as session:
        for step in PATH_TO[state]:
            transition(session, vm.id, step)
    return vm.id


def test_table_is_the_documented_one() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == set(LEGAL)
    assert set(TRANSITIONS) == set(S)
    assert TRANSITIONS[S.TERMINATED] == frozenset()


def test_suspend_only_from_running_and_resume_only_from_suspended() -> None:
    assert [a for a in S if can_transition(a, S.SUSPENDING)] == [S.RUNNING]
    assert [a for a in S if can_transition(a, S.RUNNING) and a is not S.PENDING and a is not S.SUSPENDING] == [
        S.SUSPENDED
    ]
    assert [a for a in S if can_transition(a, S.TERMINATING)] == [S.PENDING, S.RUNNING, S.SUSPENDING, S.SUSPENDED]


@pytest.mark.parametrize(("from_state", "to_state"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_legal_moves_persist_and_append_an_event(store: Store, from_state: S, to_state: S) -> None:
    vm_id = vm_in(store, from_state)
    with store.write() as session:
        before = len(list_events(session, vm_id))
        moved = transition(session, vm_id, to_state, "because", now=later(60))
    assert moved.state is to_state
    assert moved.state_reason == "because"
    with store.read() as session:
        events = list_events(session, vm_id)
    assert len(events) == before + 1
    assert (events[-1].from_state, events[-1].to_state, events[-1].reason) == (from_state, to_state, "because")
    assert events[-1].at == later(60)


@pytest.mark.parametrize(("from_state", "to_state"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_illegal_moves_raise_and_change_nothing(store: Store, from_state: S, to_state: S) -> None:
    vm_id = vm_in(store, from_state)
    with store.read() as session:
        events_before = len(list_events(session, vm_id))
    with pytest.raises(IllegalTransition) as caught, store.write() as session:
        transition(session, vm_id, to_state)
    assert isinstance(caught.value, StateConflict)
    assert (caught.value.from_state, caught.value.to_state) == (from_state, to_state)
    assert str(caught.value) == f"MicroVM {vm_id} cannot go from {from_state} to {to_state}"
    with store.read() as session:
        assert len(list_events(session, vm_id)) == events_before
        assert microvms.get_microvm(session, ACCOUNT, vm_id).state is from_state


def test_creation_is_the_first_event(store: Store) -> None:
    image, version = make_image(store)
    vm = make_microvm(store, image, version)
    with store.read() as session:
        events = list_events(session, vm.id)
    assert [(e.from_state, e.to_state) for e in events] == [(None, S.PENDING)]


def test_timestamps_follow_the_moves(store: Store) -> None:
    image, version = make_image(store)
    vm = make_microvm(store, image, version)
    with store.write() as session:
        running = transition(session, vm.id, S.RUNNING, now=later(1))
        assert running.last_activity_at == later(1)
        transition(session, vm.id, S.SUSPENDING, now=later(2))
        suspended = transition(session, vm.id, S.SUSPENDED, now=later(3))
        assert suspended.suspended_at == later(3)
        resumed = transition(session, vm.id, S.RUNNING, now=later(4))
        assert resumed.suspended_at is None
        assert resumed.state_reason is None
        transition(session, vm.id, S.TERMINATING, "terminated by the user", now=later(5))
        done = transition(session, vm.id, S.TERMINATED, "terminated by the user", now=later(6))
    assert done.terminated_at == later(6)
    assert done.updated_at == later(6)
    assert done.created_at == later(0)


def test_expect_from_is_a_compare_and_set(store: Store) -> None:
    vm_id = vm_in(store, S.SUSPENDED)
    with pytest.raises(IllegalTransition), store.write() as session:
        transition(session, vm_id, S.TERMINATING, expect_from=S.RUNNING)
    with store.write() as session:
        vm = transition(session, vm_id, S.TERMINATING, expect_from=frozenset({S.RUNNING, S.SUSPENDED}))
    assert vm.state is S.TERMINATING


def test_account_scoping(store: Store) -> None:
    vm_id = vm_in(store, S.PENDING)
    with pytest.raises(RecordNotFound), store.write() as session:
        transition(session, vm_id, S.RUNNING, account_id=OTHER)
    with store.write() as session:
        assert transition(session, vm_id, S.RUNNING, account_id=ACCOUNT).state is S.RUNNING


def test_unknown_microvm_is_not_found(store: Store) -> None:
    with pytest.raises(RecordNotFound) as caught, store.write() as session:
        transition(session, "mvm-" + "f" * 32, S.RUNNING)
    assert caught.value.resource_type == "Microvm"


def test_moves_are_logged_with_an_action(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    vm_id = vm_in(store, S.PENDING)
    with caplog.at_level(logging.INFO, logger="ember.store.transitions"), store.write() as session:
        transition(session, vm_id, S.RUNNING, "run hook answered 200")
    record = caplog.records[-1]
    assert record.action == "microvm_transition"  # type: ignore[attr-defined]
    assert record.microvm_id == vm_id  # type: ignore[attr-defined]
    assert (record.from_state, record.to_state) == ("PENDING", "RUNNING")  # type: ignore[attr-defined]
    assert "run hook answered 200" in record.getMessage()


def test_a_resume_start_is_kept_on_the_event_only(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    vm_id = vm_in(store, S.SUSPENDED)
    with caplog.at_level(logging.INFO, logger="ember.store.transitions"), store.write() as session:
        resumed = transition(session, vm_id, S.RUNNING, now=later(10), started_at=later(8.5))
    assert (resumed.state, resumed.state_reason) == (S.RUNNING, None)
    with store.read() as session:
        events = list_events(session, vm_id)
    assert (events[-1].from_state, events[-1].to_state) == (S.SUSPENDED, S.RUNNING)
    assert (events[-1].started_at, events[-1].at) == (later(8.5), later(10))
    assert all(e.started_at is None for e in events[:-1])
    assert caplog.records[-1].took_s == 1.5  # type: ignore[attr-defined]


def test_a_start_after_the_move_is_recorded_as_the_moves_time(store: Store) -> None:
    vm_id = vm_in(store, S.SUSPENDED)
    with store.write() as session:
        transition(session, vm_id, S.RUNNING, now=later(10), started_at=later(12))
        event = list_events(session, vm_id)[-1]
    assert event.started_at == event.at == later(10)
