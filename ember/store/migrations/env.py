"""Alembic environment: configured in code by ``ember.store.migrate``, no alembic.ini needed.

Online runs use the connection ``migrate()`` puts in ``config.attributes["connection"]`` (or, for the ``alembic``
command line, ``sqlalchemy.url`` / ``ember.store.engine.database_url()``). Offline runs (``--sql``) only need a URL
naming the dialect. SQLite runs in batch mode, so later ALTERs work there too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ember.store.engine import create_engine, database_url
from ember.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Emit the SQL instead of running it."""
    url = config.get_main_option("sqlalchemy.url") or database_url()
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run against the given connection, or open one."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or database_url())
    try:
        with engine.connect() as conn:
            _configure(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
