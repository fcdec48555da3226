"""Tags of taggable resources (images), keyed by the resource's ARN within the caller's account.

Whether the ARN names an existing resource is the API's check; the store only keeps the key/value pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ember.contract.bounds import MAX_TAGS_ITEMS
from ember.errors import InvalidInput
from ember.store.models import Tag


def list_tags(session: Session, account_id: str, resource_arn: str) -> dict[str, str]:
    """The resource's tags (empty if none)."""
    rows = session.scalars(
        select(Tag).where(Tag.account_id == account_id, Tag.resource_arn == resource_arn).order_by(Tag.key)
    )
    return {row.key: row.value for row in rows}


def tag_resource(session: Session, account_id: str, resource_arn: str, tags: Mapping[str, str]) -> dict[str, str]:
    """Add or overwrite ``tags``; raises ``InvalidInput("Tags", …)`` past ``MAX_TAGS_ITEMS``. Returns all tags."""
    current = list_tags(session, account_id, resource_arn)
    merged = {**current, **tags}
    if len(merged) > MAX_TAGS_ITEMS:
        raise InvalidInput(
            "Tags", f"the resource would have {len(merged)} tags, more than the maximum {MAX_TAGS_ITEMS}"
        )
    for key, value in tags.items():
        if key in current:
            row = session.get(Tag, (account_id, resource_arn, key))
            assert row is not None
            row.value = value
        else:
            session.add(Tag(account_id=account_id, resource_arn=resource_arn, key=key, value=value))
    session.flush()
    return merged


def untag_resource(session: Session, account_id: str, resource_arn: str, keys: Iterable[str]) -> None:
    """Remove the tags with ``keys``; keys that are not set are ignored."""
    keys = list(keys)
    if keys:
        session.execute(
            delete(Tag).where(Tag.account_id == account_id, Tag.resource_arn == resource_arn, Tag.key.in_(keys))
        )


def delete_tags(session: Session, account_id: str, resource_arn: str) -> None:
    """Remove every tag of the resource (when the resource is deleted)."""
    session.execute(delete(Tag).where(Tag.account_id == account_id, Tag.resource_arn == resource_arn))
