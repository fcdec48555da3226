"""Opening the database and handing out short transactions: SQLite by default, PostgreSQL by URL.

Sync, on purpose. Ember uses SQLAlchemy's synchronous engine and keeps every transaction short (a few
statements, no I/O to VMs inside one). Reasons: Alembic is synchronous anyway; aiosqlite is a thread around the
same sqlite3 module, so async buys nothing on the default backend; and sync sessions make row locks and
``BEGIN IMMEDIATE`` explicit. Asyncio code calls ``await store.awrite(fn, ...)`` / ``store.aread``, which run
``fn(session, ...)`` in a worker thread, so the event loop never waits on the database lock.

SQLite: WAL journal, ``foreign_keys=ON``, a busy timeout, and **serialised writes**: a write transaction starts
with ``BEGIN IMMEDIATE``, taking SQLite's write lock up front, so two writers queue instead of failing halfway
with "database is locked" when a reader upgrades. PostgreSQL: READ COMMITTED plus ``SELECT … FOR UPDATE`` on the
rows a write changes (see ``transitions.transition``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from ember.settings import ember_home

DATABASE_URL_ENV = "EMBER_DATABASE_URL"
DATABASE_FILE = "ember.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for the write lock before failing: generous, as transactions are short."""
_WRITE_OPTION = "ember_write"

P = ParamSpec("P")
T = TypeVar("T")


def database_url() -> str:
    """``$EMBER_DATABASE_URL`` if set (e.g. ``postgresql+psycopg://…``), else SQLite at ``$EMBER_HOME/ember.db``."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        return url
    return f"sqlite:///{ember_home() / DATABASE_FILE}"


def create_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default ``database_url()``) with Ember's SQLite settings applied."""
    engine = sqlalchemy.create_engine(url or database_url(), **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    in_memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own implicit BEGIN would defeat BEGIN IMMEDIATE; we emit BEGIN ourselves in _on_begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sqlalchemy.Connection) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Store:
    """The database: short read and write transactions, sync or from asyncio.

    ``with store.write() as session:`` commits on success and rolls back on an exception; rows it returns stay
    readable after the block (``expire_on_commit=False``). Repository functions (``ember.store.images``,
    ``microvms``, ``transitions``...) take that session as their first argument, so one transaction can span
    several of them.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read_sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            bind=engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False
        )

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> Store:
        """Open ``url`` (default ``database_url()``) and, unless ``migrate=False``, upgrade its schema to head."""
        engine = create_engine(url)
        if migrate:
            from ember.store.migrate import migrate as run_migrations

            run_migrations(engine)
        return cls(engine)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``); commits on exit, rolls back on an exception."""
        with self._write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction: a consistent snapshot on SQLite (WAL), READ COMMITTED on PostgreSQL."""
        with self._read_sessions() as session, session.begin():
            yield session

    def run_write(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(session, *args, **kwargs)`` in one write transaction."""
        with self.write() as session:
            return fn(session, *args, **kwargs)

    def run_read(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(session, *args, **kwargs)`` in one read transaction."""
        with self.read() as session:
            return fn(session, *args, **kwargs)

    async def awrite(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``run_write`` in a worker thread, for asyncio callers."""
        return await asyncio.to_thread(self.run_write, fn, *args, **kwargs)

    async def aread(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``run_read`` in a worker thread, for asyncio callers."""
        return await asyncio.to_thread(self.run_read, fn, *args, **kwargs)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
