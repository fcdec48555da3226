"""Requests and responses of the MicroVM operations and their auth tokens (CONTRACT.md §1.4, 14-21).

Request models carry path and query members too (``microvmIdentifier``, ``maxResults``...), so the API layer
validates ``{**query, **body, **path}`` in one ``parse_request`` call.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from ember.contract import bounds
from ember.contract._base import ApiModel, EmptyModel, Timestamp
from ember.contract.enums import MicrovmState
from ember.contract.shapes import (
    ClientToken,
    EgressConnector,
    Endpoint,
    Identifier,
    IdlePolicy,
    ImageArnString,
    IngressConnector,
    Logging,
    MaxResults,
    NetworkConnector,
    NonBlankString,
    PortSpecification,
    RoleArn,
    TokenParts,
)


def _check_payload_bytes(value: str) -> str:
    size = len(value.encode("utf-8"))
    if size > bounds.MAX_RUN_HOOK_PAYLOAD_BYTES:
        raise ValueError(f"{size} bytes is greater than the maximum {bounds.MAX_RUN_HOOK_PAYLOAD_BYTES} bytes")
    return value


RunHookPayload = Annotated[str, AfterValidator(_check_payload_bytes)]
"""Free-form text for the ``run`` hook, up to ``MAX_RUN_HOOK_PAYLOAD_BYTES`` of UTF-8 (§10)."""
MaximumDurationSeconds = Annotated[int, Field(ge=bounds.MIN_MAXIMUM_DURATION_S, le=bounds.MAX_MAXIMUM_DURATION_S)]
ExpirationMinutes = Annotated[int, Field(ge=bounds.MIN_TOKEN_EXPIRATION_MIN, le=bounds.MAX_TOKEN_EXPIRATION_MIN)]
RunIngressConnectors = Annotated[list[IngressConnector], Field(max_length=bounds.MAX_RUN_CONNECTORS_ITEMS)]
RunEgressConnectors = Annotated[list[EgressConnector], Field(max_length=bounds.MAX_RUN_CONNECTORS_ITEMS)]
ConnectorList = Annotated[list[NetworkConnector], Field(max_length=bounds.MAX_RUN_CONNECTORS_ITEMS)]


# --- RunMicrovm / GetMicrovm ---------------------------------------------------------------------------------------
class RunMicrovmRequest(ApiModel):
    """POST /2025-09-09/microvms: launch a MicroVM from an image version (the latest ACTIVE one if omitted).

    Defaults the API applies (§10): ``maximumDurationInSeconds`` ``bounds.DEFAULT_MAXIMUM_DURATION_S``; no
    ``idlePolicy`` → never auto-suspended.
    """

    imageIdentifier: Identifier
    imageVersion: NonBlankString | None = None
    executionRoleArn: RoleArn | None = None
    idlePolicy: IdlePolicy | None = None
    logging: Logging | None = None
    runHookPayload: RunHookPayload | None = None
    maximumDurationInSeconds: MaximumDurationSeconds | None = None
    ingressNetworkConnectors: RunIngressConnectors | None = None
    egressNetworkConnectors: RunEgressConnectors | None = None
    clientToken: ClientToken | None = None


class MicrovmDetail(ApiModel):
    """One MicroVM (RunMicrovm and GetMicrovm responses). ``endpoint`` has no scheme."""

    microvmId: Identifier
    state: MicrovmState
    endpoint: Endpoint
    imageArn: ImageArnString
    imageVersion: NonBlankString
    executionRoleArn: RoleArn | None = None
    idlePolicy: IdlePolicy | None = None
    maximumDurationInSeconds: int
    startedAt: Timestamp
    terminatedAt: Timestamp | None = None
    stateReason: NonBlankString | None = None
    ingressNetworkConnectors: ConnectorList | None = None
    egressNetworkConnectors: ConnectorList | None = None


RunMicrovmResponse = MicrovmDetail
GetMicrovmResponse = MicrovmDetail


class GetMicrovmRequest(ApiModel):
    """GET /2025-09-09/microvms/{microvmIdentifier}."""

    microvmIdentifier: Identifier


# --- ListMicrovms --------------------------------------------------------------------------------------------------
class ListMicrovmsRequest(ApiModel):
    """GET /2025-09-09/microvms?maxResults&nextToken&imageIdentifier&imageVersion (TERMINATED ones included)."""

    maxResults: MaxResults | None = None
    nextToken: str | None = None
    imageIdentifier: Identifier | None = None
    imageVersion: str | None = None


class MicrovmItem(ApiModel):
    """One item of ListMicrovms."""

    microvmId: Identifier
    state: MicrovmState
    imageArn: ImageArnString
    imageVersion: NonBlankString
    startedAt: Timestamp


class ListMicrovmsResponse(ApiModel):
    """A page of MicroVMs, oldest first; ``nextToken`` is absent on the last page."""

    items: list[MicrovmItem]
    nextToken: str | None = None


# --- Suspend / Resume / Terminate ----------------------------------------------------------------------------------
class SuspendMicrovmRequest(ApiModel):
    """POST /2025-09-09/microvms/{microvmIdentifier}/suspend (RUNNING → SUSPENDING → SUSPENDED)."""

    microvmIdentifier: Identifier


class ResumeMicrovmRequest(ApiModel):
    """POST /2025-09-09/microvms/{microvmIdentifier}/resume (SUSPENDED → RUNNING)."""

    microvmIdentifier: Identifier


class TerminateMicrovmRequest(ApiModel):
    """DELETE /2025-09-09/microvms/{microvmIdentifier} (idempotent)."""

    microvmIdentifier: Identifier


class SuspendMicrovmResponse(EmptyModel):
    """``{}``."""


class ResumeMicrovmResponse(EmptyModel):
    """``{}``."""


class TerminateMicrovmResponse(EmptyModel):
    """``{}``."""


# --- Auth tokens ---------------------------------------------------------------------------------------------------
class CreateMicrovmAuthTokenRequest(ApiModel):
    """POST /2025-09-09/microvms/{microvmIdentifier}/auth-token: a token for the endpoint, scoped to ports."""

    microvmIdentifier: Identifier
    expirationInMinutes: ExpirationMinutes
    allowedPorts: Annotated[list[PortSpecification], Field(min_length=bounds.MIN_ALLOWED_PORTS_ITEMS)]


class CreateMicrovmAuthTokenResponse(ApiModel):
    """``{"authToken": {"X-aws-proxy-auth": "<token>"}}``."""

    authToken: TokenParts


class CreateMicrovmShellAuthTokenRequest(ApiModel):
    """POST /2025-09-09/microvms/{microvmIdentifier}/shell-auth-token (needs the SHELL_INGRESS connector)."""

    microvmIdentifier: Identifier
    expirationInMinutes: ExpirationMinutes


class CreateMicrovmShellAuthTokenResponse(ApiModel):
    """``{"authToken": {...}}`` for the shell WebSocket (§10)."""

    authToken: TokenParts
