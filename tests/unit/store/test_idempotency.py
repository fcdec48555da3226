"""clientToken idempotency: same token and parameters → same result; other parameters → mismatch."""

from __future__ import annotations

import pytest

from ember.errors import StateConflict
from ember.store import IdempotencyMismatch, Store, idempotency
from tests.unit.store.conftest import ACCOUNT, OTHER, T0, later


def test_replay_returns_the_first_result(store: Store) -> None:
    digest = idempotency.request_hash({"imageIdentifier": "web", "maximumDurationInSeconds": 60})
    with store.write() as session:
        assert idempotency.lookup(session, ACCOUNT, "RunMicrovm", "tok", digest) is None
        idempotency.record(session, ACCOUNT, "RunMicrovm", "tok", digest, "mvm-1")
    with store.read() as session:
        assert idempotency.lookup(session, ACCOUNT, "RunMicrovm", "tok", digest) == "mvm-1"


def test_same_token_other_parameters_is_a_conflict(store: Store) -> None:
    first = idempotency.request_hash({"imageIdentifier": "web"})
    second = idempotency.request_hash({"imageIdentifier": "api"})
    with store.write() as session:
        idempotency.record(session, ACCOUNT, "RunMicrovm", "tok", first, "mvm-1")
    with pytest.raises(IdempotencyMismatch) as caught, store.read() as session:
        idempotency.lookup(session, ACCOUNT, "RunMicrovm", "tok", second)
    assert isinstance(caught.value, StateConflict)
    assert "clientToken was used with different request parameters" in str(caught.value)


def test_tokens_are_per_account_and_operation(store: Store) -> None:
    digest = idempotency.request_hash({})
    with store.write() as session:
        idempotency.record(session, ACCOUNT, "RunMicrovm", "tok", digest, "mvm-1")
        assert idempotency.lookup(session, OTHER, "RunMicrovm", "tok", digest) is None
        assert idempotency.lookup(session, ACCOUNT, "CreateMicrovmImage", "tok", digest) is None


def test_hash_ignores_key_order() -> None:
    assert idempotency.request_hash({"a": 1, "b": [1, 2]}) == idempotency.request_hash({"b": [1, 2], "a": 1})
    assert idempotency.request_hash({"a": 1}) != idempotency.request_hash({"a": 2})


def test_purge_forgets_old_tokens(store: Store) -> None:
    digest = idempotency.request_hash({})
    with store.write() as session:
        idempotency.record(session, ACCOUNT, "RunMicrovm", "old", digest, "mvm-1", now=T0)
        idempotency.record(session, ACCOUNT, "RunMicrovm", "new", digest, "mvm-2", now=later(10))
        assert idempotency.purge(session, created_before=later(5)) == 1
        assert idempotency.lookup(session, ACCOUNT, "RunMicrovm", "old", digest) is None
        assert idempotency.lookup(session, ACCOUNT, "RunMicrovm", "new", digest) == "mvm-2"
