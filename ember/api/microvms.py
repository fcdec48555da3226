"""Handlers of the MicroVM operations: run, get, list, suspend, resume, terminate.

RunMicrovm commits a PENDING row (with its endpoint) and then asks ``ctx.microvms.launch``; the other calls read
rows or ask the lifecycle service to move one. Idempotent repeats are answered here without touching the
lifecycle: SuspendMicrovm on a SUSPENDING/SUSPENDED MicroVM, ResumeMicrovm on a RUNNING one and TerminateMicrovm on
a TERMINATING/TERMINATED one succeed and change nothing. Other moves the state machine forbids are
ConflictException.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy.orm import Session

from ember.api._http import Call, page_token
from ember.api.images import image_name, request_hash
from ember.api.quotas import RUN_LIMITER, check_capacity
from ember.contract import bounds
from ember.contract.arns import RESOURCE_TYPE_MICROVM, connector_arn, new_microvm_id, parse_connector
from ember.contract.arns import parse_microvm_identifier as parse_microvm
from ember.contract.enums import ImageVersionState, ImageVersionStatus, MicrovmState
from ember.contract.errors import ConflictException, ValidationException
from ember.contract.microvms import (
    GetMicrovmRequest,
    ListMicrovmsRequest,
    ListMicrovmsResponse,
    MicrovmDetail,
    ResumeMicrovmRequest,
    ResumeMicrovmResponse,
    RunMicrovmRequest,
    SuspendMicrovmRequest,
    SuspendMicrovmResponse,
    TerminateMicrovmRequest,
    TerminateMicrovmResponse,
)
from ember.contract.shapes import IdlePolicy
from ember.store import idempotency, images, microvms, transitions, versions, views
from ember.store.errors import IllegalTransition
from ember.store.models import Microvm
from ember.store.versions import RESOURCE_TYPE_VERSION

S = MicrovmState
RUN_OP = "RunMicrovm"


class _IdlePolicyIn(IdlePolicy):
    """IdlePolicy with its lower bound checked by the handler against ``ctx.min_idle_s`` (tests may lower it)."""

    maxIdleDurationSeconds: Annotated[int, Field(ge=1)]


class _RunMicrovmIn(RunMicrovmRequest):
    idlePolicy: _IdlePolicyIn | None = None  # type: ignore[assignment]


def microvm_detail(row: Microvm, region: str) -> MicrovmDetail:
    """``views.microvm_detail``, tolerating an idle policy below the contract's 60 s (servers that lower it)."""
    policy = row.idle_policy
    if not policy or int(policy.get("maxIdleDurationSeconds", 0)) >= bounds.MIN_MAX_IDLE_DURATION_S:
        return views.microvm_detail(row, region)
    fields = {column.key: getattr(row, column.key) for column in Microvm.__table__.columns}
    detail = views.microvm_detail(SimpleNamespace(**{**fields, "idle_policy": None}), region)  # type: ignore[arg-type]
    detail.idlePolicy = IdlePolicy.model_construct(**policy)
    return detail


def microvm_id(call: Call, identifier: str) -> str:
    """The MicroVM id in ``identifier`` (id or ARN); another account's ARN is ResourceNotFoundException."""
    return parse_microvm(identifier, account=call.account_id, region=call.ctx.region)


def _connectors(call: Call, values: list[str] | None, field: str) -> list[str]:
    """Managed connector ARNs (bare names are expanded), in order, without repeats."""
    out: list[str] = []
    for i, value in enumerate(values or []):
        arn = connector_arn(call.ctx.region, parse_connector(value, field=f"{field}[{i}]", region=call.ctx.region))
        if arn not in out:
            out.append(arn)
    return out


async def run_microvm(call: Call) -> MicrovmDetail:
    """RunMicrovm: a PENDING MicroVM of the image's version (default: its latest active one), then launch it."""
    req = call.parse(_RunMicrovmIn)
    ctx = call.ctx
    if req.idlePolicy is not None and req.idlePolicy.maxIdleDurationSeconds < ctx.min_idle_s:
        raise ValidationException.for_field(
            "idlePolicy.maxIdleDurationSeconds",
            f"{req.idlePolicy.maxIdleDurationSeconds} is less than the minimum {ctx.min_idle_s}",
        )
    name = image_name(call, req.imageIdentifier)
    ingress = _connectors(call, req.ingressNetworkConnectors, "ingressNetworkConnectors")
    egress = _connectors(call, req.egressNetworkConnectors, "egressNetworkConnectors")
    call.request.app[RUN_LIMITER].take(call.account_id)
    params_hash = request_hash(req)
    new_id = new_microvm_id()

    def txn(session: Session) -> tuple[MicrovmDetail, bool]:
        if req.clientToken:
            earlier = idempotency.lookup(session, call.account_id, RUN_OP, req.clientToken, params_hash)
            if earlier is not None:
                return microvm_detail(microvms.get_microvm(session, call.account_id, earlier), ctx.region), False
        image = images.get_image(session, call.account_id, name)
        version = versions.resolve_launch_version(session, image, req.imageVersion)
        resource = f"{name}:{version.version}"
        if version.state is not ImageVersionState.SUCCESSFUL:
            raise ConflictException(
                f"version {version.version} of image {name} is {version.state}: only a SUCCESSFUL version can run",
                resource_type=RESOURCE_TYPE_VERSION,
                resource_id=resource,
            )
        if version.status is not ImageVersionStatus.ACTIVE:
            raise ConflictException(
                f"version {version.version} of image {name} is INACTIVE: set it ACTIVE with "
                "UpdateMicrovmImageVersion to launch from it",
                resource_type=RESOURCE_TYPE_VERSION,
                resource_id=resource,
            )
        check_capacity(session, ctx.quotas, call.account_id, version.memory_mib)
        policy = IdlePolicy.model_construct(**req.idlePolicy.model_dump()) if req.idlePolicy else None
        row = microvms.insert_microvm(
            session,
            account_id=call.account_id,
            image=image,
            version=version,
            endpoint=ctx.endpoint_for(new_id),
            microvm_id=new_id,
            execution_role_arn=req.executionRoleArn,
            idle_policy=policy,
            logging=req.logging,
            maximum_duration_s=req.maximumDurationInSeconds or bounds.DEFAULT_MAXIMUM_DURATION_S,
            ingress_connectors=ingress,
            egress_connectors=egress,
            run_hook_payload=req.runHookPayload,
        )
        if req.clientToken:
            idempotency.record(session, call.account_id, RUN_OP, req.clientToken, params_hash, row.id)
        return microvm_detail(row, ctx.region), True

    detail, created = await call.write(txn)
    if created:
        try:
            ctx.microvms.launch(detail.microvmId)
        except Exception:
            # The row is committed (and a clientToken replay would find it): do not leave it PENDING forever.
            await call.write(_abandon, detail.microvmId)
            raise
    return detail


def _abandon(session: Session, vm_id: str) -> None:
    reason = "launch failed: Ember could not start the MicroVM (internal error, logged)"
    transitions.transition(session, vm_id, S.TERMINATING, reason)
    transitions.transition(session, vm_id, S.TERMINATED, reason)


async def get_microvm(call: Call) -> MicrovmDetail:
    """GetMicrovm: the MicroVM's detail (its state is what the store says now)."""
    req = call.parse(GetMicrovmRequest)
    vm_id = microvm_id(call, req.microvmIdentifier)

    def txn(session: Session) -> MicrovmDetail:
        return microvm_detail(microvms.get_microvm(session, call.account_id, vm_id), call.ctx.region)

    return await call.read(txn)


async def list_microvms(call: Call) -> ListMicrovmsResponse:
    """ListMicrovms: a page of the account's MicroVMs (TERMINATED included), oldest first, optionally filtered."""
    req = call.parse(ListMicrovmsRequest)
    name = image_name(call, req.imageIdentifier) if req.imageIdentifier is not None else None

    def txn(session: Session) -> ListMicrovmsResponse:
        page = microvms.list_microvms(
            session,
            call.account_id,
            image_name=name,
            image_version=req.imageVersion,
            max_results=req.maxResults,
            next_token=page_token(req.nextToken, str),
        )
        return ListMicrovmsResponse(
            items=[views.microvm_item(row, call.ctx.region) for row in page.items], nextToken=page.next_token
        )

    return await call.read(txn)


async def _state(call: Call, vm_id: str) -> MicrovmState:
    def txn(session: Session) -> MicrovmState:
        return microvms.get_microvm(session, call.account_id, vm_id).state

    return await call.read(txn)


def _refused(vm_id: str, state: Any, operation: str, needs: str) -> ConflictException:
    return ConflictException(
        f"MicroVM {vm_id} is {state}: {operation} needs a {needs} MicroVM",
        resource_type=RESOURCE_TYPE_MICROVM,
        resource_id=vm_id,
    )


async def suspend_microvm(call: Call) -> SuspendMicrovmResponse:
    """SuspendMicrovm: RUNNING → SUSPENDING → SUSPENDED; a repeat on a SUSPENDING/SUSPENDED MicroVM is a no-op."""
    req = call.parse(SuspendMicrovmRequest)
    vm_id = microvm_id(call, req.microvmIdentifier)
    state = await _state(call, vm_id)
    if state in (S.SUSPENDING, S.SUSPENDED):
        return SuspendMicrovmResponse()
    try:
        call.ctx.microvms.request_suspend(call.account_id, vm_id)
    except IllegalTransition as exc:
        raise _refused(vm_id, exc.from_state, "SuspendMicrovm", "RUNNING") from None
    return SuspendMicrovmResponse()


async def resume_microvm(call: Call) -> ResumeMicrovmResponse:
    """ResumeMicrovm: SUSPENDED → RUNNING (in the background); a repeat on a RUNNING MicroVM is a no-op."""
    req = call.parse(ResumeMicrovmRequest)
    vm_id = microvm_id(call, req.microvmIdentifier)
    state = await _state(call, vm_id)
    if state is S.RUNNING:
        return ResumeMicrovmResponse()
    try:
        call.ctx.microvms.request_resume(call.account_id, vm_id)
    except IllegalTransition as exc:
        raise _refused(vm_id, exc.from_state, "ResumeMicrovm", "SUSPENDED") from None
    return ResumeMicrovmResponse()


async def terminate_microvm(call: Call) -> TerminateMicrovmResponse:
    """TerminateMicrovm: from any state; a TERMINATING/TERMINATED MicroVM is left as it is (idempotent)."""
    req = call.parse(TerminateMicrovmRequest)
    vm_id = microvm_id(call, req.microvmIdentifier)
    await _state(call, vm_id)  # ResourceNotFoundException for another account's MicroVM
    call.ctx.microvms.request_terminate(call.account_id, vm_id)
    return TerminateMicrovmResponse()
