"""Opening the database: URL selection, SQLite settings, commit/rollback, serialised writes, asyncio access."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from ember.store import Account, Store, accounts, database_url
from ember.store.engine import DATABASE_URL_ENV
from tests.unit.store.conftest import ACCOUNT


def test_default_url_is_sqlite_under_ember_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.setenv("EMBER_HOME", str(tmp_path))
    assert database_url() == f"sqlite:///{tmp_path.resolve() / 'ember.db'}"


def test_env_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql+psycopg://ember@db/ember")
    assert database_url() == "postgresql+psycopg://ember@db/ember"


def test_open_migrates(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'fresh.db'}")
    with store.write() as session:
        accounts.ensure_account(session, "333333333333")
    assert store.dialect == "sqlite"
    store.close()


def test_sqlite_settings(store: Store) -> None:
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_write_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as session:
        accounts.ensure_account(session, "444444444444")
        raise RuntimeError("boom")
    with store.read() as session:
        assert session.get(Account, "444444444444") is None


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(sa.exc.IntegrityError), store.write() as session:
        accounts.add_access_key(session, ACCOUNT, "AKIA1", "s")
        session.execute(sa.text("UPDATE access_keys SET account_id = '999999999999'"))


def test_write_transactions_are_serialised(store: Store) -> None:
    order: list[str] = []
    first_inside = threading.Event()

    def first() -> None:
        with store.write() as session:
            session.execute(sa.text("SELECT 1"))
            first_inside.set()
            time.sleep(0.3)
            order.append("first-commit")

    def second() -> None:
        first_inside.wait()
        with store.write() as session:
            session.execute(sa.text("SELECT 1"))  # first statement: BEGIN IMMEDIATE waits for the lock here
            order.append("second-begin")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert order == ["first-commit", "second-begin"]


def test_reads_do_not_wait_for_a_writer(store: Store) -> None:
    with store.write() as session:
        accounts.ensure_account(session, "555555555555")
        started = time.monotonic()
        with store.read() as reader:
            assert reader.get(Account, ACCOUNT) is not None
            assert reader.get(Account, "555555555555") is None  # not committed yet
        assert time.monotonic() - started < 1


async def test_async_helpers_run_in_a_thread(store: Store) -> None:
    account = await store.awrite(accounts.ensure_account, "666666666666")
    assert account.id == "666666666666"
    found = await store.aread(accounts.get_account, "666666666666")
    assert found is not None
    results = await asyncio.gather(*(store.aread(accounts.get_account, ACCOUNT) for _ in range(5)))
    assert all(r is not None for r in results)
