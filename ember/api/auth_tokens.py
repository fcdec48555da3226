"""Handlers that mint endpoint tokens: CreateMicrovmAuthToken (port-scoped) and CreateMicrovmShellAuthToken.

Both need a MicroVM of the caller's account that is not TERMINATING/TERMINATED (else ConflictException, as the
[K] model revision lists). A shell token also needs the MicroVM to have been run with the ``SHELL_INGRESS``
ingress connector; without it the answer is ConflictException (the request is well-formed, the MicroVM's
configuration forbids it, and [K] lists Conflict for this operation). Tokens are made by ``ember.gateway.tokens``.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ember.api._http import Call
from ember.api.microvms import microvm_id
from ember.contract.arns import RESOURCE_TYPE_MICROVM
from ember.contract.enums import MicrovmState, NetworkConnectorName
from ember.contract.errors import ConflictException
from ember.contract.microvms import (
    CreateMicrovmAuthTokenRequest,
    CreateMicrovmAuthTokenResponse,
    CreateMicrovmShellAuthTokenRequest,
    CreateMicrovmShellAuthTokenResponse,
)
from ember.gateway.tokens import mint_token
from ember.store import microvms
from ember.store.models import Microvm

ENDED_STATES = (MicrovmState.TERMINATING, MicrovmState.TERMINATED)


async def _usable(call: Call, vm_id: str, operation: str) -> Microvm:
    def txn(session: Session) -> Microvm:
        return microvms.get_microvm(session, call.account_id, vm_id)

    row = await call.read(txn)
    if row.state in ENDED_STATES:
        raise ConflictException(
            f"MicroVM {vm_id} is {row.state}: {operation} needs a MicroVM that is not terminated",
            resource_type=RESOURCE_TYPE_MICROVM,
            resource_id=vm_id,
        )
    return row


async def create_auth_token(call: Call) -> CreateMicrovmAuthTokenResponse:
    """CreateMicrovmAuthToken: ``{"X-aws-proxy-auth": token}`` for the MicroVM's endpoint, scoped to ports."""
    req = call.parse(CreateMicrovmAuthTokenRequest)
    vm_id = microvm_id(call, req.microvmIdentifier)
    await _usable(call, vm_id, "CreateMicrovmAuthToken")
    ports = [spec.to_wire() for spec in req.allowedPorts]
    token = mint_token(call.ctx.token_secret, vm_id, call.account_id, ports, req.expirationInMinutes, "proxy")
    return CreateMicrovmAuthTokenResponse(authToken=token)


async def create_shell_auth_token(call: Call) -> CreateMicrovmShellAuthTokenResponse:
    """CreateMicrovmShellAuthToken: a token for ``{endpoint}/.ember/shell``; needs the SHELL_INGRESS connector."""
    req = call.parse(CreateMicrovmShellAuthTokenRequest)
    vm_id = microvm_id(call, req.microvmIdentifier)
    row = await _usable(call, vm_id, "CreateMicrovmShellAuthToken")
    shell = NetworkConnectorName.SHELL_INGRESS.value
    if not any(str(c).endswith(shell) for c in row.ingress_connectors or []):
        raise ConflictException(
            f"MicroVM {vm_id} was not run with the {shell} ingress connector, so it has no shell: run a new one "
            f"with ingressNetworkConnectors=[arn:aws:lambda:{call.ctx.region}:aws:network-connector:"
            f"aws-network-connector:{shell}]",
            resource_type=RESOURCE_TYPE_MICROVM,
            resource_id=vm_id,
        )
    token = mint_token(call.ctx.token_secret, vm_id, call.account_id, None, req.expirationInMinutes, "shell")
    return CreateMicrovmShellAuthTokenResponse(authToken=token)
