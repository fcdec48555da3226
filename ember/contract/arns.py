"""Identifiers and ARNs: how Ember names images, MicroVMs, builds and network connectors (CONTRACT.md §1.2, §10).

::

    image              arn:aws:lambda:{region}:{account}:microvm-image:{name}
    managed base image arn:aws:lambda:{region}:aws:microvm-image:{name}
    MicroVM            arn:aws:lambda:{region}:{account}:microvm:{id}      id = mvm- + 32 lowercase hex
    network connector  arn:aws:lambda:{region}:aws:network-connector:aws-network-connector:{NAME}

Wherever the API takes an identifier it takes "ARN or ID"; the ``parse_*`` helpers accept both and return the bare
name or id. Garbage raises ``ValidationException`` naming the field. An ARN naming another account (or region, when
one is given) raises ``ResourceNotFoundException``: another tenant's resources are never visible.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from ember.contract.enums import NetworkConnectorName
from ember.contract.errors import ResourceNotFoundException, ValidationException

PARTITION = "aws"
SERVICE = "lambda"
MANAGED_ACCOUNT = "aws"
"""The account field of AWS-managed resources (base images, network connectors)."""
MANAGED_CONNECTOR_PREFIX = "aws-network-connector:"

RESOURCE_IMAGE = "microvm-image"
RESOURCE_MICROVM = "microvm"
RESOURCE_CONNECTOR = "network-connector"

RESOURCE_TYPE_IMAGE = "MicrovmImage"
"""``resourceType`` of errors about images (and managed base images)."""
RESOURCE_TYPE_MICROVM = "Microvm"
RESOURCE_TYPE_CONNECTOR = "NetworkConnector"

IMAGE_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
MANAGED_IMAGE_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$"
"""Managed base image names may contain dots (``python-3.11``); customer image names may not (the model's pattern)."""
MICROVM_ID_PATTERN = r"^mvm-[0-9a-f]{32}$"
ACCOUNT_ID_PATTERN = r"^[0-9]{12}$"
_IMAGE_NAME_RE = re.compile(IMAGE_NAME_PATTERN)
_MANAGED_IMAGE_NAME_RE = re.compile(MANAGED_IMAGE_NAME_PATTERN)
_MICROVM_ID_RE = re.compile(MICROVM_ID_PATTERN)
_ACCOUNT_RE = re.compile(ACCOUNT_ID_PATTERN)
_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-zA-Z-]*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
    r"(?P<account>[0-9]{12}|aws):(?P<resource_type>[a-z-]+):(?P<resource>.+)$"
)


@dataclass(frozen=True)
class Arn:
    """An ARN split into its fields; ``str()`` puts it back together."""

    partition: str
    service: str
    region: str
    account: str
    resource_type: str
    resource: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource_type}:{self.resource}"


def new_microvm_id() -> str:
    """A fresh MicroVM id: ``mvm-`` and 32 random lowercase hex digits."""
    return "mvm-" + secrets.token_hex(16)


def new_build_id() -> str:
    """A fresh build id: 32 random lowercase hex digits."""
    return secrets.token_hex(16)


def is_microvm_id(value: str) -> bool:
    """Whether ``value`` is a bare MicroVM id."""
    return bool(_MICROVM_ID_RE.match(value))


def is_image_name(value: str) -> bool:
    """Whether ``value`` is a valid image name (1-64 of ``[a-zA-Z0-9_-]``)."""
    return bool(_IMAGE_NAME_RE.match(value))


def is_account_id(value: str) -> bool:
    """Whether ``value`` is a 12-digit account id."""
    return bool(_ACCOUNT_RE.match(value))


def image_arn(region: str, account: str, name: str) -> str:
    """ARN of the customer image ``name`` in ``account``."""
    return str(Arn(PARTITION, SERVICE, region, account, RESOURCE_IMAGE, name))


def managed_image_arn(region: str, name: str) -> str:
    """ARN of the managed base image ``name`` (account ``aws``)."""
    return str(Arn(PARTITION, SERVICE, region, MANAGED_ACCOUNT, RESOURCE_IMAGE, name))


def microvm_arn(region: str, account: str, microvm_id: str) -> str:
    """ARN of a MicroVM (an Ember decision: the model has none)."""
    return str(Arn(PARTITION, SERVICE, region, account, RESOURCE_MICROVM, microvm_id))


def connector_arn(region: str, name: NetworkConnectorName | str) -> str:
    """ARN of a managed network connector (``ALL_INGRESS``, ``INTERNET_EGRESS``, ...)."""
    name = NetworkConnectorName(name)
    return str(Arn(PARTITION, SERVICE, region, MANAGED_ACCOUNT, RESOURCE_CONNECTOR, MANAGED_CONNECTOR_PREFIX + name))


def parse_arn(value: str) -> Arn | None:
    """Split ``value`` if it has the shape ``arn:aws:<service>:<region>:<account|aws>:<type>:<resource>``."""
    match = _ARN_RE.match(value)
    return Arn(**match.groupdict()) if match else None


def _check_scope(arn: Arn, value: str, *, account: str | None, region: str | None, resource_type: str) -> None:
    if (account is not None and arn.account != account) or (region is not None and arn.region != region):
        raise ResourceNotFoundException(
            f"{resource_type} {value} was not found", resource_type=resource_type, resource_id=value
        )


def parse_image_identifier(
    value: str, *, field: str = "imageIdentifier", account: str | None = None, region: str | None = None
) -> str:
    """The image name in ``value`` (an image name or image ARN).

    ``account``/``region``: the caller's; an ARN naming another raises ``ResourceNotFoundException``. A managed
    base image ARN is rejected here (use ``parse_managed_image_identifier``).
    """
    if is_image_name(value):
        return value
    arn = parse_arn(value)
    if arn is not None and arn.resource_type == RESOURCE_IMAGE and arn.account == MANAGED_ACCOUNT:
        raise ValidationException.for_field(
            field, f"{_echo(value)} is a managed base image; name one of your images built from it"
        )
    if arn is None or arn.service != SERVICE or arn.resource_type != RESOURCE_IMAGE or not is_image_name(arn.resource):
        raise ValidationException.for_field(
            field,
            f"{_echo(value)} is neither an image name (1-64 of [a-zA-Z0-9_-]) nor an image ARN "
            "(arn:aws:lambda:<region>:<account>:microvm-image:<name>)",
        )
    _check_scope(arn, value, account=account, region=region, resource_type=RESOURCE_TYPE_IMAGE)
    return arn.resource


def parse_managed_image_identifier(value: str, *, field: str = "baseImageArn", region: str | None = None) -> str:
    """The managed base image name in ``value`` (``arn:aws:lambda:<region>:aws:microvm-image:<name>`` or the name)."""
    if _MANAGED_IMAGE_NAME_RE.match(value):
        return value
    arn = parse_arn(value)
    if (
        arn is None
        or arn.service != SERVICE
        or arn.resource_type != RESOURCE_IMAGE
        or arn.account != MANAGED_ACCOUNT
        or not _MANAGED_IMAGE_NAME_RE.match(arn.resource)
    ):
        raise ValidationException.for_field(
            field,
            f"{_echo(value)} is not a managed base image ARN (arn:aws:lambda:<region>:aws:microvm-image:<name>)",
        )
    _check_scope(arn, value, account=None, region=region, resource_type=RESOURCE_TYPE_IMAGE)
    return arn.resource


def parse_microvm_identifier(
    value: str, *, field: str = "microvmIdentifier", account: str | None = None, region: str | None = None
) -> str:
    """The MicroVM id in ``value`` (a bare ``mvm-…`` id or a MicroVM ARN)."""
    if is_microvm_id(value):
        return value
    arn = parse_arn(value)
    if (
        arn is None
        or arn.service != SERVICE
        or arn.resource_type != RESOURCE_MICROVM
        or arn.account == MANAGED_ACCOUNT
        or not is_microvm_id(arn.resource)
    ):
        raise ValidationException.for_field(
            field,
            f"{_echo(value)} is neither a MicroVM id (mvm- and 32 lowercase hex digits) nor a MicroVM ARN "
            "(arn:aws:lambda:<region>:<account>:microvm:<id>)",
        )
    _check_scope(arn, value, account=account, region=region, resource_type=RESOURCE_TYPE_MICROVM)
    return arn.resource


def parse_connector(value: str, *, field: str, region: str | None = None) -> NetworkConnectorName:
    """The managed connector named by ``value`` (its ARN, or the bare name such as ``INTERNET_EGRESS``).

    Customer connectors (``…:network-connector:<name>`` in a 12-digit account) come from the ``lambda-core`` API,
    which Ember does not implement: they raise ``ValidationException``.
    """
    names = ", ".join(NetworkConnectorName)
    if value in NetworkConnectorName.__members__:
        return NetworkConnectorName(value)
    arn = parse_arn(value)
    if (
        arn is None
        or arn.service != SERVICE
        or arn.resource_type != RESOURCE_CONNECTOR
        or arn.account != MANAGED_ACCOUNT
        or not arn.resource.startswith(MANAGED_CONNECTOR_PREFIX)
        or arn.resource[len(MANAGED_CONNECTOR_PREFIX) :] not in NetworkConnectorName.__members__
    ):
        raise ValidationException.for_field(
            field,
            f"{_echo(value)} is not a managed network connector "
            f"(arn:aws:lambda:<region>:aws:network-connector:aws-network-connector:<NAME>, NAME one of {names})",
        )
    _check_scope(arn, value, account=None, region=region, resource_type=RESOURCE_TYPE_CONNECTOR)
    return NetworkConnectorName(arn.resource[len(MANAGED_CONNECTOR_PREFIX) :])


def _echo(value: str) -> str:
    return repr(value if len(value) <= 64 else value[:61] + "...")
