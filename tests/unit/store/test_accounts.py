"""Accounts and access keys: the root key is created once and can be overridden."""

from __future__ import annotations

import pytest

from ember.errors import InvalidInput
from ember.store import Store, accounts
from tests.unit.store.conftest import ACCOUNT


def test_ensure_root_key_creates_then_updates(store: Store) -> None:
    with store.write() as session:
        accounts.ensure_root_key(session, "777777777777", "AKIAROOT", "first")
    with store.write() as session:
        key = accounts.ensure_root_key(session, "777777777777", "AKIAROOT", "second")
    assert key.secret_access_key == "second"
    with store.read() as session:
        found = accounts.find_access_key(session, "AKIAROOT")
        assert found is not None and found.account_id == "777777777777" and found.secret_access_key == "second"
        assert accounts.get_account(session, "777777777777") is not None


def test_unknown_key_is_none(store: Store) -> None:
    with store.read() as session:
        assert accounts.find_access_key(session, "AKIANOPE") is None


def test_account_ids_are_twelve_digits(store: Store) -> None:
    with pytest.raises(InvalidInput, match="accountId"), store.write() as session:
        accounts.ensure_account(session, "12345")


def test_keys_can_be_added_and_removed(store: Store) -> None:
    with store.write() as session:
        accounts.add_access_key(session, ACCOUNT, "AKIA2", "s2")
    with store.write() as session:
        assert accounts.delete_access_key(session, "AKIA2")
        assert not accounts.delete_access_key(session, "AKIA2")
