"""Every API call the SDK makes, as an ``Operation``: the routes of CONTRACT §1.4 plus Ember's log routes.

Functions here only build requests; they neither send nor validate (the server validates, and its
``ValidationException`` names the field and the bound).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ember.contract import (
    CreateMicrovmAuthTokenResponse,
    CreateMicrovmImageResponse,
    CreateMicrovmShellAuthTokenResponse,
    DeleteMicrovmImageResponse,
    DeleteMicrovmImageVersionResponse,
    GetMicrovmImageResponse,
    ListManagedMicrovmImagesResponse,
    ListManagedMicrovmImageVersionsResponse,
    ListMicrovmImageBuildsResponse,
    ListMicrovmImagesResponse,
    ListMicrovmImageVersionsResponse,
    ListMicrovmsResponse,
    MicrovmDetail,
    MicrovmImageBuild,
    MicrovmImageVersion,
    UpdateMicrovmImageResponse,
)

from ._http import Operation
from ._signing import build_path

API = "/2025-09-09"
IMAGES = API + "/microvm-images"
IMAGE = IMAGES + "/{image}"
VERSIONS = IMAGE + "/versions"
VERSION = VERSIONS + "/{version}"
BUILDS = VERSION + "/builds"
BUILD = BUILDS + "/{build}"
MICROVMS = API + "/microvms"
MICROVM = MICROVMS + "/{vm}"


def _page(max_results: int | None, next_token: str | None, **extra: object) -> dict[str, object]:
    return {"maxResults": max_results, "nextToken": next_token, **extra}


# --- images -----------------------------------------------------------------------------------------------------------
def create_image(body: Mapping[str, Any]) -> Operation[CreateMicrovmImageResponse]:
    return Operation("CreateMicrovmImage", "POST", IMAGES, CreateMicrovmImageResponse, body=body)


def update_image(image: str, body: Mapping[str, Any]) -> Operation[UpdateMicrovmImageResponse]:
    return Operation("UpdateMicrovmImage", "PUT", build_path(IMAGE, image=image), UpdateMicrovmImageResponse,
                     body=body, idempotent=True)


def get_image(image: str) -> Operation[GetMicrovmImageResponse]:
    return Operation("GetMicrovmImage", "GET", build_path(IMAGE, image=image), GetMicrovmImageResponse)


def list_images(max_results: int | None = None, next_token: str | None = None,
                name_filter: str | None = None) -> Operation[ListMicrovmImagesResponse]:
    return Operation("ListMicrovmImages", "GET", IMAGES, ListMicrovmImagesResponse,
                     query=_page(max_results, next_token, nameFilter=name_filter))


def delete_image(image: str) -> Operation[DeleteMicrovmImageResponse]:
    return Operation("DeleteMicrovmImage", "DELETE", build_path(IMAGE, image=image), DeleteMicrovmImageResponse,
                     idempotent=True)


def get_version(image: str, version: str) -> Operation[MicrovmImageVersion]:
    return Operation("GetMicrovmImageVersion", "GET", build_path(VERSION, image=image, version=version),
                     MicrovmImageVersion)


def list_versions(image: str, max_results: int | None = None,
                  next_token: str | None = None) -> Operation[ListMicrovmImageVersionsResponse]:
    return Operation("ListMicrovmImageVersions", "GET", build_path(VERSIONS, image=image),
                     ListMicrovmImageVersionsResponse, query=_page(max_results, next_token))


def update_version(image: str, version: str, status: str) -> Operation[MicrovmImageVersion]:
    return Operation("UpdateMicrovmImageVersion", "PATCH", build_path(VERSION, image=image, version=version),
                     MicrovmImageVersion, body={"status": status})


def delete_version(image: str, version: str) -> Operation[DeleteMicrovmImageVersionResponse]:
    return Operation("DeleteMicrovmImageVersion", "DELETE", build_path(VERSION, image=image, version=version),
                     DeleteMicrovmImageVersionResponse, idempotent=True)


def list_builds(image: str, version: str, max_results: int | None = None,
                next_token: str | None = None) -> Operation[ListMicrovmImageBuildsResponse]:
    return Operation("ListMicrovmImageBuilds", "GET", build_path(BUILDS, image=image, version=version),
                     ListMicrovmImageBuildsResponse, query=_page(max_results, next_token))


def get_build(image: str, version: str, build: str) -> Operation[MicrovmImageBuild]:
    return Operation("GetMicrovmImageBuild", "GET", build_path(BUILD, image=image, version=version, build=build),
                     MicrovmImageBuild)


def build_logs(image: str, version: str, build: str, *, follow: bool, since: int) -> Operation[Any]:
    return Operation("GetMicrovmImageBuildLogs", "GET",
                     build_path(BUILD + "/logs", image=image, version=version, build=build),
                     query={"follow": follow or None, "since": since or None})


def list_managed_images(max_results: int | None = None,
                        next_token: str | None = None) -> Operation[ListManagedMicrovmImagesResponse]:
    return Operation("ListManagedMicrovmImages", "GET", API + "/managed-microvm-images",
                     ListManagedMicrovmImagesResponse, query=_page(max_results, next_token))


def list_managed_versions(image: str, max_results: int | None = None,
                          next_token: str | None = None) -> Operation[ListManagedMicrovmImageVersionsResponse]:
    return Operation("ListManagedMicrovmImageVersions", "GET",
                     build_path(API + "/managed-microvm-images/{image}/versions", image=image),
                     ListManagedMicrovmImageVersionsResponse, query=_page(max_results, next_token))


# --- microvms ---------------------------------------------------------------------------------------------------------
def run_microvm(body: Mapping[str, Any]) -> Operation[MicrovmDetail]:
    return Operation("RunMicrovm", "POST", MICROVMS, MicrovmDetail, body=body,
                     idempotent="clientToken" in body)


def get_microvm(vm: str) -> Operation[MicrovmDetail]:
    return Operation("GetMicrovm", "GET", build_path(MICROVM, vm=vm), MicrovmDetail)


def list_microvms(max_results: int | None = None, next_token: str | None = None, image: str | None = None,
                  version: str | None = None) -> Operation[ListMicrovmsResponse]:
    return Operation("ListMicrovms", "GET", MICROVMS, ListMicrovmsResponse,
                     query=_page(max_results, next_token, imageIdentifier=image, imageVersion=version))


def suspend_microvm(vm: str) -> Operation[Any]:
    return Operation("SuspendMicrovm", "POST", build_path(MICROVM + "/suspend", vm=vm), idempotent=True)


def resume_microvm(vm: str) -> Operation[Any]:
    return Operation("ResumeMicrovm", "POST", build_path(MICROVM + "/resume", vm=vm), idempotent=True)


def terminate_microvm(vm: str) -> Operation[Any]:
    return Operation("TerminateMicrovm", "DELETE", build_path(MICROVM, vm=vm), idempotent=True)


def auth_token(vm: str, minutes: int, ports: list[dict[str, Any]]) -> Operation[CreateMicrovmAuthTokenResponse]:
    return Operation("CreateMicrovmAuthToken", "POST", build_path(MICROVM + "/auth-token", vm=vm),
                     CreateMicrovmAuthTokenResponse, body={"expirationInMinutes": minutes, "allowedPorts": ports})


def shell_token(vm: str, minutes: int) -> Operation[CreateMicrovmShellAuthTokenResponse]:
    return Operation("CreateMicrovmShellAuthToken", "POST", build_path(MICROVM + "/shell-auth-token", vm=vm),
                     CreateMicrovmShellAuthTokenResponse, body={"expirationInMinutes": minutes})


def microvm_logs(vm: str, *, follow: bool, since: int) -> Operation[Any]:
    return Operation("GetMicrovmLogs", "GET", build_path(MICROVM + "/logs", vm=vm),
                     query={"follow": follow or None, "since": since or None})
