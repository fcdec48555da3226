"""Every bound is enforced with one message naming the field, the value and the bound."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import ember.contract as c
from ember.contract import bounds

ROLE = "arn:aws:iam::123456789012:role/build"
IMAGE: dict[str, Any] = {
    "name": "web",
    "baseImageArn": "arn:aws:lambda:us-east-1:aws:microvm-image:python-3.11",
    "buildRoleArn": ROLE,
    "codeArtifact": {"uri": "s3://bucket/web.zip"},
}
RUN: dict[str, Any] = {"imageIdentifier": "web"}
VM_ID = "mvm-" + "0" * 32


def rejects(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(c.ValidationException) as caught:
        c.parse_request(model, data)
    return caught.value.message


def accepts(model: type[BaseModel], data: dict[str, Any]) -> Any:
    return c.parse_request(model, data)


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (
            c.RunMicrovmRequest,
            {**RUN, "maximumDurationInSeconds": 40000},
            "maximumDurationInSeconds: 40000 is greater than the maximum 28800",
        ),
        (
            c.RunMicrovmRequest,
            {**RUN, "maximumDurationInSeconds": 0},
            "maximumDurationInSeconds: 0 is less than the minimum 1",
        ),
        (
            c.RunMicrovmRequest,
            {
                **RUN,
                "idlePolicy": {"maxIdleDurationSeconds": 59, "suspendedDurationSeconds": 0, "autoResumeEnabled": True},
            },
            "idlePolicy.maxIdleDurationSeconds: 59 is less than the minimum 60",
        ),
        (
            c.RunMicrovmRequest,
            {
                **RUN,
                "idlePolicy": {"maxIdleDurationSeconds": 60, "suspendedDurationSeconds": -1, "autoResumeEnabled": True},
            },
            "idlePolicy.suspendedDurationSeconds: -1 is less than the minimum 0",
        ),
        (
            c.RunMicrovmRequest,
            {**RUN, "runHookPayload": "x" * 16385},
            "runHookPayload: 16385 bytes is greater than the maximum 16384 bytes",
        ),
        (
            c.RunMicrovmRequest,
            {**RUN, "runHookPayload": "é" * 8193},
            "runHookPayload: 16386 bytes is greater than the maximum 16384 bytes",
        ),
        (
            c.RunMicrovmRequest,
            {**RUN, "ingressNetworkConnectors": ["ALL_INGRESS"] * 11},
            "ingressNetworkConnectors: 11 items is more than the maximum 10",
        ),
        (
            c.RunMicrovmRequest,
            {**RUN, "clientToken": "t" * 129},
            "clientToken: length 129 is greater than the maximum length 128",
        ),
        (c.RunMicrovmRequest, {**RUN, "clientToken": ""}, "clientToken: length 0 is less than the minimum length 1"),
        (
            c.RunMicrovmRequest,
            {"imageIdentifier": "x" * 257},
            "imageIdentifier: length 257 is greater than the maximum length 256",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "resources": [{"minimumMemoryInMiB": 64}]},
            "resources[0].minimumMemoryInMiB: 64 is less than the minimum 128",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "resources": [{"minimumMemoryInMiB": 32769}]},
            "resources[0].minimumMemoryInMiB: 32769 is greater than the maximum 32768",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "resources": [{"minimumMemoryInMiB": 512}, {"minimumMemoryInMiB": 512}]},
            "resources: 2 items is more than the maximum 1",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "x-ember-diskSizeInMiB": 40000},
            "x-ember-diskSizeInMiB: 40000 is greater than the maximum 32768",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "environmentVariables": {f"K{i}": "v" for i in range(51)}},
            "environmentVariables: 51 entries is more than the maximum 50",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "environmentVariables": {"HAS SPACE": "v"}},
            "environmentVariables: key 'HAS SPACE' contains whitespace",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "environmentVariables": {"K" * 257: "v"}},
            "greater than the maximum length 256",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "environmentVariables": {"BIG": "v" * 4097}},
            "environmentVariables: value of 'BIG' has length 4097, greater than the maximum length 4096",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "tags": {"k" * 129: "v"}},
            "greater than the maximum length 128",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "tags": {"k": "v" * 257}},
            "tags: value of 'k' has length 257, greater than the maximum length 256",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "tags": {f"k{i}": "v" for i in range(51)}},
            "tags: 51 entries is more than the maximum 50",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "hooks": {"microvmHooks": {"suspendTimeoutInSeconds": 61}}},
            "hooks.microvmHooks.suspendTimeoutInSeconds: 61 is greater than the maximum 60",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "hooks": {"microvmImageHooks": {"readyTimeoutInSeconds": 3601}}},
            "hooks.microvmImageHooks.readyTimeoutInSeconds: 3601 is greater than the maximum 3600",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "hooks": {"microvmImageHooks": {"validateTimeoutInSeconds": 0}}},
            "hooks.microvmImageHooks.validateTimeoutInSeconds: 0 is less than the minimum 1",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "hooks": {"port": 65536}},
            "hooks.port: 65536 is greater than the maximum 65535",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "egressNetworkConnectors": ["INTERNET_EGRESS", "INTERNET_EGRESS"]},
            "egressNetworkConnectors: 2 items is more than the maximum 1",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "name": "n" * 65},
            "name: length 65 is greater than the maximum length 64",
        ),
        (c.CreateMicrovmImageRequest, {**IMAGE, "name": "bad name"}, "name: 'bad name' does not match the pattern"),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "buildRoleArn": "arn:aws:iam::1:r/x"},
            "buildRoleArn: length 18 is less than the minimum length 20",
        ),
        (
            c.CreateMicrovmImageRequest,
            {**IMAGE, "buildRoleArn": "arn:aws:iam::123456789012:user/someone"},
            "buildRoleArn: 'arn:aws:iam::123456789012:user/someone' does not match the pattern",
        ),
        (
            c.CreateMicrovmAuthTokenRequest,
            {"microvmIdentifier": VM_ID, "expirationInMinutes": 61, "allowedPorts": [{"port": 8080}]},
            "expirationInMinutes: 61 is greater than the maximum 60",
        ),
        (
            c.CreateMicrovmAuthTokenRequest,
            {"microvmIdentifier": VM_ID, "expirationInMinutes": 5, "allowedPorts": []},
            "allowedPorts: 0 items is fewer than the minimum 1",
        ),
        (
            c.CreateMicrovmAuthTokenRequest,
            {"microvmIdentifier": VM_ID, "expirationInMinutes": 5, "allowedPorts": [{"port": 0}]},
            "allowedPorts[0].port: 0 is less than the minimum 1",
        ),
        (
            c.CreateMicrovmShellAuthTokenRequest,
            {"microvmIdentifier": VM_ID, "expirationInMinutes": 0},
            "expirationInMinutes: 0 is less than the minimum 1",
        ),
        (c.ListMicrovmsRequest, {"maxResults": 51}, "maxResults: 51 is greater than the maximum 50"),
        (c.ListMicrovmImagesRequest, {"maxResults": 0}, "maxResults: 0 is less than the minimum 1"),
    ],
)
def test_out_of_bounds_values_name_field_and_bound(model: type[BaseModel], data: dict[str, Any], message: str) -> None:
    assert message in rejects(model, data)


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (c.RunMicrovmRequest, {**RUN, "maximumDurationInSeconds": bounds.MAX_MAXIMUM_DURATION_S}),
        (c.RunMicrovmRequest, {**RUN, "maximumDurationInSeconds": bounds.MIN_MAXIMUM_DURATION_S}),
        (c.RunMicrovmRequest, {**RUN, "runHookPayload": "x" * bounds.MAX_RUN_HOOK_PAYLOAD_BYTES}),
        (c.RunMicrovmRequest, {**RUN, "runHookPayload": ""}),
        (c.RunMicrovmRequest, {**RUN, "clientToken": "t" * 128}),
        (c.RunMicrovmRequest, {**RUN, "ingressNetworkConnectors": ["ALL_INGRESS"] * 10}),
        (c.CreateMicrovmImageRequest, {**IMAGE, "resources": [{"minimumMemoryInMiB": 128}]}),
        (c.CreateMicrovmImageRequest, {**IMAGE, "resources": [{"minimumMemoryInMiB": 32768}]}),
        (c.CreateMicrovmImageRequest, {**IMAGE, "environmentVariables": {f"K{i}": "v" * 4096 for i in range(50)}}),
        (c.CreateMicrovmImageRequest, {**IMAGE, "x-ember-diskSizeInMiB": 32768}),
        (c.CreateMicrovmImageRequest, {**IMAGE, "name": "n" * 64}),
        (c.CreateMicrovmImageRequest, {**IMAGE, "tags": {"k" * 128: "v" * 256, "empty value": ""}}),
        (
            c.CreateMicrovmAuthTokenRequest,
            {"microvmIdentifier": VM_ID, "expirationInMinutes": 60, "allowedPorts": [{"port": 65535}]},
        ),
        (c.ListMicrovmsRequest, {"maxResults": 50}),
    ],
)
def test_values_at_the_bounds_are_accepted(model: type[BaseModel], data: dict[str, Any]) -> None:
    accepts(model, data)


def test_max_duration_default_is_the_maximum() -> None:
    assert bounds.DEFAULT_MAXIMUM_DURATION_S == bounds.MAX_MAXIMUM_DURATION_S == 28800


@pytest.mark.parametrize(
    ("memory_mib", "vcpus"),
    [(128, 1), (512, 1), (2048, 1), (3072, 1), (4096, 2), (8192, 4), (16384, 8), (32768, 16), (10**6, 16)],
)
def test_vcpus_are_half_the_memory_in_gib_between_1_and_16(memory_mib: int, vcpus: int) -> None:
    assert bounds.vcpus_for_memory_mib(memory_mib) == vcpus


def test_sizing_defaults() -> None:
    assert bounds.DEFAULT_MEMORY_MIB == 512
    assert bounds.DEFAULT_DISK_SIZE_MIB == 2048
    assert bounds.MAX_DISK_SIZE_MIB == 32768
    config = c.parse_request(c.CreateMicrovmImageRequest, IMAGE)
    assert config.memory_mib() == 512
    assert config.disk_size_mib() == 2048


def test_bound_constants_carry_a_unit_suffix() -> None:
    units = ("_MIB", "_BYTES", "_CHARS", "_S", "_MIN", "_ITEMS", "_VCPUS", "_PORT", "_RESULTS", "_VCPU")
    names = [n for n in vars(bounds) if n.isupper()]
    assert names
    assert [n for n in names if not n.endswith(units)] == []
