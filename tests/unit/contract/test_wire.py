"""What a real client (botocore over microvm-ctl's model) sends validates, and what Ember sends parses.

Covers the three places the wire can silently drift: request bodies (clientToken auto-fill, nested shapes),
timestamps (epoch seconds, rest-json's default) and error bodies/headers (code, message, modelled fields).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

import ember.contract as c
from tests.unit.contract.conftest import FakeWire

ROLE = "arn:aws:iam::123456789012:role/build"
STARTED = datetime(2025, 9, 9, 12, 30, 45, 123000, tzinfo=UTC)


def detail(**overrides: Any) -> c.MicrovmDetail:
    fields: dict[str, Any] = {
        "microvmId": "mvm-" + "a" * 32,
        "state": c.MicrovmState.RUNNING,
        "endpoint": "127.0.0.1:9443/microvms/mvm-" + "a" * 32,
        "imageArn": c.image_arn("us-east-1", "123456789012", "web"),
        "imageVersion": "1",
        "maximumDurationInSeconds": 28800,
        "startedAt": STARTED,
        "idlePolicy": {"maxIdleDurationSeconds": 60, "suspendedDurationSeconds": 0, "autoResumeEnabled": True},
    }
    return c.MicrovmDetail.model_validate({**fields, **overrides})


def test_run_microvm_body_from_botocore_validates(client: Any, wire: FakeWire) -> None:
    wire.reply(200, detail().to_wire())
    client.run_microvm(
        imageIdentifier="web",
        idlePolicy={"maxIdleDurationSeconds": 300, "suspendedDurationSeconds": 3600, "autoResumeEnabled": True},
        runHookPayload=json.dumps({"tenant": "t1"}),
        ingressNetworkConnectors=[c.connector_arn("us-east-1", "SHELL_INGRESS")],
    )
    sent = wire.last_json()
    assert "clientToken" in sent  # botocore fills idempotency tokens
    request = c.parse_request(c.RunMicrovmRequest, sent)
    assert request.idlePolicy is not None and request.idlePolicy.maxIdleDurationSeconds == 300
    assert wire.requests[-1].url.endswith("/2025-09-09/microvms")


def test_create_image_body_from_botocore_validates(client: Any, wire: FakeWire) -> None:
    wire.reply(201, {})
    client.create_microvm_image(
        name="web",
        baseImageArn=c.managed_image_arn("us-east-1", "python-3.11"),
        buildRoleArn=ROLE,
        codeArtifact={"uri": "s3://bucket/web.zip"},
        resources=[{"minimumMemoryInMiB": 2048}],
        cpuConfigurations=[{"architecture": "ARM_64"}],
        hooks={"port": 9000, "microvmHooks": {"run": "ENABLED", "runTimeoutInSeconds": 5}},
        environmentVariables={"MODE": "prod"},
        tags={"team": "core"},
    )
    request = c.parse_request(c.CreateMicrovmImageRequest, wire.last_json())
    assert request.memory_mib() == 2048
    assert request.hooks is not None and request.hooks.microvmHooks is not None


def test_microvm_detail_timestamps_parse_as_aware_datetimes(client: Any, wire: FakeWire) -> None:
    terminated = STARTED + timedelta(hours=1)
    wire.reply(200, detail(state="TERMINATED", terminatedAt=terminated, stateReason="terminated by the user").to_wire())
    got = client.get_microvm(microvmIdentifier="mvm-" + "a" * 32)
    assert got["startedAt"] == STARTED
    assert got["terminatedAt"] == terminated
    assert got["startedAt"].tzinfo is not None
    assert got["state"] == "TERMINATED"
    assert got["idlePolicy"]["autoResumeEnabled"] is True


def test_timestamps_are_epoch_seconds_numbers_on_the_wire() -> None:
    body = detail().to_wire()
    assert isinstance(body["startedAt"], float)
    assert body["startedAt"] == pytest.approx(STARTED.timestamp())
    assert json.loads(json.dumps(body))["startedAt"] == body["startedAt"]


def test_naive_datetimes_are_taken_as_utc() -> None:
    naive = detail(startedAt=STARTED.replace(tzinfo=None))
    assert naive.startedAt == STARTED


def test_model_dump_by_alias_exclude_none_is_the_wire_body() -> None:
    model = detail()
    assert model.model_dump(by_alias=True, exclude_none=True, mode="json") == model.to_wire()
    assert "terminatedAt" not in model.to_wire()


def test_list_response_with_items_and_token_parses(client: Any, wire: FakeWire) -> None:
    item = c.MicrovmItem(
        microvmId="mvm-" + "b" * 32, state="PENDING", imageArn=detail().imageArn, imageVersion="2", startedAt=STARTED
    )
    wire.reply(200, c.ListMicrovmsResponse(items=[item], nextToken="abc").to_wire())
    got = client.list_microvms(maxResults=1, imageIdentifier="web")
    assert got["items"][0]["microvmId"] == "mvm-" + "b" * 32
    assert got["nextToken"] == "abc"
    assert "maxResults=1" in wire.requests[-1].url


def raise_through(
    client: Any, wire: FakeWire, error: c.ApiError, call: str = "get_microvm", **kwargs: Any
) -> ClientError:
    wire.reply(error.http_status, error.to_body(), error.to_headers())
    kwargs = kwargs or {"microvmIdentifier": "mvm-" + "a" * 32}
    with pytest.raises(ClientError) as caught:
        getattr(client, call)(**kwargs)
    return caught.value


def test_conflict_parses_with_code_message_and_resource(client: Any, wire: FakeWire) -> None:
    err = raise_through(
        client,
        wire,
        c.ConflictException("MicroVM is RUNNING; resume needs SUSPENDED", resource_id="mvm-x", resource_type="Microvm"),
        call="resume_microvm",
    )
    assert isinstance(err, client.exceptions.ConflictException)
    assert err.response["Error"]["Code"] == "ConflictException"
    assert err.response["Error"]["Message"] == "MicroVM is RUNNING; resume needs SUSPENDED"
    assert err.response["resourceId"] == "mvm-x"
    assert err.response["resourceType"] == "Microvm"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_validation_error_parses(client: Any, wire: FakeWire) -> None:
    message = "maximumDurationInSeconds: 40000 is greater than the maximum 28800"
    err = raise_through(client, wire, c.ValidationException(message), call="run_microvm", imageIdentifier="web")
    assert isinstance(err, client.exceptions.ValidationException)
    assert err.response["Error"]["Message"] == message


def test_throttling_carries_retry_after_and_quota(client: Any, wire: FakeWire) -> None:
    err = raise_through(
        client, wire, c.ThrottlingException("slow down", quota_code="L-535CA9B6", retry_after_seconds=7)
    )
    assert isinstance(err, client.exceptions.ThrottlingException)
    assert err.response["retryAfterSeconds"] == 7
    assert err.response["quotaCode"] == "L-535CA9B6"
    assert err.response["serviceCode"] == "lambda"


def test_service_quota_exceeded_is_402(client: Any, wire: FakeWire) -> None:
    error = c.ServiceQuotaExceededException("memory quota", quota_code="L-CD1C0CC4", resource_type="Microvm")
    assert error.http_status == 402
    err = raise_through(client, wire, error, call="run_microvm", imageIdentifier="web")
    assert isinstance(err, client.exceptions.ServiceQuotaExceededException)
    assert err.response["quotaCode"] == "L-CD1C0CC4"


def test_not_found_parses(client: Any, wire: FakeWire) -> None:
    error = c.ResourceNotFoundException("MicroVM mvm-x was not found", resource_type="Microvm", resource_id="mvm-x")
    err = raise_through(client, wire, error)
    assert isinstance(err, client.exceptions.ResourceNotFoundException)
    assert err.response["resourceId"] == "mvm-x"


def test_insufficient_capacity_code_survives_without_a_modelled_shape(client: Any, wire: FakeWire) -> None:
    err = raise_through(client, wire, c.InsufficientCapacityException("no host has 2048 MiB free"))
    assert err.response["Error"]["Code"] == "InsufficientCapacityException"
    assert err.response["Error"]["Message"] == "no host has 2048 MiB free"


def test_tag_api_error_carries_type(client: Any, wire: FakeWire) -> None:
    arn = c.image_arn("us-east-1", "123456789012", "web")
    err = raise_through(
        client, wire, c.InvalidParameterValueException("Tags: 51 entries"), call="list_tags", Resource=arn
    )
    assert isinstance(err, client.exceptions.InvalidParameterValueException)
    assert err.response["Type"] == "User"
    assert err.response["Error"]["Message"] == "Tags: 51 entries"


def test_auth_token_response_parses(client: Any, wire: FakeWire) -> None:
    wire.reply(200, c.CreateMicrovmAuthTokenResponse(authToken={"X-aws-proxy-auth": "tok"}).to_wire())
    got = client.create_microvm_auth_token(
        microvmIdentifier="mvm-" + "a" * 32, expirationInMinutes=15, allowedPorts=[{"port": 8080}, {"allPorts": {}}]
    )
    assert got["authToken"] == {"X-aws-proxy-auth": "tok"}
    body = wire.last_json()
    request = c.parse_request(c.CreateMicrovmAuthTokenRequest, {**body, "microvmIdentifier": "mvm-" + "a" * 32})
    assert request.allowedPorts[1].covers(22)
