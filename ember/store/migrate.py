"""Schema migrations: ``migrate()`` upgrades a database to the newest revision; run at every start.

The Alembic environment lives in ``ember/store/migrations`` and is configured here in code, so no
``alembic.ini`` is needed at runtime. Concurrent starts are safe: on SQLite the upgrade runs under
``BEGIN IMMEDIATE`` (one writer at a time), on PostgreSQL under a transaction-scoped advisory lock.
"""

from __future__ import annotations

import io
import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from ember.store.engine import _WRITE_OPTION, create_engine

SCRIPT_LOCATION = "ember.store:migrations"
PG_MIGRATION_LOCK_KEY = 0x656D626572
"""Advisory lock id ("ember" in hex) that serialises concurrent upgrades on PostgreSQL."""

log = logging.getLogger(__name__)


def alembic_config(connection: Connection | None = None, *, url: str | None = None) -> Config:
    """An Alembic ``Config`` for Ember's migrations, bound to ``connection`` (online) or ``url`` (offline)."""
    config = Config(output_buffer=io.StringIO())
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision id in ``migrations/versions``."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine_or_url: Engine | str | None = None) -> None:
    """Upgrade the database (an engine, a URL, or ``database_url()`` when None) to the newest revision."""
    engine = engine_or_url if isinstance(engine_or_url, Engine) else create_engine(engine_or_url)
    try:
        with engine.execution_options(**{_WRITE_OPTION: True}).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
            before = MigrationContext.configure(connection).get_current_revision()
            command.upgrade(alembic_config(connection), "head")
            after = MigrationContext.configure(connection).get_current_revision()
        if before != after:
            log.info(
                "database migrated from %s to %s",
                before,
                after,
                extra={"action": "db_migrate", "from_revision": before, "to_revision": after},
            )
    finally:
        if not isinstance(engine_or_url, Engine):
            engine.dispose()


def upgrade_sql(url: str) -> str:
    """The SQL ``migrate()`` would run on an empty database of ``url``'s dialect (offline; no server needed)."""
    config = alembic_config(url=url)
    command.upgrade(config, "head", sql=True)
    buffer = config.output_buffer
    assert isinstance(buffer, io.StringIO)
    return buffer.getvalue()
