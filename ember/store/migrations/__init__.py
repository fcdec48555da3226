"""Alembic migration environment of Ember's database (run by ``ember.store.migrate.migrate``)."""
