"""Code-artifact uploads (``POST /ember/artifacts``) and the rule for the ``file://`` artifacts a request may name.

The route (an Ember extension) takes a zip as the raw request body (``Content-Type: application/zip``, at most
``MAX_ARTIFACT_BYTES``) and keeps it as ``<artifacts_dir>/<accountId>/<sha256>.zip`` (folders 0700, file 0600,
written to a temp file and renamed, so a half upload is never visible; the same zip uploaded twice is kept once).
It answers ``{"uri": "file://…", "sha256", "sizeBytes"}``: the ``codeArtifact.uri`` to build from.

Authentication is SigV4 like every route, with one difference: the signature covers an *empty* payload and the
body is bound to it by the signed header ``X-Ember-Content-SHA256`` (the body's hex SHA-256), checked while the
body streams to disk. So a caller is authenticated before any of a body of up to 512 MiB is read, and a body
swapped under a captured signature is refused.

Uploads count against the account's quotas (``upload_quotas``): zips kept, their bytes and uploads at once,
checked before the body is read (by its Content-Length) and while it streams (cut off past the bound, the temp
file removed). A cancelled upload (the client went away, the server is stopping) leaves no temp file and no open
file behind. ``DELETE /ember/artifacts/{sha256}`` removes a kept zip of the caller's account (204; 404 when the
account keeps none with that digest) to free its quota. A build copies its zip when it starts (``fetch_artifact``),
so deleting it afterwards does not disturb the build; a build still PENDING then fails saying the file is gone.

A CreateMicrovmImage or UpdateMicrovmImage may name a ``file://`` artifact only under the caller's own folder
(``check_code_artifact``): another account's upload, any other host path, and ``..`` or a symlink leading out
are a ValidationException. ``http(s)://`` and ``s3://`` URIs are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, BinaryIO

from aiohttp import StreamReader
from pydantic import StringConstraints

from ember.api import auth
from ember.api._http import Call
from ember.api.context import ApiContext
from ember.api.errors import PayloadTooLargeException
from ember.api.upload_quotas import TEMP_SUFFIX, UPLOAD_QUOTAS
from ember.contract._base import ApiModel, EmptyModel
from ember.contract.errors import AccessDeniedException, ResourceNotFoundException, ValidationException
from ember.images import artifact
from ember.images.artifact import MAX_ARTIFACT_BYTES, ArtifactOutsideRoot

ARTIFACTS_PATH = "/ember/artifacts"
ZIP_MEDIA_TYPE = "application/zip"
CONTENT_SHA256_HEADER = "X-Ember-Content-SHA256"
"""The body's SHA-256 (64 hex digits), a signed header: it binds the body to a signature over an empty payload."""
WRITE_BATCH_BYTES = 1024 * 1024
"""Received bytes are written to disk in batches of this size, off the event loop."""
URI_FIELD = "codeArtifact.uri"
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class UploadArtifactRequest(EmptyModel):
    """POST /ember/artifacts: the body is the zip itself, not JSON (Ember extension)."""


class UploadArtifactResponse(ApiModel):
    """Where the uploaded zip is kept: pass ``uri`` as ``codeArtifact.uri``."""

    uri: str
    sha256: str
    sizeBytes: int


class DeleteArtifactRequest(ApiModel):
    """DELETE /ember/artifacts/{sha256}: the kept zip to remove, by the SHA-256 its upload answered."""

    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def account_folder(ctx: ApiContext, account_id: str) -> Path | None:
    """The folder of ``account_id``'s uploads (None when the server keeps none)."""
    return None if ctx.artifacts_dir is None else ctx.artifacts_dir / account_id


def check_code_artifact(ctx: ApiContext, account_id: str, uri: str) -> Path | None:
    """The folder a ``file://`` ``uri`` must stay in during the build (the caller's upload folder), after checking
    that it lies there; None for ``http(s)://`` and ``s3://``. ValidationException naming ``codeArtifact.uri``
    otherwise, with the same message whether or not the path exists elsewhere (nothing to probe the host with)."""
    path = artifact.local_path(uri)
    if path is None:
        return None
    root = account_folder(ctx, account_id)
    refusal = ValidationException.for_field(
        URI_FIELD,
        f"{uri[:512]!r} is not an artifact this account uploaded: file:// artifacts must be uploaded with "
        f"POST {ARTIFACTS_PATH} (or `ember image build`), which answers the URI to use",
    )
    if root is None:
        raise refusal
    try:
        resolved = artifact.confine_local_path(path, root)
    except ArtifactOutsideRoot:
        raise refusal from None
    if not resolved.is_file():
        raise ValidationException.for_field(
            URI_FIELD, f"{uri[:512]!r}: this account has no upload there; upload the zip with POST {ARTIFACTS_PATH}"
        )
    return root


async def upload_artifact(call: Call) -> UploadArtifactResponse:
    """Upload a code artifact (a zip, the raw body) for CreateMicrovmImage/UpdateMicrovmImage; answers its URI."""
    request = call.request
    folder = account_folder(call.ctx, call.account_id)
    if folder is None:
        raise ValidationException("this Ember server keeps no uploaded artifacts: pass an s3:// or https:// URI")
    media_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media_type != ZIP_MEDIA_TYPE:
        raise ValidationException.for_field(
            "Content-Type", f"must be {ZIP_MEDIA_TYPE} (the body is the zip itself), got {media_type[:64]!r}"
        )
    declared = (request.headers.get(CONTENT_SHA256_HEADER) or "").strip().lower()
    if not _SHA256_RE.fullmatch(declared):
        raise ValidationException.for_field(
            CONTENT_SHA256_HEADER, "must be the body's SHA-256 as 64 hex digits, and be signed"
        )
    authorization = request.headers.get("Authorization")
    if authorization is not None and CONTENT_SHA256_HEADER.lower() not in auth.parse_authorization(
        authorization
    ).signed_headers:
        raise AccessDeniedException(
            f"{CONTENT_SHA256_HEADER} must be a signed header (listed in SignedHeaders): it binds the body to the "
            "signature"
        )
    cap = MAX_ARTIFACT_BYTES
    if request.content_length is not None and request.content_length > cap:
        raise _too_large(cap)
    quotas = request.app[UPLOAD_QUOTAS]
    await asyncio.to_thread(_make_private_dirs, folder)
    upload = await quotas.begin(folder, call.account_id, declared, request.content_length)
    try:
        fd, tmp = await _make_temp(folder, upload.temp_prefix)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = await _receive(
                    request.content, out, cap, lambda n: quotas.received(call.account_id, upload, n)
                )
            if digest != declared:
                raise AccessDeniedException(
                    f"the body does not match {CONTENT_SHA256_HEADER} (its SHA-256 is {digest})"
                )
            if not await asyncio.to_thread(zipfile.is_zipfile, tmp):
                raise ValidationException.for_field("request body", "is not a zip file")
            dest = folder / f"{digest}.zip"
            await quotas.keep(call.account_id, upload, tmp, dest, size)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    finally:
        quotas.end(call.account_id, upload)
    return UploadArtifactResponse(uri=dest.as_uri(), sha256=digest, sizeBytes=size)


async def delete_artifact(call: Call) -> None:
    """Delete an uploaded code artifact of the caller's account (by its SHA-256), freeing its quota."""
    req = call.parse(DeleteArtifactRequest)
    folder = account_folder(call.ctx, call.account_id)
    if folder is None or not await call.request.app[UPLOAD_QUOTAS].delete(folder, call.account_id, req.sha256):
        raise ResourceNotFoundException(
            f"this account keeps no uploaded artifact with SHA-256 {req.sha256}", resource_id=req.sha256
        )


async def _make_temp(folder: Path, prefix: str) -> tuple[int, Path]:
    """A new private temp file in ``folder``, created off the event loop: its open fd and its path.

    If the caller is cancelled while the thread runs, the thread still creates the file; it is then closed and
    removed as soon as the thread is done, so a cancelled upload leaves neither a file nor an fd behind.
    """
    created = asyncio.get_running_loop().run_in_executor(None, tempfile.mkstemp, TEMP_SUFFIX, prefix, folder)
    try:
        fd, name = await asyncio.shield(created)
    except asyncio.CancelledError:
        created.add_done_callback(_discard_temp)
        raise
    return fd, Path(name)


def _discard_temp(created: asyncio.Future[tuple[int, str]]) -> None:
    """Close and remove a temp file whose upload was cancelled while it was being created."""
    if created.cancelled() or created.exception() is not None:
        return
    fd, name = created.result()
    os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)


async def _receive(content: StreamReader, out: BinaryIO, cap: int, progress: Callable[[int], None]) -> tuple[str, int]:
    """Stream the body into ``out`` while hashing it; PayloadTooLargeException past ``cap``, and ``progress`` (called
    with the bytes received so far) may refuse to go on."""
    digest = hashlib.sha256()
    size = 0
    batch = bytearray()
    chunks = content.iter_chunked(WRITE_BATCH_BYTES)
    while True:
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            break
        except ConnectionResetError:  # the client went away: its fault, not ours (no traceback logged)
            raise ValidationException.for_field(
                "request body", f"the connection closed after {size} bytes, before the whole body arrived"
            ) from None
        size += len(chunk)
        if size > cap:
            raise _too_large(cap)
        progress(size)
        digest.update(chunk)
        batch += chunk
        if len(batch) >= WRITE_BATCH_BYTES:
            await asyncio.to_thread(out.write, bytes(batch))
            batch.clear()
    await asyncio.to_thread(out.write, bytes(batch))
    return digest.hexdigest(), size


def _too_large(cap: int) -> PayloadTooLargeException:
    return PayloadTooLargeException(
        f"request body: the artifact is larger than the maximum {cap} bytes ({cap // (1024 * 1024)} MiB)"
    )


def _make_private_dirs(folder: Path) -> None:
    """``folder`` and its parent (the artifacts root) exist with mode 0700."""
    for path in (folder.parent, folder):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
