"""``client.images``: build images from a folder, list and inspect them, their versions and builds, read build logs.

``Images`` is the sync resource and ``AsyncImages`` its async twin. ``create``/``update``/``build`` take a
folder (zipped for you), a ``.zip`` or a URI; a folder or zip is uploaded with ``upload`` first
(``POST /ember/artifacts``, explained in ``ember.sdk._artifacts``), so the server may be on another machine.
Every update makes a new version; ``wait_for_version`` follows its build.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ember.contract import (
    CreateMicrovmImageResponse,
    DeleteMicrovmImageResponse,
    GetMicrovmImageResponse,
    Hooks,
    ImageVersionState,
    ManagedMicrovmImageSummary,
    MicrovmImageBuild,
    MicrovmImageBuildSummary,
    MicrovmImageSummary,
    MicrovmImageVersion,
    UpdateMicrovmImageResponse,
)

from . import _operations as ops
from ._artifacts import UploadedArtifact, UploadProgress, make_local_zip, passthrough_uri
from ._bodies import image_body
from .errors import ResourceNotFoundException, WaitFailed, WaitTimeout
from .logs import LogLine, aiter_log_lines, iter_log_lines

if TYPE_CHECKING:
    from .client import AsyncClient, Client

DEFAULT_BUILD_TIMEOUT_S = 1800.0
"""How long ``wait_for_version`` waits by default (a build under TCG takes minutes)."""
POLL_INTERVAL_S = 2.0
DONE = {ImageVersionState.SUCCESSFUL.value}
FAILED = {ImageVersionState.FAILED.value, ImageVersionState.DELETED.value, ImageVersionState.DELETE_FAILED.value}

Progress = Callable[[MicrovmImageVersion], None]
ImageResponse = CreateMicrovmImageResponse | UpdateMicrovmImageResponse


def _check_version(version: MicrovmImageVersion) -> bool:
    if version.state in DONE:
        return True
    if version.state in FAILED:
        reason = f": {version.stateReason}" if version.stateReason else ""
        raise WaitFailed(f"image version {version.imageVersion} of {version.imageArn} is {version.state}{reason}",
                         last=version)
    return False


class _ImagesBase:
    _client: Client | AsyncClient

    @staticmethod
    def _split(kwargs: dict[str, Any]) -> tuple[Any, UploadProgress | None]:
        """Take the artifact's own keywords (``build_args``, ``on_upload``) out of the configuration keywords."""
        return kwargs.pop("build_args", None), kwargs.pop("on_upload", None)

    def _body(self, uri: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        return image_body(source_uri=uri, region=self._client.transport.region, **kwargs)


class Images(_ImagesBase):
    """Image operations of a sync ``Client``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._t = client.transport

    def upload(self, source: str | Path, *, build_args: Mapping[str, str] | None = None,
               on_progress: UploadProgress | None = None) -> UploadedArtifact:
        """Upload a folder (zipped) or a ``.zip`` as a code artifact; its ``uri`` is what a build takes.

        ``build_args`` become the defaults of the Dockerfile's matching ``ARG`` lines; ``on_progress`` is called
        with (bytes sent, total) while the zip goes up.
        """
        with tempfile.TemporaryDirectory(prefix="ember-artifact-") as tmp:
            return self._t.upload(make_local_zip(source, Path(tmp), build_args), on_progress)

    def _config(self, source: str | Path, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The shared image configuration body; a local ``source`` is uploaded first."""
        build_args, on_upload = self._split(kwargs)
        uri = passthrough_uri(source, build_args)
        if uri is None:
            uri = self.upload(source, build_args=build_args, on_progress=on_upload).uri
        return self._body(uri, kwargs)

    def create(self, name: str, source: str | Path, *, memory_mib: int | None = None,
               env: Mapping[str, str] | None = None, hooks: Iterable[str] | Hooks | Mapping[str, Any] | None = None,
               hooks_port: int | None = None, build_args: Mapping[str, str] | None = None,
               tags: Mapping[str, str] | None = None, client_token: str | None = None, wait: bool = False,
               timeout: float = DEFAULT_BUILD_TIMEOUT_S, on_progress: Progress | None = None,
               **config: Any) -> CreateMicrovmImageResponse:
        """CreateMicrovmImage from a folder with a Dockerfile, a ``.zip`` or a URI; ``wait`` follows the build.

        ``hooks`` is a list of hook names (``["ready", "validate", "run", ...]``) served on ``hooks_port``
        (default 8080), or a ``Hooks`` model. Other keywords: ``base_image``, ``build_role_arn``,
        ``description``, ``egress``, ``disk_size_mib``, ``architecture``, ``all_capabilities``,
        ``logging_disabled``, ``on_upload`` (called with (bytes sent, total) while a local ``source`` uploads).
        """
        body = self._config(source, dict(config, memory_mib=memory_mib, env=env, hooks=hooks,
                                         hooks_port=hooks_port, build_args=build_args))
        body.update({k: v for k, v in (("name", name), ("tags", tags), ("clientToken", client_token)) if v})
        response = self._t.call(ops.create_image(body))
        assert response is not None
        if wait:
            self.wait_for_version(name, response.imageVersion, timeout=timeout, on_progress=on_progress)
        return response

    def update(self, image: str, source: str | Path, *, memory_mib: int | None = None,
               env: Mapping[str, str] | None = None, hooks: Iterable[str] | Hooks | Mapping[str, Any] | None = None,
               hooks_port: int | None = None, build_args: Mapping[str, str] | None = None,
               client_token: str | None = None, wait: bool = False, timeout: float = DEFAULT_BUILD_TIMEOUT_S,
               on_progress: Progress | None = None, **config: Any) -> UpdateMicrovmImageResponse:
        """UpdateMicrovmImage: a full replacement of the configuration, so a new version and build."""
        body = self._config(source, dict(config, memory_mib=memory_mib, env=env, hooks=hooks, hooks_port=hooks_port,
                                         build_args=build_args))
        if client_token:
            body["clientToken"] = client_token
        response = self._t.call(ops.update_image(image, body))
        assert response is not None
        if wait:
            self.wait_for_version(image, response.imageVersion, timeout=timeout, on_progress=on_progress)
        return response

    def build(self, name: str, source: str | Path, **kwargs: Any) -> ImageResponse:
        """``update`` the image if it exists, else ``create`` it (same keywords; ``tags`` only on create)."""
        try:
            self.get(name)
        except ResourceNotFoundException:
            return self.create(name, source, **kwargs)
        kwargs.pop("tags", None)
        return self.update(name, source, **kwargs)

    def get(self, image: str) -> GetMicrovmImageResponse:
        """GetMicrovmImage (name or ARN)."""
        response = self._t.call(ops.get_image(image))
        assert response is not None
        return response

    def list(self, *, name_filter: str | None = None) -> list[MicrovmImageSummary]:
        """ListMicrovmImages, every page (``name_filter`` is a substring match)."""
        items: list[MicrovmImageSummary] = []
        token: str | None = None
        while True:
            page = self._t.call(ops.list_images(next_token=token, name_filter=name_filter))
            assert page is not None
            items.extend(page.items)
            token = page.nextToken
            if not token:
                return items

    def delete(self, image: str) -> DeleteMicrovmImageResponse:
        """DeleteMicrovmImage (succeeds again on a deleted image)."""
        response = self._t.call(ops.delete_image(image))
        assert response is not None
        return response

    def version(self, image: str, version: str) -> MicrovmImageVersion:
        """GetMicrovmImageVersion: the version's full configuration and build state."""
        response = self._t.call(ops.get_version(image, version))
        assert response is not None
        return response

    def versions(self, image: str) -> list[MicrovmImageVersion]:
        """ListMicrovmImageVersions, every page, oldest first."""
        items: list[MicrovmImageVersion] = []
        token: str | None = None
        while True:
            page = self._t.call(ops.list_versions(image, next_token=token))
            assert page is not None
            items.extend(page.items)
            token = page.nextToken
            if not token:
                return items

    def set_version_status(self, image: str, version: str, status: str) -> MicrovmImageVersion:
        """UpdateMicrovmImageVersion: ``ACTIVE`` allows launches from the version, ``INACTIVE`` blocks them."""
        response = self._t.call(ops.update_version(image, version, status))
        assert response is not None
        return response

    def delete_version(self, image: str, version: str) -> None:
        """DeleteMicrovmImageVersion."""
        self._t.call(ops.delete_version(image, version))

    def builds(self, image: str, version: str) -> list[MicrovmImageBuildSummary]:
        """ListMicrovmImageBuilds of one version, every page."""
        items: list[MicrovmImageBuildSummary] = []
        token: str | None = None
        while True:
            page = self._t.call(ops.list_builds(image, version, next_token=token))
            assert page is not None
            items.extend(page.items)
            token = page.nextToken
            if not token:
                return items

    def get_build(self, image: str, version: str, build_id: str) -> MicrovmImageBuild:
        """GetMicrovmImageBuild, with the snapshot sizes."""
        response = self._t.call(ops.get_build(image, version, build_id))
        assert response is not None
        return response

    def build_logs(self, image: str, version: str, build_id: str | None = None, *, follow: bool = True,
                   since: int = 0) -> Iterator[LogLine]:
        """The build's log after line ``since`` (the version's first build if no ``build_id``); ``follow``
        keeps reading until the build ends."""
        if build_id is None:
            builds = self.builds(image, version)
            if not builds:
                return iter(())
            build_id = builds[0].buildId
        op = ops.build_logs(image, version, build_id, follow=follow, since=since)
        return iter_log_lines(self._t.lines(op, follow=follow))

    def managed(self) -> list[ManagedMicrovmImageSummary]:
        """ListManagedMicrovmImages: the base images Dockerfiles can start FROM."""
        page = self._t.call(ops.list_managed_images())
        assert page is not None
        return list(page.items)

    def wait_for_version(self, image: str, version: str, *, timeout: float = DEFAULT_BUILD_TIMEOUT_S,
                         poll: float = POLL_INTERVAL_S, on_progress: Progress | None = None) -> MicrovmImageVersion:
        """Poll until the version's build is SUCCESSFUL; ``WaitFailed`` if it FAILED, ``WaitTimeout`` after
        ``timeout`` s. ``on_progress`` gets every version polled."""
        deadline = time.monotonic() + timeout
        while True:
            last = self.version(image, version)
            if on_progress is not None:
                on_progress(last)
            if _check_version(last):
                return last
            if time.monotonic() + poll > deadline:
                raise WaitTimeout(f"image version {version} of {image} is still {last.state} after {timeout:g} s",
                                  last=last)
            time.sleep(poll)


class AsyncImages(_ImagesBase):
    """Image operations of an ``AsyncClient`` (see ``Images`` for each method)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._t = client.transport

    async def upload(self, source: str | Path, *, build_args: Mapping[str, str] | None = None,
                     on_progress: UploadProgress | None = None) -> UploadedArtifact:
        """Upload a folder (zipped) or a ``.zip`` as a code artifact (see ``Images.upload``)."""
        with tempfile.TemporaryDirectory(prefix="ember-artifact-") as tmp:
            path = await asyncio.to_thread(make_local_zip, source, Path(tmp), build_args)
            return await self._t.upload(path, on_progress)

    async def _config(self, source: str | Path, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The shared image configuration body; a local ``source`` is uploaded first."""
        build_args, on_upload = self._split(kwargs)
        uri = passthrough_uri(source, build_args)
        if uri is None:
            uri = (await self.upload(source, build_args=build_args, on_progress=on_upload)).uri
        return self._body(uri, kwargs)

    async def create(self, name: str, source: str | Path, *, tags: Mapping[str, str] | None = None,
                     client_token: str | None = None, wait: bool = False, timeout: float = DEFAULT_BUILD_TIMEOUT_S,
                     on_progress: Progress | None = None, **config: Any) -> CreateMicrovmImageResponse:
        """CreateMicrovmImage (keywords as ``Images.create``)."""
        body = await self._config(source, config)
        body.update({k: v for k, v in (("name", name), ("tags", tags), ("clientToken", client_token)) if v})
        response = await self._t.call(ops.create_image(body))
        assert response is not None
        if wait:
            await self.wait_for_version(name, response.imageVersion, timeout=timeout, on_progress=on_progress)
        return response

    async def update(self, image: str, source: str | Path, *, client_token: str | None = None, wait: bool = False,
                     timeout: float = DEFAULT_BUILD_TIMEOUT_S, on_progress: Progress | None = None,
                     **config: Any) -> UpdateMicrovmImageResponse:
        """UpdateMicrovmImage (a new version and build)."""
        body = await self._config(source, config)
        if client_token:
            body["clientToken"] = client_token
        response = await self._t.call(ops.update_image(image, body))
        assert response is not None
        if wait:
            await self.wait_for_version(image, response.imageVersion, timeout=timeout, on_progress=on_progress)
        return response

    async def build(self, name: str, source: str | Path, **kwargs: Any) -> ImageResponse:
        """``update`` the image if it exists, else ``create`` it."""
        try:
            await self.get(name)
        except ResourceNotFoundException:
            return await self.create(name, source, **kwargs)
        kwargs.pop("tags", None)
        return await self.update(name, source, **kwargs)

    async def get(self, image: str) -> GetMicrovmImageResponse:
        """GetMicrovmImage."""
        response = await self._t.call(ops.get_image(image))
        assert response is not None
        return response

    async def list(self, *, name_filter: str | None = None) -> list[MicrovmImageSummary]:
        """ListMicrovmImages, every page."""
        items: list[MicrovmImageSummary] = []
        token: str | None = None
        while True:
            page = await self._t.call(ops.list_images(next_token=token, name_filter=name_filter))
            assert page is not None
            items.extend(page.items)
            token = page.nextToken
            if not token:
                return items

    async def delete(self, image: str) -> DeleteMicrovmImageResponse:
        """DeleteMicrovmImage."""
        response = await self._t.call(ops.delete_image(image))
        assert response is not None
        return response

    async def version(self, image: str, version: str) -> MicrovmImageVersion:
        """GetMicrovmImageVersion."""
        response = await self._t.call(ops.get_version(image, version))
        assert response is not None
        return response

    async def versions(self, image: str) -> list[MicrovmImageVersion]:
        """ListMicrovmImageVersions, every page."""
        items: list[MicrovmImageVersion] = []
        token: str | None = None
        while True:
            page = await self._t.call(ops.list_versions(image, next_token=token))
            assert page is not None
            items.extend(page.items)
            token = page.nextToken
            if not token:
                return items

    async def builds(self, image: str, version: str) -> list[MicrovmImageBuildSummary]:
        """ListMicrovmImageBuilds of one version, every page."""
        items: list[MicrovmImageBuildSummary] = []
        token: str | None = None
        while True:
            page = await self._t.call(ops.list_builds(image, version, next_token=token))
            assert page is not None
            items.extend(page.items)
            token = page.nextToken
            if not token:
                return items

    async def build_logs(self, image: str, version: str, build_id: str | None = None, *, follow: bool = True,
                         since: int = 0) -> AsyncIterator[LogLine]:
        """The build's log lines (the version's first build if no ``build_id``)."""
        if build_id is None:
            builds = await self.builds(image, version)
            if not builds:
                return
            build_id = builds[0].buildId
        op = ops.build_logs(image, version, build_id, follow=follow, since=since)
        async for line in aiter_log_lines(self._t.lines(op, follow=follow)):
            yield line

    async def wait_for_version(self, image: str, version: str, *, timeout: float = DEFAULT_BUILD_TIMEOUT_S,
                               poll: float = POLL_INTERVAL_S,
                               on_progress: Progress | None = None) -> MicrovmImageVersion:
        """Poll until the version's build is SUCCESSFUL (see ``Images.wait_for_version``)."""
        deadline = time.monotonic() + timeout
        while True:
            last = await self.version(image, version)
            if on_progress is not None:
                on_progress(last)
            if _check_version(last):
                return last
            if time.monotonic() + poll > deadline:
                raise WaitTimeout(f"image version {version} of {image} is still {last.state} after {timeout:g} s",
                                  last=last)
            await asyncio.sleep(poll)


__all__ = ["AsyncImages", "Images"]
