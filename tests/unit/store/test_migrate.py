"""Migrations: the migrated schema is exactly the ORM metadata, upgrades are repeatable, PostgreSQL DDL renders."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ember.contract import MicrovmState as S
from ember.store import (
    Base,
    Store,
    accounts,
    create_engine,
    current_revision,
    head_revision,
    migrate,
    transitions,
    upgrade_sql,
)
from ember.store.migrate import alembic_config
from tests.unit.store.conftest import ACCOUNT, T0, later, make_image, make_microvm


def diffs(engine: sa.Engine, metadata: sa.MetaData) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, metadata)


def test_migrated_schema_matches_the_orm_metadata(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ember.db'}")
    migrate(engine)
    assert diffs(engine, Base.metadata) == []
    engine.dispose()


def test_comparison_does_notice_a_difference(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ember.db'}")
    migrate(engine)
    changed = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    sa.Table("microvms", changed, sa.Column("surprise", sa.Integer()), extend_existing=True)
    assert any(diff[0] == "add_column" and diff[3].name == "surprise" for diff in diffs(engine, changed))
    engine.dispose()


def test_migrate_is_repeatable_and_reaches_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ember.db'}"
    migrate(url)
    migrate(url)
    engine = create_engine(url)
    assert current_revision(engine) == head_revision() == "0002"
    engine.dispose()


def test_empty_database_has_no_revision(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ember.db'}")
    assert current_revision(engine) is None
    engine.dispose()


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ember.db'}")
    migrate(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    migrate(engine)
    assert "microvms" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_postgresql_ddl_renders_offline() -> None:
    sql = upgrade_sql("postgresql://ember@localhost/ember")
    assert "CREATE TABLE microvms" in sql
    assert "TIMESTAMP WITH TIME ZONE" in sql
    assert "CREATE UNIQUE INDEX uq_images_account_id_name_live ON images (account_id, name) WHERE NOT deleted" in sql


def test_event_rows_survive_a_downgrade_and_upgrade_of_started_at(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ember.db'}")
    migrate(engine)
    store = Store(engine)
    with store.write() as session:
        accounts.ensure_account(session, ACCOUNT, now=T0)
    image, version = make_image(store)
    vm = make_microvm(store, image, version)
    with store.write() as session:
        for step in (S.RUNNING, S.SUSPENDING, S.SUSPENDED):
            transitions.transition(session, vm.id, step, now=later(1))
        transitions.transition(session, vm.id, S.RUNNING, now=later(3), started_at=later(2))
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0001")
    assert "started_at" not in {c["name"] for c in sa.inspect(engine).get_columns("microvm_events")}
    migrate(engine)
    assert current_revision(engine) == "0002"
    with store.read() as session:
        events = transitions.list_events(session, vm.id)
    assert [e.to_state for e in events] == [S.PENDING, S.RUNNING, S.SUSPENDING, S.SUSPENDED, S.RUNNING]
    assert [e.started_at for e in events] == [None] * 5  # a start recorded before the downgrade is gone with it
    engine.dispose()
