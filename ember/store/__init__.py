"""Persistence: SQLAlchemy 2 over SQLite (default, ``$EMBER_HOME/ember.db``) or PostgreSQL (``EMBER_DATABASE_URL``).

This package owns the database: the schema (``models``, migrated by Alembic from ``migrations/``), short
transactions (``Store``), and small repository modules whose functions take a ``Session`` first and, for tenant
data, the caller's account id (another account's row is simply not found):

- ``accounts``: accounts and SigV4 keys (``ensure_root_key``, ``find_access_key``)
- ``images``, ``versions``, ``builds``: images, their numbered versions and per-target builds
- ``microvms``: MicroVM rows; ``transitions``: the one MicroVM state machine and ``transition()``
- ``tags``, ``idempotency``, ``logs``; ``paging``: opaque ``nextToken`` keyset pagination
- ``views``: rows as the contract's response models

It owns no behaviour beyond consistency: what to build, boot or suspend is ``ember.images`` / ``ember.lifecycle``.
Typical use::

    store = Store.open()                       # migrates to head
    with store.write() as session:
        vm = transitions.transition(session, vm_id, MicrovmState.RUNNING)
"""

from ember.store import (
    accounts,
    builds,
    idempotency,
    images,
    logs,
    microvms,
    paging,
    tags,
    transitions,
    versions,
    views,
)
from ember.store.engine import DATABASE_URL_ENV, Store, create_engine, database_url
from ember.store.errors import IdempotencyMismatch, IllegalTransition, NameTaken, RecordNotFound
from ember.store.migrate import current_revision, head_revision, migrate, upgrade_sql
from ember.store.models import (
    AccessKey,
    Account,
    Base,
    Build,
    IdempotencyRecord,
    Image,
    ImageVersion,
    LogLine,
    Microvm,
    MicrovmEvent,
    Tag,
)
from ember.store.paging import Page
from ember.store.transitions import TRANSITIONS, Transition, can_transition, transition

__all__ = [
    "DATABASE_URL_ENV",
    "TRANSITIONS",
    "AccessKey",
    "Account",
    "Base",
    "Build",
    "IdempotencyMismatch",
    "IdempotencyRecord",
    "IllegalTransition",
    "Image",
    "ImageVersion",
    "LogLine",
    "Microvm",
    "MicrovmEvent",
    "NameTaken",
    "Page",
    "RecordNotFound",
    "Store",
    "Tag",
    "Transition",
    "accounts",
    "builds",
    "can_transition",
    "create_engine",
    "current_revision",
    "database_url",
    "head_revision",
    "idempotency",
    "images",
    "logs",
    "microvms",
    "migrate",
    "paging",
    "tags",
    "transition",
    "transitions",
    "upgrade_sql",
    "versions",
    "views",
]
