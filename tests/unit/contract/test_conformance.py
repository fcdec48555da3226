"""Every contract model matches its shape in the real service model: member names, required members, enums."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import ember.contract as c
from ember.contract import enums

# (model, service-model shape). Request models include path/query members, as the shapes do.
SHAPES: list[tuple[type[BaseModel], str]] = [
    (c.CreateMicrovmImageRequest, "CreateMicrovmImageRequest"),
    (c.CreateMicrovmImageResponse, "CreateMicrovmImageResponse"),
    (c.UpdateMicrovmImageRequest, "UpdateMicrovmImageRequest"),
    (c.UpdateMicrovmImageResponse, "UpdateMicrovmImageResponse"),
    (c.GetMicrovmImageRequest, "GetMicrovmImageInput"),
    (c.GetMicrovmImageResponse, "GetMicrovmImageOutput"),
    (c.ListMicrovmImagesRequest, "ListMicrovmImagesRequest"),
    (c.ListMicrovmImagesResponse, "ListMicrovmImagesResponse"),
    (c.MicrovmImageSummary, "MicrovmImageSummary"),
    (c.DeleteMicrovmImageRequest, "DeleteMicrovmImageInput"),
    (c.DeleteMicrovmImageResponse, "DeleteMicrovmImageOutput"),
    (c.GetMicrovmImageVersionRequest, "GetMicrovmImageVersionInput"),
    (c.MicrovmImageVersion, "GetMicrovmImageVersionOutput"),
    (c.MicrovmImageVersion, "MicrovmImageVersionSummary"),
    (c.MicrovmImageVersion, "UpdateMicrovmImageVersionResponse"),
    (c.ListMicrovmImageVersionsRequest, "ListMicrovmImageVersionsInput"),
    (c.ListMicrovmImageVersionsResponse, "ListMicrovmImageVersionsOutput"),
    (c.UpdateMicrovmImageVersionRequest, "UpdateMicrovmImageVersionRequest"),
    (c.DeleteMicrovmImageVersionRequest, "DeleteMicrovmImageVersionInput"),
    (c.DeleteMicrovmImageVersionResponse, "DeleteMicrovmImageVersionOutput"),
    (c.ListMicrovmImageBuildsRequest, "ListMicrovmImageBuildsInput"),
    (c.ListMicrovmImageBuildsResponse, "ListMicrovmImageBuildsOutput"),
    (c.MicrovmImageBuildSummary, "MicrovmImageBuildSummary"),
    (c.GetMicrovmImageBuildRequest, "GetMicrovmImageBuildInput"),
    (c.MicrovmImageBuild, "GetMicrovmImageBuildOutput"),
    (c.SnapshotBuild, "SnapshotBuild"),
    (c.ListManagedMicrovmImagesRequest, "ListManagedMicrovmImagesInput"),
    (c.ListManagedMicrovmImagesResponse, "ListManagedMicrovmImagesOutput"),
    (c.ManagedMicrovmImageSummary, "ManagedMicrovmImageSummary"),
    (c.ListManagedMicrovmImageVersionsRequest, "ListManagedMicrovmImageVersionsInput"),
    (c.ListManagedMicrovmImageVersionsResponse, "ListManagedMicrovmImageVersionsOutput"),
    (c.ManagedMicrovmImageVersion, "ManagedMicrovmImageVersion"),
    (c.RunMicrovmRequest, "RunMicrovmRequest"),
    (c.MicrovmDetail, "RunMicrovmResponse"),
    (c.MicrovmDetail, "GetMicrovmResponse"),
    (c.GetMicrovmRequest, "GetMicrovmRequest"),
    (c.ListMicrovmsRequest, "ListMicrovmsRequest"),
    (c.ListMicrovmsResponse, "ListMicrovmsResponse"),
    (c.MicrovmItem, "MicrovmItem"),
    (c.SuspendMicrovmRequest, "SuspendMicrovmRequest"),
    (c.ResumeMicrovmRequest, "ResumeMicrovmRequest"),
    (c.TerminateMicrovmRequest, "TerminateMicrovmRequest"),
    (c.SuspendMicrovmResponse, "SuspendMicrovmResponse"),
    (c.ResumeMicrovmResponse, "ResumeMicrovmResponse"),
    (c.TerminateMicrovmResponse, "TerminateMicrovmResponse"),
    (c.CreateMicrovmAuthTokenRequest, "CreateMicrovmAuthTokenRequest"),
    (c.CreateMicrovmAuthTokenResponse, "CreateMicrovmAuthTokenResponse"),
    (c.CreateMicrovmShellAuthTokenRequest, "CreateMicrovmShellAuthTokenRequest"),
    (c.CreateMicrovmShellAuthTokenResponse, "CreateMicrovmShellAuthTokenResponse"),
    (c.ListTagsRequest, "ListTagsRequest"),
    (c.ListTagsResponse, "ListTagsResponse"),
    (c.TagResourceRequest, "TagResourceRequest"),
    (c.UntagResourceRequest, "UntagResourceRequest"),
    (c.IdlePolicy, "IdlePolicy"),
    (c.CloudWatchLogging, "CloudWatchLogging"),
    (c.Logging, "Logging"),
    (c.CodeArtifact, "CodeArtifact"),
    (c.CpuConfiguration, "CpuConfiguration"),
    (c.Resources, "Resources"),
    (c.Hooks, "Hooks"),
    (c.MicrovmHooks, "MicrovmHooks"),
    (c.MicrovmImageHooks, "MicrovmImageHooks"),
    (c.PortSpecification, "PortSpecification"),
    (c.PortRange, "PortRange"),
]

EXTENSIONS = {c.DISK_SIZE_ALIAS}
"""Ember's extension members, allowed on top of a shape's."""
EXTRA_MEMBERS: dict[str, set[str]] = {"ManagedMicrovmImageVersion": {"status"}}
"""Members from the newer [K] model revision (CONTRACT.md §1.8)."""
EXTRA_REQUIRED: dict[str, set[str]] = {"CodeArtifact": {"uri"}}
"""Union shapes list no required member, but a one-member union needs that member."""


def wire_names(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def required_names(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items() if f.is_required()}


@pytest.mark.parametrize(("model", "shape_name"), SHAPES, ids=[s for _, s in SHAPES])
def test_model_members_are_the_shapes_members(
    model: type[BaseModel], shape_name: str, service_json: dict[str, Any]
) -> None:
    shape = service_json["shapes"][shape_name]
    expected = set(shape["members"]) | EXTRA_MEMBERS.get(shape_name, set())
    assert wire_names(model) - EXTENSIONS == expected


@pytest.mark.parametrize(("model", "shape_name"), SHAPES, ids=[s for _, s in SHAPES])
def test_model_requires_what_the_shape_requires(
    model: type[BaseModel], shape_name: str, service_json: dict[str, Any]
) -> None:
    shape = service_json["shapes"][shape_name]
    assert required_names(model) == set(shape.get("required", [])) | EXTRA_REQUIRED.get(shape_name, set())


def test_every_operation_has_a_request_model(service_json: dict[str, Any]) -> None:
    covered = {shape for _, shape in SHAPES}
    for name, op in service_json["operations"].items():
        assert op["input"]["shape"] in covered, name


@pytest.mark.parametrize(
    ("enum_cls", "shape_name"),
    [
        (enums.MicrovmState, "MicrovmState"),
        (enums.ImageState, "MicrovmImageState"),
        (enums.ImageVersionState, "MicrovmImageVersionState"),
        (enums.ImageVersionStatus, "MicrovmImageVersionStatus"),
        (enums.BuildState, "BuildState"),
        (enums.HookState, "HookState"),
        (enums.Architecture, "Architecture"),
        (enums.Chipset, "Chipset"),
        (enums.Capability, "Capability"),
    ],
)
def test_enums_keep_every_model_value(
    enum_cls: type[enums.StrEnum], shape_name: str, service_json: dict[str, Any]
) -> None:
    assert set(service_json["shapes"][shape_name]["enum"]) <= {m.value for m in enum_cls}


def test_microvm_states_are_exactly_the_models(service_json: dict[str, Any]) -> None:
    assert [m.value for m in enums.MicrovmState] == [
        "PENDING",
        "RUNNING",
        "SUSPENDING",
        "SUSPENDED",
        "TERMINATING",
        "TERMINATED",
    ]
    assert set(service_json["shapes"]["MicrovmState"]["enum"]) == {m.value for m in enums.MicrovmState}


def test_ember_adds_x86_64_to_the_architectures() -> None:
    assert {a.value for a in enums.Architecture} == {"X86_64", "ARM_64"}


def test_timestamps_use_rest_json_default_format(service_json: dict[str, Any]) -> None:
    assert service_json["metadata"]["protocol"] == "rest-json"
    stamped = [s for s in service_json["shapes"].values() if s["type"] == "timestamp"]
    assert stamped and all("timestampFormat" not in s for s in stamped)
