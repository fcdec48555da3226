"""Every numeric bound of the API, as a named constant with a unit suffix.

Values come from the service model (PyPI ``microvm-ctl`` 0.5.0, shapes named in the comments) unless the comment
cites ``CONTRACT.md §10`` (Ember's decisions, which win). Validators in this package read only these names, so a
bound changes in one place. The suffix says the unit: ``_MIB`` mebibytes, ``_BYTES``, ``_CHARS`` (Unicode code
points, as the model counts string lengths), ``_S`` seconds, ``_MIN`` minutes, ``_ITEMS`` list/map entries.
"""

from __future__ import annotations

# --- Sizing (§10) --------------------------------------------------------------------------------------------------
MIN_MEMORY_MIB = 128
"""Smallest ``resources[0].minimumMemoryInMiB`` (§10; the model has no bound)."""
MAX_MEMORY_MIB = 32768
"""Largest ``resources[0].minimumMemoryInMiB`` (§10)."""
DEFAULT_MEMORY_MIB = 512
"""Memory of an image version that names no ``resources`` (§10)."""
MIB_PER_VCPU = 2048
"""One vCPU per 2 GiB of memory (§10: vCPUs = memory GiB / 2)."""
MIN_VCPUS = 1
MAX_VCPUS = 16
MIN_DISK_SIZE_MIB = 256
"""Smallest ``x-ember-diskSizeInMiB``: a floor against typos; the build still fails if the rootfs does not fit."""
MAX_DISK_SIZE_MIB = 32768
"""Largest ``x-ember-diskSizeInMiB`` (§10; a server setting may lower it)."""
DEFAULT_DISK_SIZE_MIB = 2048
"""Disk of an image version that names no ``x-ember-diskSizeInMiB`` (§10)."""
MAX_RESOURCES_ITEMS = 1
"""``ResourcesList`` max."""

# --- Lifecycle -----------------------------------------------------------------------------------------------------
MIN_MAXIMUM_DURATION_S = 1
MAX_MAXIMUM_DURATION_S = 28800
"""``RunMicrovmRequestMaximumDurationInSecondsInteger``: 8 hours, suspended time included."""
DEFAULT_MAXIMUM_DURATION_S = 28800
"""§10: a RunMicrovm without ``maximumDurationInSeconds`` gets the maximum."""
MIN_MAX_IDLE_DURATION_S = 60
"""``IdlePolicyMaxIdleDurationSecondsInteger`` min (no max is modelled)."""
MIN_SUSPENDED_DURATION_S = 0
"""``IdlePolicySuspendedDurationSecondsInteger`` min; 0 means "until the maximum duration ends" (§10)."""
MAX_RUN_HOOK_PAYLOAD_BYTES = 16384
"""§10: ``runHookPayload`` up to 16384 bytes of UTF-8 (the model's shape says 4096 characters; its docs say 16,384)."""

# --- Hooks ---------------------------------------------------------------------------------------------------------
MIN_PORT = 1
MAX_PORT = 65535
MIN_MICROVM_HOOK_TIMEOUT_S = 1
MAX_MICROVM_HOOK_TIMEOUT_S = 60
"""``MicrovmHooks*TimeoutInSecondsInteger``: run, resume, suspend, terminate."""
MIN_IMAGE_HOOK_TIMEOUT_S = 1
MAX_IMAGE_HOOK_TIMEOUT_S = 3600
"""``MicrovmImageHooks*TimeoutInSecondsInteger``: ready, validate."""

# --- Tokens --------------------------------------------------------------------------------------------------------
MIN_TOKEN_EXPIRATION_MIN = 1
MAX_TOKEN_EXPIRATION_MIN = 60
"""``expirationInMinutes``: the shape says only ``min 1``; the docs (and §10) say 60."""
MIN_ALLOWED_PORTS_ITEMS = 1
"""``ListOfPortSpecification`` min."""
MIN_TOKEN_PARTS_ITEMS = 1
MAX_TOKEN_PARTS_ITEMS = 10
MAX_TOKEN_KEY_CHARS = 256
MAX_TOKEN_VALUE_CHARS = 8000

# --- Lists and identifiers -----------------------------------------------------------------------------------------
MIN_MAX_RESULTS = 1
MAX_MAX_RESULTS = 50
"""``*MaxResultsInteger`` on every paginated List operation."""
DEFAULT_MAX_RESULTS = 50
"""Page size when ``maxResults`` is omitted (the model is silent; Ember gives the maximum)."""
MIN_CLIENT_TOKEN_CHARS = 1
MAX_CLIENT_TOKEN_CHARS = 128
MIN_IMAGE_NAME_CHARS = 1
MAX_IMAGE_NAME_CHARS = 64
MAX_IDENTIFIER_CHARS = 256
"""``MicrovmImageIdentifier`` / ``MicrovmIdentifier``: "ARN or ID"."""
MAX_NON_BLANK_CHARS = 2048
"""``NonBlankString`` / ``Version`` / ``NetworkConnector`` / endpoint strings."""
MIN_IMAGE_ARN_CHARS = 20
"""``MicrovmImageArn`` min."""
MIN_ROLE_ARN_CHARS = 20
MAX_ROLE_ARN_CHARS = 2048
MAX_TAGGABLE_RESOURCE_CHARS = 10000

# --- Image configuration -------------------------------------------------------------------------------------------
MAX_ENV_VARS_ITEMS = 50
MAX_ENV_KEY_CHARS = 256
MAX_ENV_VALUE_CHARS = 4096
MAX_LOG_GROUP_CHARS = 512
MAX_LOG_STREAM_CHARS = 512
MAX_IMAGE_EGRESS_CONNECTORS_ITEMS = 1
"""``CreateMicrovmImageRequestEgressNetworkConnectorsList`` max."""
MAX_RUN_CONNECTORS_ITEMS = 10
"""``NetworkConnectorList`` max (RunMicrovm ingress and egress, each)."""

# --- Tags ----------------------------------------------------------------------------------------------------------
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_CHARS = 256
MAX_TAGS_ITEMS = 50
"""The model gives no count; Ember uses Lambda's documented 50 tags per resource."""


def vcpus_for_memory_mib(memory_mib: int) -> int:
    """vCPUs of a VM with ``memory_mib`` of memory: one per 2 GiB, at least 1, at most 16 (§10)."""
    return max(MIN_VCPUS, min(MAX_VCPUS, memory_mib // MIB_PER_VCPU))
