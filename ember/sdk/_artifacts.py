"""Code artifacts on the client's side: a folder or zip made into the zip to upload, and the upload request.

A folder is zipped (``ember.images.artifact.make_zip``, leaving out ``.git``, ``__pycache__`` and ``.venv``) and a
``.zip`` copied, both into a temporary folder that is removed after the upload. Build args (``--build-arg``) have
no field in the API, so they are written into the zipped copy of the Dockerfile as the defaults of the matching
``ARG`` lines: the server's build sees the same values Docker's ``--build-arg`` would give. An arg no ``ARG`` line
declares is an error. A URI (``s3://``, ``https://``, ``file://``) is passed through as it is.

The zip goes to the server with ``POST /ember/artifacts``, which answers the ``file://`` URI to build from, so a
server on another machine works as well as a local one. That route's SigV4 signature covers an empty payload and
the signed header ``X-Ember-Content-SHA256`` binds the body to it (the server checks it while the body arrives);
the body is streamed from the file, never held in memory whole.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError

ARTIFACTS_PATH = "/ember/artifacts"
ZIP_MEDIA_TYPE = "application/zip"
CONTENT_SHA256_HEADER = "X-Ember-Content-SHA256"
UPLOAD_CHUNK_BYTES = 1024 * 1024
"""Bytes read from the zip per write to the connection (and per progress callback)."""
_URI = re.compile(r"^[a-z][a-z0-9+.-]*://")
_ARG_LINE = re.compile(r"^(\s*ARG\s+)([A-Za-z_][A-Za-z0-9_]*)(=\S*)?\s*$", re.IGNORECASE | re.MULTILINE)

UploadProgress = Callable[[int, int], None]
"""Called with (bytes sent, total bytes) as an upload goes: first with 0, last with the total."""


@dataclass(frozen=True)
class UploadedArtifact:
    """A zip the server keeps for this account: ``uri`` is the ``codeArtifact.uri`` to build from."""

    uri: str
    sha256: str
    size_bytes: int


def passthrough_uri(source: str | Path, build_args: Mapping[str, str] | None = None) -> str | None:
    """``source`` itself when it is a URI (build args then cannot apply), None when it is a local path."""
    if isinstance(source, str) and _URI.match(source):
        if build_args:
            raise ConfigurationError("build args need a local folder or zip: the SDK writes them into the Dockerfile")
        return source
    return None


def make_local_zip(source: str | Path, out_dir: Path, build_args: Mapping[str, str] | None = None) -> Path:
    """The zip to upload for the folder or ``.zip`` ``source``, written in ``out_dir``, build args applied."""
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise ConfigurationError(f"{path} does not exist (give a folder with a Dockerfile, a .zip or a URI)")
    out = out_dir / "artifact.zip"
    if path.is_dir():
        from ember.images.artifact import make_zip

        make_zip(path, out)
    elif zipfile.is_zipfile(path):
        shutil.copyfile(path, out)
    else:
        raise ConfigurationError(f"{path} is neither a folder nor a zip file")
    if build_args:
        _apply_build_args(out, build_args)
    return out


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(UPLOAD_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def upload_headers(digest: str) -> dict[str, str]:
    """The headers to sign for an upload of a zip whose SHA-256 is ``digest``."""
    return {"Accept": "application/json", "Content-Type": ZIP_MEDIA_TYPE, CONTENT_SHA256_HEADER: digest}


def read_chunks(path: Path, size: int, on_progress: UploadProgress | None) -> Iterator[bytes]:
    """The file's bytes in chunks, reporting progress after each one."""
    sent = 0
    if on_progress is not None:
        on_progress(0, size)
    with open(path, "rb") as f:
        while chunk := f.read(UPLOAD_CHUNK_BYTES):
            yield chunk
            sent += len(chunk)
            if on_progress is not None:
                on_progress(sent, size)


def uploaded(data: object) -> UploadedArtifact:
    """The upload's JSON answer as an ``UploadedArtifact``."""
    if not isinstance(data, dict) or not isinstance(data.get("uri"), str):
        from .errors import SdkError

        raise SdkError(f"unexpected answer to POST {ARTIFACTS_PATH}: {str(data)[:200]}")
    return UploadedArtifact(uri=data["uri"], sha256=str(data.get("sha256", "")),
                            size_bytes=int(data.get("sizeBytes", 0)))


def _apply_build_args(zip_path: Path, build_args: Mapping[str, str]) -> None:
    """Rewrite the zip's ``Dockerfile`` so each ``ARG NAME`` named in ``build_args`` defaults to its value."""
    with zipfile.ZipFile(zip_path) as archive:
        try:
            text = archive.read("Dockerfile").decode("utf-8")
        except KeyError:
            raise ConfigurationError("the artifact has no Dockerfile at its root") from None
    seen: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in build_args:
            return match.group(0)
        seen.add(name)
        return f"{match.group(1)}{name}={_quote_arg(build_args[name])}"

    text = _ARG_LINE.sub(replace, text)
    unused = sorted(set(build_args) - seen)
    if unused:
        raise ConfigurationError(f"build arg {', '.join(unused)} is not declared by an ARG line in the Dockerfile")
    with tempfile.NamedTemporaryFile(dir=zip_path.parent, suffix=".part", delete=False) as tmp:
        part = Path(tmp.name)
    try:
        with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                data = text.encode("utf-8") if info.filename == "Dockerfile" else src.read(info)
                dst.writestr(info, data)
        part.replace(zip_path)
    finally:
        part.unlink(missing_ok=True)


def _quote_arg(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:@%+,-]*", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
