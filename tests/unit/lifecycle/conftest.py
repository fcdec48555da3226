"""Fixtures: the store tests' migrated SQLite database per test, for the lifecycle service over a stand-in host."""

from tests.unit.store.conftest import db_path, store, template_db

__all__ = ["db_path", "store", "template_db"]
