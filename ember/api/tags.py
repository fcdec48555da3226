"""Handlers of the tag API (Lambda-classic ``/2017-03-31/tags/{Resource}``): list, tag and untag image ARNs.

Only ``microvm-image`` resources exist in Ember; other taggable ARN kinds (functions, layers, ...) are
ResourceNotFoundException, and ARNs that are not taggable at all (MicroVMs, image versions) are
InvalidParameterValueException, as the model's ``TaggableResource`` pattern says. Errors on these routes use the
classic names (the app renames them; see ``ember.api.errors.classic_error``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ember.api._http import Call
from ember.contract.arns import RESOURCE_IMAGE, image_arn, parse_arn
from ember.contract.enums import ImageState
from ember.contract.errors import InvalidParameterValueException, ResourceConflictException, ResourceNotFoundException
from ember.contract.tags import ListTagsRequest, ListTagsResponse, TagResourceRequest, UntagResourceRequest
from ember.store import images, tags

IMAGE_CHANGING_STATES = (ImageState.DELETING,)


def _image_name(call: Call, resource: str) -> str:
    """The name of the caller's image that ``resource`` (already a taggable ARN) names; RNF otherwise."""
    arn = parse_arn(resource)
    if (
        arn is None
        or arn.resource_type != RESOURCE_IMAGE
        or arn.account != call.account_id
        or arn.region != call.ctx.region
    ):
        raise ResourceNotFoundException(
            f"resource {resource} was not found: Ember tags only its microvm-image resources in this account "
            f"and region ({call.ctx.region})",
            resource_type="TaggableResource",
            resource_id=resource,
        )
    return arn.resource


def _check_image(session: Session, call: Call, name: str, *, changing: bool) -> str:
    image = images.get_image(session, call.account_id, name)
    if changing and image.state in IMAGE_CHANGING_STATES:
        raise ResourceConflictException(f"image {name} is {image.state}; its tags cannot change now")
    return image_arn(call.ctx.region, call.account_id, name)


async def list_tags(call: Call) -> ListTagsResponse:
    """ListTags: the image's tags (``{"Tags": {}}`` when it has none)."""
    req = call.parse(ListTagsRequest, error_cls=InvalidParameterValueException)
    name = _image_name(call, req.Resource)

    def txn(session: Session) -> ListTagsResponse:
        arn = _check_image(session, call, name, changing=False)
        return ListTagsResponse(Tags=tags.list_tags(session, call.account_id, arn))

    return await call.read(txn)


async def tag_resource(call: Call) -> None:
    """TagResource: add or overwrite tags (204)."""
    req = call.parse(TagResourceRequest, error_cls=InvalidParameterValueException)
    name = _image_name(call, req.Resource)

    def txn(session: Session) -> None:
        arn = _check_image(session, call, name, changing=True)
        tags.tag_resource(session, call.account_id, arn, req.Tags)

    await call.write(txn)


async def untag_resource(call: Call) -> None:
    """UntagResource: remove the tags with ``tagKeys`` (keys that are not set are ignored) (204)."""
    req = call.parse(UntagResourceRequest, error_cls=InvalidParameterValueException)
    name = _image_name(call, req.Resource)

    def txn(session: Session) -> None:
        arn = _check_image(session, call, name, changing=True)
        tags.untag_resource(session, call.account_id, arn, req.TagKeys)

    await call.write(txn)
