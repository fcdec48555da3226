"""The API's enumerations, spelled exactly as on the wire (the service model's enum values).

Every class is a ``StrEnum``, so a member *is* its wire string: it compares equal to it, ``json.dumps`` writes it
as the bare value, and pydantic accepts the string on input. Values that are Ember extensions (not in the
service model) say so in their comment.
"""

from __future__ import annotations

from enum import StrEnum


class MicrovmState(StrEnum):
    """Where a MicroVM is in its life (CONTRACT.md §2). Transitions live in ``ember.store.transitions``."""

    PENDING = "PENDING"
    """Accepted by RunMicrovm; being restored from the snapshot, ``run`` hook not yet answered."""
    RUNNING = "RUNNING"
    """Serving: the ``run`` (or ``resume``) hook answered 200."""
    SUSPENDING = "SUSPENDING"
    """``suspend`` hook and memory/disk snapshot in progress."""
    SUSPENDED = "SUSPENDED"
    """Memory and disk saved; no VMM process. Resumes on ResumeMicrovm or an inbound request (auto-resume)."""
    TERMINATING = "TERMINATING"
    """``terminate`` hook and teardown in progress."""
    TERMINATED = "TERMINATED"
    """Gone for good; the row stays for listings. Terminal."""


TERMINAL_MICROVM_STATES = frozenset({MicrovmState.TERMINATED})
"""States a MicroVM never leaves."""


class ImageState(StrEnum):
    """``MicrovmImageState``: the state of an image as a whole (the state of its latest change)."""

    CREATING = "CREATING"
    CREATED = "CREATED"
    CREATE_FAILED = "CREATE_FAILED"
    UPDATING = "UPDATING"
    UPDATED = "UPDATED"
    UPDATE_FAILED = "UPDATE_FAILED"
    DELETING = "DELETING"
    DELETE_FAILED = "DELETE_FAILED"
    DELETED = "DELETED"


class ImageVersionState(StrEnum):
    """``MicrovmImageVersionState``: the version's build progress, aggregated over its builds."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    DELETING = "DELETING"
    DELETED = "DELETED"
    DELETE_FAILED = "DELETE_FAILED"


class ImageVersionStatus(StrEnum):
    """``MicrovmImageVersionStatus``: whether new MicroVMs may launch from the version (set by the user)."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


class BuildState(StrEnum):
    """``BuildState``: one build of a version for one (architecture, chipset, generation); SUCCESSFUL, FAILED end."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"


class HookState(StrEnum):
    """``HookState``: whether the platform calls a hook."""

    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class Architecture(StrEnum):
    """``Architecture``: the model has only ARM_64; Ember builds for the host's architecture (§10)."""

    X86_64 = "X86_64"
    """Ember extension (§10)."""
    ARM_64 = "ARM_64"


class Chipset(StrEnum):
    """``Chipset``: the model has only GRAVITON; Ember adds the x86 vendors and a generic value for emulation."""

    GRAVITON = "GRAVITON"
    INTEL = "INTEL"
    """Ember extension."""
    AMD = "AMD"
    """Ember extension."""
    GENERIC = "GENERIC"
    """Ember extension: an emulated CPU (QEMU TCG) or a vendor Ember does not recognise."""


class Capability(StrEnum):
    """``Capability``: extra OS capabilities of an image (``additionalOsCapabilities``)."""

    ALL = "ALL"


class ManagedImageVersionStatus(StrEnum):
    """Status of a managed base image version (in capo-lambda-microvms' model revision, CONTRACT.md §1.8)."""

    AVAILABLE = "AVAILABLE"
    DEPRECATED = "DEPRECATED"
    """Still usable, but do not use it for new images."""


class NetworkConnectorName(StrEnum):
    """The AWS-managed network connectors; their ARNs come from ``ember.contract.arns.connector_arn``."""

    ALL_INGRESS = "ALL_INGRESS"
    NO_INGRESS = "NO_INGRESS"
    SHELL_INGRESS = "SHELL_INGRESS"
    INTERNET_EGRESS = "INTERNET_EGRESS"


INGRESS_CONNECTORS = frozenset(
    {NetworkConnectorName.ALL_INGRESS, NetworkConnectorName.NO_INGRESS, NetworkConnectorName.SHELL_INGRESS}
)
"""Connectors that may appear in ``ingressNetworkConnectors``."""
EGRESS_CONNECTORS = frozenset({NetworkConnectorName.INTERNET_EGRESS})
"""Connectors that may appear in ``egressNetworkConnectors``."""
