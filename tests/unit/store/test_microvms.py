"""MicroVM rows: tenant isolation, pagination with no duplicates or gaps, filters, quota sums, host fields."""

from __future__ import annotations

import pytest

from ember.contract import MicrovmState, new_microvm_id
from ember.errors import InvalidInput
from ember.store import RecordNotFound, Store, microvms, transition
from tests.unit.store.conftest import ACCOUNT, OTHER, T0, later, make_image, make_microvm


def test_insert_copies_the_version_sizing(store: Store) -> None:
    image, version = make_image(store)
    vm = make_microvm(store, image, version)
    assert vm.state is MicrovmState.PENDING
    assert (vm.memory_mib, vm.vcpus, vm.image_name, vm.image_version) == (1024, 1, "web", "1")
    assert vm.id.startswith("mvm-") and vm.last_activity_at == T0
    assert (vm.ingress_connectors, vm.egress_connectors, vm.idle_policy) == ([], [], None)


def test_another_accounts_microvm_is_not_found(store: Store) -> None:
    image, version = make_image(store, account=OTHER)
    theirs = make_microvm(store, image, version, account=OTHER)
    with store.read() as session:
        with pytest.raises(RecordNotFound):
            microvms.get_microvm(session, ACCOUNT, theirs.id)
        assert microvms.find_microvm(session, theirs.id, account_id=ACCOUNT) is None
        assert microvms.find_microvm(session, theirs.id, account_id=None) is not None
        assert microvms.list_microvms(session, ACCOUNT).items == []
        assert [v.id for v in microvms.list_microvms(session, OTHER).items] == [theirs.id]


@pytest.mark.parametrize("page_size", [1, 3, 7, 50])
def test_pagination_returns_every_row_once_in_order(store: Store, page_size: int) -> None:
    image, version = make_image(store)
    # Several rows share a creation time, so the id must break ties.
    created = [make_microvm(store, image, version, at=later(i // 3)).id for i in range(20)]
    expected = sorted(created, key=lambda vm_id: (created.index(vm_id) // 3, vm_id))
    seen: list[str] = []
    token: str | None = None
    with store.read() as session:
        for _ in range(100):
            page = microvms.list_microvms(session, ACCOUNT, max_results=page_size, next_token=token)
            assert len(page.items) <= page_size
            seen += [vm.id for vm in page.items]
            token = page.next_token
            if token is None:
                break
    assert seen == expected


def test_rows_added_while_paging_are_not_duplicated(store: Store) -> None:
    image, version = make_image(store)
    for i in range(4):
        make_microvm(store, image, version, at=later(i))
    with store.read() as session:
        first = microvms.list_microvms(session, ACCOUNT, max_results=2)
    make_microvm(store, image, version, at=later(100))
    with store.read() as session:
        rest = microvms.list_microvms(session, ACCOUNT, max_results=50, next_token=first.next_token)
    ids = [vm.id for vm in first.items] + [vm.id for vm in rest.items]
    assert len(ids) == len(set(ids)) == 5


def test_a_full_last_page_has_no_token(store: Store) -> None:
    image, version = make_image(store)
    for i in range(4):
        make_microvm(store, image, version, at=later(i))
    with store.read() as session:
        first = microvms.list_microvms(session, ACCOUNT, max_results=2)
        second = microvms.list_microvms(session, ACCOUNT, max_results=2, next_token=first.next_token)
    assert len(second.items) == 2 and second.next_token is None


def test_bad_token_and_page_size_are_invalid_input(store: Store) -> None:
    with store.read() as session:
        with pytest.raises(InvalidInput, match="nextToken"):
            microvms.list_microvms(session, ACCOUNT, next_token="not-a-token")
        with pytest.raises(InvalidInput, match="maxResults"):
            microvms.list_microvms(session, ACCOUNT, max_results=51)


def test_filters_by_image_version_and_state(store: Store) -> None:
    web, web_v1 = make_image(store, "web")
    api, api_v1 = make_image(store, "api")
    a = make_microvm(store, web, web_v1)
    b = make_microvm(store, api, api_v1, at=later(1))
    with store.write() as session:
        transition(session, b.id, MicrovmState.RUNNING)
    with store.read() as session:
        assert [v.id for v in microvms.list_microvms(session, ACCOUNT, image_name="web").items] == [a.id]
        assert [v.id for v in microvms.list_microvms(session, ACCOUNT, image_name="api", image_version="1").items] == [
            b.id
        ]
        assert microvms.list_microvms(session, ACCOUNT, image_name="api", image_version="2").items == []
        running = microvms.list_microvms(session, ACCOUNT, states=[MicrovmState.RUNNING])
        assert [v.id for v in running.items] == [b.id]
        assert [v.id for v in microvms.microvms_in_states(session, [MicrovmState.PENDING])] == [a.id]


def test_allocated_memory_counts_everything_but_terminated(store: Store) -> None:
    image, version = make_image(store)
    vms = [make_microvm(store, image, version, at=later(i)).id for i in range(3)]
    with store.write() as session:
        transition(session, vms[0], MicrovmState.TERMINATING)
        transition(session, vms[0], MicrovmState.TERMINATED)
        transition(session, vms[1], MicrovmState.RUNNING)
        transition(session, vms[1], MicrovmState.SUSPENDING)
        transition(session, vms[1], MicrovmState.SUSPENDED)
    with store.read() as session:
        assert microvms.allocated_memory_mib(session, ACCOUNT) == 2 * 1024
        assert microvms.allocated_memory_mib(session, OTHER) == 0


def test_activity_only_moves_forward(store: Store) -> None:
    image, version = make_image(store)
    vm = make_microvm(store, image, version)
    with store.write() as session:
        microvms.record_activity(session, vm.id, later(10))
        microvms.record_activity(session, vm.id, later(5))
    with store.read() as session:
        assert microvms.get_microvm(session, ACCOUNT, vm.id).last_activity_at == later(10)


def test_host_fields_but_not_state(store: Store) -> None:
    image, version = make_image(store)
    vm = make_microvm(store, image, version, microvm_id=new_microvm_id())
    with store.write() as session:
        updated = microvms.set_host_fields(session, vm.id, host_dir="/var/lib/ember/vms/x", host_id="h1")
        assert (updated.host_dir, updated.host_id) == ("/var/lib/ember/vms/x", "h1")
        with pytest.raises(ValueError, match="cannot set"):
            microvms.set_host_fields(session, vm.id, state=MicrovmState.RUNNING)


def test_purge_terminated(store: Store) -> None:
    image, version = make_image(store)
    old = make_microvm(store, image, version).id
    live = make_microvm(store, image, version, at=later(1)).id
    with store.write() as session:
        transition(session, old, MicrovmState.TERMINATING, now=later(2))
        transition(session, old, MicrovmState.TERMINATED, now=later(3))
    with store.write() as session:
        assert microvms.purge_terminated(session, terminated_before=later(3)) == 0
        assert microvms.purge_terminated(session, terminated_before=later(4)) == 1
    with store.read() as session:
        assert [v.id for v in microvms.list_microvms(session, ACCOUNT).items] == [live]
