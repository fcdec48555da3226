"""The route table: every operation's method, path, success status, models and handler, in one place.

``app.create_app`` registers these routes and ``openapi`` documents them, so the two cannot drift. Paths and
status codes are the service model's (``http.requestUri`` / ``http.responseCode``); the extension routes are
Ember's own (CONTRACT.md §10: logs; code-artifact uploads and their deletion; the caller's account, quotas and
usage; the account's MicroVM metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel

from ember.api import account, artifacts, auth_tokens, images, logs, managed, metrics, microvms, tags, versions
from ember.api._http import Handler
from ember.contract import images as im
from ember.contract import microvms as mv
from ember.contract import tags as tg

API = "/2025-09-09"
IMAGE = API + "/microvm-images/{imageIdentifier}"
VERSION = IMAGE + "/versions/{imageVersion}"
BUILD = VERSION + "/builds/{buildId}"
MICROVM = API + "/microvms/{microvmIdentifier}"
TAGS = "/2017-03-31/tags/{Resource}"
PAGING = {"maxResults": "maxResults", "nextToken": "nextToken"}
LOG_QUERY = {"since": "since", "follow": "follow"}


@dataclass(frozen=True)
class Route:
    """One operation: how it is reached, what it takes and answers, and which handler serves it."""

    operation: str
    method: str
    path: str
    handler: Handler
    request: type[BaseModel]
    response: type[BaseModel] | None
    status: int = 200
    query: Mapping[str, str] = field(default_factory=dict)
    """Query parameter wire name → request member name."""
    list_members: frozenset[str] = frozenset()
    """Query members that repeat (``tagKeys=a&tagKeys=b``)."""
    tag_api: bool = False
    """Lambda-classic error names (CONTRACT.md §1.4)."""
    extension: bool = False
    """Ember's own route, not in the service model."""
    stream: str | None = None
    """Media type of a streamed response (the handler writes it itself)."""
    raw_body: str | None = None
    """Media type of a raw (not JSON) request body the handler streams itself; the SigV4 signature of such a
    request covers an empty payload (see ``artifacts``)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Request headers the operation requires: name → description (documented in the OpenAPI document)."""


ROUTES: tuple[Route, ...] = (
    # Images
    Route(
        "CreateMicrovmImage",
        "POST",
        API + "/microvm-images",
        images.create_image,
        im.CreateMicrovmImageRequest,
        im.CreateMicrovmImageResponse,
        status=201,
    ),
    Route(
        "ListMicrovmImages",
        "GET",
        API + "/microvm-images",
        images.list_images,
        im.ListMicrovmImagesRequest,
        im.ListMicrovmImagesResponse,
        query={**PAGING, "nameFilter": "nameFilter"},
    ),
    Route("GetMicrovmImage", "GET", IMAGE, images.get_image, im.GetMicrovmImageRequest, im.GetMicrovmImageResponse),
    Route(
        "UpdateMicrovmImage",
        "PUT",
        IMAGE,
        images.update_image,
        im.UpdateMicrovmImageRequest,
        im.UpdateMicrovmImageResponse,
    ),
    Route(
        "DeleteMicrovmImage",
        "DELETE",
        IMAGE,
        images.delete_image,
        im.DeleteMicrovmImageRequest,
        im.DeleteMicrovmImageResponse,
    ),
    Route(
        "ListMicrovmImageVersions",
        "GET",
        IMAGE + "/versions",
        versions.list_versions,
        im.ListMicrovmImageVersionsRequest,
        im.ListMicrovmImageVersionsResponse,
        query=PAGING,
    ),
    Route(
        "GetMicrovmImageVersion",
        "GET",
        VERSION,
        versions.get_version,
        im.GetMicrovmImageVersionRequest,
        im.MicrovmImageVersion,
    ),
    Route(
        "UpdateMicrovmImageVersion",
        "PATCH",
        VERSION,
        versions.update_version,
        im.UpdateMicrovmImageVersionRequest,
        im.MicrovmImageVersion,
    ),
    Route(
        "DeleteMicrovmImageVersion",
        "DELETE",
        VERSION,
        versions.delete_version,
        im.DeleteMicrovmImageVersionRequest,
        im.DeleteMicrovmImageVersionResponse,
    ),
    Route(
        "ListMicrovmImageBuilds",
        "GET",
        VERSION + "/builds",
        versions.list_builds,
        im.ListMicrovmImageBuildsRequest,
        im.ListMicrovmImageBuildsResponse,
        query={
            **PAGING,
            "architecture": "architecture",
            "chipset": "chipset",
            "chipsetGeneration": "chipsetGeneration",
        },
    ),
    Route(
        "GetMicrovmImageBuild", "GET", BUILD, versions.get_build, im.GetMicrovmImageBuildRequest, im.MicrovmImageBuild
    ),
    Route(
        "ListManagedMicrovmImages",
        "GET",
        API + "/managed-microvm-images",
        managed.list_managed_images,
        im.ListManagedMicrovmImagesRequest,
        im.ListManagedMicrovmImagesResponse,
        query=PAGING,
    ),
    Route(
        "ListManagedMicrovmImageVersions",
        "GET",
        API + "/managed-microvm-images/{imageIdentifier}/versions",
        managed.list_managed_image_versions,
        im.ListManagedMicrovmImageVersionsRequest,
        im.ListManagedMicrovmImageVersionsResponse,
        query=PAGING,
    ),
    # MicroVMs
    Route("RunMicrovm", "POST", API + "/microvms", microvms.run_microvm, mv.RunMicrovmRequest, mv.MicrovmDetail),
    Route(
        "ListMicrovms",
        "GET",
        API + "/microvms",
        microvms.list_microvms,
        mv.ListMicrovmsRequest,
        mv.ListMicrovmsResponse,
        query={**PAGING, "imageIdentifier": "imageIdentifier", "imageVersion": "imageVersion"},
    ),
    Route("GetMicrovm", "GET", MICROVM, microvms.get_microvm, mv.GetMicrovmRequest, mv.MicrovmDetail),
    Route(
        "TerminateMicrovm",
        "DELETE",
        MICROVM,
        microvms.terminate_microvm,
        mv.TerminateMicrovmRequest,
        mv.TerminateMicrovmResponse,
    ),
    Route(
        "SuspendMicrovm",
        "POST",
        MICROVM + "/suspend",
        microvms.suspend_microvm,
        mv.SuspendMicrovmRequest,
        mv.SuspendMicrovmResponse,
    ),
    Route(
        "ResumeMicrovm",
        "POST",
        MICROVM + "/resume",
        microvms.resume_microvm,
        mv.ResumeMicrovmRequest,
        mv.ResumeMicrovmResponse,
    ),
    Route(
        "CreateMicrovmAuthToken",
        "POST",
        MICROVM + "/auth-token",
        auth_tokens.create_auth_token,
        mv.CreateMicrovmAuthTokenRequest,
        mv.CreateMicrovmAuthTokenResponse,
    ),
    Route(
        "CreateMicrovmShellAuthToken",
        "POST",
        MICROVM + "/shell-auth-token",
        auth_tokens.create_shell_auth_token,
        mv.CreateMicrovmShellAuthTokenRequest,
        mv.CreateMicrovmShellAuthTokenResponse,
    ),
    # Tags (Lambda-classic)
    Route("ListTags", "GET", TAGS, tags.list_tags, tg.ListTagsRequest, tg.ListTagsResponse, tag_api=True),
    Route("TagResource", "POST", TAGS, tags.tag_resource, tg.TagResourceRequest, None, status=204, tag_api=True),
    Route(
        "UntagResource",
        "DELETE",
        TAGS,
        tags.untag_resource,
        tg.UntagResourceRequest,
        None,
        status=204,
        query={"tagKeys": "TagKeys"},
        list_members=frozenset({"TagKeys"}),
        tag_api=True,
    ),
    # Ember extensions
    Route(
        "GetMicrovmLogs",
        "GET",
        MICROVM + "/logs",
        logs.microvm_logs,
        logs.MicrovmLogsRequest,
        logs.LogLineItem,
        query=LOG_QUERY,
        extension=True,
        stream=logs.NDJSON,
    ),
    Route(
        "GetMicrovmImageBuildLogs",
        "GET",
        BUILD + "/logs",
        logs.build_logs,
        logs.BuildLogsRequest,
        logs.LogLineItem,
        query=LOG_QUERY,
        extension=True,
        stream=logs.NDJSON,
    ),
    Route(
        "UploadCodeArtifact",
        "POST",
        artifacts.ARTIFACTS_PATH,
        artifacts.upload_artifact,
        artifacts.UploadArtifactRequest,
        artifacts.UploadArtifactResponse,
        extension=True,
        raw_body=artifacts.ZIP_MEDIA_TYPE,
        headers={
            artifacts.CONTENT_SHA256_HEADER: "The body's SHA-256 (64 hex digits). It must be signed: the SigV4 "
            "signature covers an empty payload and this header binds the body to it."
        },
    ),
    Route(
        "DeleteCodeArtifact",
        "DELETE",
        artifacts.ARTIFACTS_PATH + "/{sha256}",
        artifacts.delete_artifact,
        artifacts.DeleteArtifactRequest,
        None,
        status=204,
        extension=True,
    ),
    Route(
        "GetAccount",
        "GET",
        account.ACCOUNT_PATH,
        account.get_account,
        account.GetAccountRequest,
        account.GetAccountResponse,
        extension=True,
    ),
    Route(
        "GetMetrics",
        "GET",
        metrics.METRICS_PATH,
        metrics.get_metrics,
        metrics.MetricsRequest,
        metrics.MetricsResponse,
        query={"windowSeconds": "windowSeconds"},
        extension=True,
    ),
)
"""Every authenticated route; ``GET /healthz`` and ``GET /openapi.json`` are served without authentication."""
