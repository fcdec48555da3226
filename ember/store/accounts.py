"""Accounts (tenants) and their SigV4 access keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ember.contract.arns import is_account_id
from ember.errors import InvalidInput
from ember.store._types import utcnow
from ember.store.models import AccessKey, Account


def ensure_account(session: Session, account_id: str, *, now: datetime | None = None) -> Account:
    """The account ``account_id`` (12 digits), created if it does not exist yet."""
    if not is_account_id(account_id):
        raise InvalidInput("accountId", f"{account_id!r} is not a 12-digit account id")
    account = session.get(Account, account_id)
    if account is None:
        account = Account(id=account_id, created_at=now or utcnow())
        session.add(account)
        session.flush()
    return account


def get_account(session: Session, account_id: str) -> Account | None:
    """The account ``account_id``, or None."""
    return session.get(Account, account_id)


def add_access_key(
    session: Session, account_id: str, access_key_id: str, secret_access_key: str, *, now: datetime | None = None
) -> AccessKey:
    """Store a new key pair for ``account_id`` (created if needed); the key id must be unused."""
    ensure_account(session, account_id, now=now)
    key = AccessKey(
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        account_id=account_id,
        created_at=now or utcnow(),
    )
    session.add(key)
    session.flush()
    return key


def ensure_root_key(
    session: Session, account_id: str, access_key_id: str, secret_access_key: str, *, now: datetime | None = None
) -> AccessKey:
    """Make ``access_key_id`` exist for ``account_id`` with this secret (created, or its secret/account updated).

    Used at start for the root key (from ``$EMBER_HOME`` or ``EMBER_ROOT_ACCESS_KEY_ID`` / ``…_SECRET_…``), so
    running it at every start is harmless and an override takes effect.
    """
    ensure_account(session, account_id, now=now)
    key = session.get(AccessKey, access_key_id)
    if key is None:
        return add_access_key(session, account_id, access_key_id, secret_access_key, now=now)
    key.secret_access_key = secret_access_key
    key.account_id = account_id
    session.flush()
    return key


def find_access_key(session: Session, access_key_id: str) -> AccessKey | None:
    """The key pair for ``access_key_id`` (to verify a SigV4 signature and learn the caller's account), or None."""
    return session.get(AccessKey, access_key_id)


def delete_access_key(session: Session, access_key_id: str) -> bool:
    """Remove a key pair; True if it existed."""
    key = session.get(AccessKey, access_key_id)
    if key is None:
        return False
    session.delete(key)
    session.flush()
    return True
