"""Code artifacts: fetch a zip from a URI, unpack it safely into a build context, and zip a folder.

The zip comes from the user, so it is hostile: ``unpack_zip`` refuses absolute paths, ``..``, backslashes,
device/fifo/socket entries, duplicate names, paths through symlinks and symlinks that resolve outside the
context, and caps total size, entry count and per-entry compression ratio while counting the bytes it
really writes (declared sizes are checked first, but never trusted alone). Everything lands in a temp
directory next to ``dest`` that is renamed into place only when the whole zip passed, so a refused or
interrupted unpack never leaves a half context behind. Fetching writes to a temp file next to its
destination the same way, and stops a download at ``max_bytes``.

A local artifact (``file://`` or an absolute path) is read from wherever it points unless the caller passes
``file_root``: then it must resolve (``..`` collapsed, symlinks followed) to a file strictly under that folder,
and is opened without following a symlink. This module knows nothing of accounts; the API passes the caller's
own upload folder (``ember.api.artifacts``).

This module does not read the Dockerfile (``ember.images.dockerfile`` does) and does not build anything.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import re
import shutil
import ssl
import stat
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ember import errors

MiB = 1024 * 1024
GiB = 1024 * MiB

MAX_ARTIFACT_BYTES = 512 * MiB
"""Largest zip ``fetch_artifact`` downloads or copies (the compressed file)."""
MAX_UNPACKED_BYTES = GiB
"""Default cap on the bytes a zip may unpack to, counted while writing."""
MAX_ENTRIES = 20_000
"""Default cap on the entries (files, directories, symlinks) one zip may hold."""
MAX_COMPRESSION_RATIO = 200
"""Default cap on one entry's uncompressed:compressed ratio (zip bombs compress zeros ~1000:1)."""
RATIO_CHECK_MIN_BYTES = MiB
"""The ratio cap applies only to entries larger than this: small, very compressible files are normal."""
MAX_LINK_TARGET_BYTES = 4096
"""PATH_MAX: a symlink entry's data (its target) may not be longer."""
MAX_NAME_COMPONENT_BYTES = 255
"""NAME_MAX: no path component may be longer (the kernel would refuse it anyway)."""
HTTP_TIMEOUT_S = 60.0
"""Connect/read timeout of one HTTP operation while downloading (not of the whole download)."""
COPY_CHUNK_BYTES = MiB

SUPPORTED_SCHEMES = ("file", "http", "https", "s3")
DEFAULT_EXCLUDES = (".git", "__pycache__", ".venv")
DOCKERFILE = "Dockerfile"
ARTIFACT_FIELD = "codeArtifact"

__all__ = [
    "DEFAULT_EXCLUDES",
    "MAX_ARTIFACT_BYTES",
    "SUPPORTED_SCHEMES",
    "ArtifactError",
    "ArtifactFetchError",
    "ArtifactLimitExceeded",
    "ArtifactNotFound",
    "ArtifactOutsideRoot",
    "UnpackLimits",
    "UnpackReport",
    "UnsafeArtifact",
    "UnsupportedArtifactUri",
    "confine_local_path",
    "fetch_artifact",
    "local_path",
    "make_zip",
    "unpack_zip",
]


class ArtifactError(errors.EmberError):
    """Fetching, unpacking or zipping the code artifact failed."""


class ArtifactFetchError(ArtifactError):
    """The artifact could not be downloaded or read (network, HTTP status, S3 access, local file)."""


class ArtifactNotFound(ArtifactError, errors.NotFound):
    """The artifact's URI names nothing: no such file, HTTP 404, no such S3 bucket or key."""


class UnsupportedArtifactUri(ArtifactError, errors.InvalidInput):
    """The artifact URI's scheme or form is not one Ember can fetch."""

    def __init__(self, message: str) -> None:
        errors.InvalidInput.__init__(self, f"{ARTIFACT_FIELD}.uri", message)


class ArtifactOutsideRoot(UnsupportedArtifactUri):
    """A local artifact resolves outside the folder local artifacts must come from (``file_root``)."""


class UnsafeArtifact(ArtifactError, errors.InvalidInput):
    """The zip holds something Ember refuses to unpack (the message names the entry and the rule)."""

    def __init__(self, message: str) -> None:
        errors.InvalidInput.__init__(self, ARTIFACT_FIELD, message)


class ArtifactLimitExceeded(UnsafeArtifact):
    """The artifact is over a size, count or compression-ratio cap (the message names the cap and the numbers)."""


# --------------------------------------------------------------------------------------------- fetching


def fetch_artifact(
    uri: str,
    dest: Path,
    *,
    s3_endpoint_url: str | None = None,
    max_bytes: int = MAX_ARTIFACT_BYTES,
    file_root: Path | None = None,
) -> Path:
    """Copy the artifact at ``uri`` to the file ``dest`` (written atomically) and return ``dest``.

    ``uri`` is ``file:///abs/path`` or a plain absolute path, ``http(s)://…`` (streamed, redirects followed,
    TLS checked against the system's CAs plus ``SSL_CERT_FILE``), or ``s3://bucket/key`` (boto3, credentials
    and region from the environment, ``s3_endpoint_url`` for S3-compatible stores). More than ``max_bytes``
    raises ``ArtifactLimitExceeded``, checked while the bytes arrive. With ``file_root``, a local artifact
    outside that folder raises ``ArtifactOutsideRoot`` (``confine_local_path``).
    """
    if max_bytes <= 0:
        raise errors.InvalidInput("max_bytes", f"must be positive, got {max_bytes}")
    path = local_path(uri)
    if path is not None:
        if file_root is None:
            return _fetch_file(path, dest, max_bytes)
        return _fetch_file(confine_local_path(path, file_root), dest, max_bytes, follow_symlinks=False)
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise UnsupportedArtifactUri(f"{_redact(uri)} has no host")
        return _fetch_http(uri, dest, max_bytes)
    if scheme == "s3":
        return _fetch_s3(parts, dest, max_bytes, s3_endpoint_url)
    shown = f"scheme {scheme!r}" if scheme else "no scheme (and is not an absolute path)"
    raise UnsupportedArtifactUri(
        f"{_redact(uri)} has {shown}; supported: {', '.join(s + '://' for s in SUPPORTED_SCHEMES)} or an absolute path"
    )


def local_path(uri: str) -> Path | None:
    """The local file a ``file://`` URI or a plain absolute path names (percent-decoded, not resolved yet);
    None for any other scheme. A ``file://`` URI naming another host raises ``UnsupportedArtifactUri``."""
    if uri.startswith("/"):
        text = uri
    else:
        parts = urllib.parse.urlsplit(uri)
        if parts.scheme.lower() != "file":
            return None
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedArtifactUri(f"file:// URI names host {parts.netloc!r}; only local files are supported")
        text = urllib.request.url2pathname(parts.path)
    if "\x00" in text:
        raise UnsupportedArtifactUri("the path contains a NUL byte")
    return Path(text)


def confine_local_path(path: Path, root: Path) -> Path:
    """``path`` resolved (``..`` collapsed, every symlink followed), if that lies strictly under ``root`` resolved.

    ``ArtifactOutsideRoot`` otherwise; its message names neither the resolved path nor whether it exists, so a
    caller cannot probe the host's files with it.
    """
    real_root = Path(os.path.realpath(root))
    resolved = Path(os.path.realpath(path if path.is_absolute() else Path("/") / path))
    if resolved == real_root or not resolved.is_relative_to(real_root):
        raise ArtifactOutsideRoot(f"{str(path)[:512]!r} is outside the folder local artifacts may be read from")
    return resolved


def _redact(uri: str) -> str:
    """The URI without user info, query or fragment: pre-signed URLs carry credentials there."""
    parts = urllib.parse.urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", "")) if parts.scheme else uri


class _CappedWriter:
    """Writes chunks to a file and raises ``ArtifactLimitExceeded`` as soon as the total passes the cap."""

    def __init__(self, out: BinaryIO, max_bytes: int, what: str) -> None:
        self.out = out
        self.max_bytes = max_bytes
        self.what = what
        self.count = 0

    def check_declared(self, size: int | None) -> None:
        if size is not None and size > self.max_bytes:
            raise ArtifactLimitExceeded(
                f"{self.what} is {size} bytes, over the artifact size cap of {self.max_bytes} bytes"
            )

    def write(self, chunk: bytes) -> None:
        self.count += len(chunk)
        if self.count > self.max_bytes:
            raise ArtifactLimitExceeded(
                f"{self.what} is larger than the artifact size cap of {self.max_bytes} bytes "
                f"(stopped after {self.count} bytes)"
            )
        self.out.write(chunk)


@contextlib.contextmanager
def _atomic_file(dest: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """An open temp file (and its path) next to ``dest``, renamed onto ``dest`` when the block succeeds,
    removed otherwise."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out, Path(tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fetch_file(src: Path, dest: Path, max_bytes: int, *, follow_symlinks: bool = True) -> Path:
    flags = os.O_RDONLY | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(src, flags)
    except FileNotFoundError:
        raise ArtifactNotFound(f"artifact file {src} does not exist") from None
    except OSError as e:
        if e.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink swapped in after the path was resolved
            raise UnsafeArtifact(f"artifact {src} is a symlink") from None
        raise ArtifactFetchError(f"cannot read artifact file {src}: {e.strerror}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeArtifact(f"artifact {src} is not a regular file")
        with open(fd, "rb", closefd=False) as f, _atomic_file(dest) as (out, _):
            writer = _CappedWriter(out, max_bytes, f"artifact file {src}")
            writer.check_declared(st.st_size)
            while chunk := f.read(COPY_CHUNK_BYTES):
                writer.write(chunk)
    except OSError as e:
        raise ArtifactFetchError(f"cannot copy artifact file {src}: {e.strerror or e}") from e
    finally:
        os.close(fd)
    return dest


def _fetch_http(uri: str, dest: Path, max_bytes: int) -> Path:
    import httpx  # imported here: only HTTP fetches need it

    shown = _redact(uri)
    # The system trust store (plus SSL_CERT_FILE/SSL_CERT_DIR), not certifi's: on hosts whose egress is
    # TLS-intercepted the intercepting CA is installed system-wide (CONTRACT §10, build-time trust).
    tls = ssl.create_default_context()
    try:
        with (
            httpx.Client(verify=tls, timeout=HTTP_TIMEOUT_S, follow_redirects=True) as client,
            client.stream("GET", uri) as response,
        ):
            if response.status_code == 404:
                raise ArtifactNotFound(f"GET {shown} answered HTTP 404")
            if response.status_code >= 400:
                raise ArtifactFetchError(f"GET {shown} answered HTTP {response.status_code}")
            with _atomic_file(dest) as (out, _):
                writer = _CappedWriter(out, max_bytes, f"artifact at {shown}")
                length = response.headers.get("content-length")
                if length and length.isdigit() and "content-encoding" not in response.headers:
                    writer.check_declared(int(length))
                for chunk in response.iter_bytes(COPY_CHUNK_BYTES):
                    writer.write(chunk)
    except httpx.HTTPError as e:
        raise ArtifactFetchError(f"GET {shown} failed: {type(e).__name__}: {e}") from e
    except OSError as e:
        raise ArtifactFetchError(f"cannot write {dest}: {e.strerror or e}") from e
    return dest


def _fetch_s3(parts: urllib.parse.SplitResult, dest: Path, max_bytes: int, endpoint_url: str | None) -> Path:
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise UnsupportedArtifactUri(f"s3://{bucket}/{key} must name a bucket and a key (s3://bucket/key.zip)")
    shown = f"s3://{bucket}/{key}"
    import boto3  # imported here: boto3 is slow to import and only S3 fetches need it
    import botocore.exceptions

    try:
        client = boto3.client("s3", endpoint_url=endpoint_url)
        response = client.get_object(Bucket=bucket, Key=key)
        body = response["Body"]
        try:
            with _atomic_file(dest) as (out, _):
                writer = _CappedWriter(out, max_bytes, f"artifact {shown}")
                writer.check_declared(response.get("ContentLength"))
                for chunk in body.iter_chunks(COPY_CHUNK_BYTES):
                    writer.write(chunk)
        finally:
            body.close()
    except botocore.exceptions.ClientError as e:
        error = e.response.get("Error", {})
        code, message = str(error.get("Code", "")), error.get("Message", "")
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
            raise ArtifactNotFound(f"{shown}: {code} ({message or 'not found'})") from e
        raise ArtifactFetchError(f"{shown}: {code}: {message}") from e
    except botocore.exceptions.BotoCoreError as e:
        raise ArtifactFetchError(f"{shown}: {type(e).__name__}: {e}") from e
    except OSError as e:
        raise ArtifactFetchError(f"cannot write {dest}: {e.strerror or e}") from e
    return dest


# --------------------------------------------------------------------------------------------- unpacking


@dataclass(frozen=True)
class UnpackLimits:
    """Caps ``unpack_zip`` enforces; each default is the named module constant."""

    max_total_bytes: int = MAX_UNPACKED_BYTES
    max_entries: int = MAX_ENTRIES
    max_ratio: int = MAX_COMPRESSION_RATIO
    ratio_min_bytes: int = RATIO_CHECK_MIN_BYTES


@dataclass(frozen=True)
class UnpackReport:
    """What ``unpack_zip`` wrote: the context root and what it holds."""

    root: Path
    files: int
    directories: int
    symlinks: int
    total_bytes: int


@dataclass(frozen=True)
class _Entry:
    name: str  # canonical relative path: no '', '.', '..' components, no leading '/'
    info: zipfile.ZipInfo
    kind: str  # "file" | "dir" | "link"
    mode: int  # permission bits to apply


_SPECIAL_TYPES = {
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}
_DRIVE = re.compile(r"^[A-Za-z]:")


def unpack_zip(zip_path: Path, dest: Path, limits: UnpackLimits = UnpackLimits()) -> UnpackReport:
    """Unpack ``zip_path`` into the new directory ``dest`` (absent or empty), all or nothing.

    Regular files keep their executable bits (mode ``0644`` plus the zip's ``x`` bits; no setuid, no
    group/other write), directories are ``0755``. Symlinks are kept when their target is relative and
    resolves inside ``dest``; any other link is refused. A ``Dockerfile`` must be at the root.
    Raises ``UnsafeArtifact`` (or ``ArtifactLimitExceeded``) naming the entry and the rule or cap.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as e:
        raise UnsafeArtifact(f"{zip_path.name} is not a readable zip file: {e}") from e
    with archive:
        infos = archive.infolist()  # the central directory, read once; every decision below uses this list
        entries = _check_entries(infos, limits)
        _check_dockerfile_entry(entries)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise ArtifactError(f"unpack destination {dest} already exists and is not an empty directory")
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".unpacking", dir=dest.parent))
        try:
            files, dirs, links, total = _extract(archive, entries, tmp, limits)
            _check_links_resolve_inside(tmp, entries)
            if not (tmp / DOCKERFILE).is_file():
                raise UnsafeArtifact(f"{DOCKERFILE} at the root of the zip is not a regular file")
            os.chmod(tmp, 0o755)
            os.replace(tmp, dest)
        except OSError as e:  # disk full, a path too long for this filesystem, dest filled meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
            raise ArtifactError(f"unpacking into {dest} failed: {e}") from e
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return UnpackReport(dest, files, dirs, links, total)


def _canonical_name(info: zipfile.ZipInfo) -> str:
    raw = info.filename
    shown = repr(info.orig_filename)
    if "\x00" in info.orig_filename:
        raise UnsafeArtifact(f"entry {shown} has a NUL byte in its name")
    if "\\" in raw:
        raise UnsafeArtifact(
            f"entry {shown} has a backslash in its name; zip paths must use '/' (re-create the zip with a tool that "
            "writes '/' separators)"
        )
    if raw.startswith("/") or _DRIVE.match(raw):
        raise UnsafeArtifact(f"entry {shown} has an absolute path; entries must be relative to the zip's root")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArtifact(f"entry {shown} has a '..' component; entries must stay inside the zip's root")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_COMPONENT_BYTES:
            raise UnsafeArtifact(f"entry {shown} has a path component longer than {MAX_NAME_COMPONENT_BYTES} bytes")
    return "/".join(parts)


def _entry_kind(info: zipfile.ZipInfo, name: str) -> tuple[str, int]:
    """(kind, permission bits) from the entry's Unix mode; zips made elsewhere carry no mode: plain files."""
    mode = (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0
    ftype = stat.S_IFMT(mode)
    if ftype in _SPECIAL_TYPES:
        raise UnsafeArtifact(f"entry {name!r} is a {_SPECIAL_TYPES[ftype]}; only files, directories and symlinks")
    if ftype == stat.S_IFLNK:
        if info.filename.endswith("/"):
            raise UnsafeArtifact(f"entry {name!r} is a symlink whose name ends with '/'")
        return "link", 0o777
    if ftype == stat.S_IFDIR or info.filename.endswith("/"):
        return "dir", 0o755
    if ftype not in (0, stat.S_IFREG):
        raise UnsafeArtifact(f"entry {name!r} has unknown file type {ftype:#o} in its mode")
    return "file", 0o644 | (mode & 0o111)


def _check_entries(infos: list[zipfile.ZipInfo], limits: UnpackLimits) -> dict[str, _Entry]:
    if len(infos) > limits.max_entries:
        raise ArtifactLimitExceeded(
            f"the zip has {len(infos)} entries, over the file count cap of {limits.max_entries}"
        )
    entries: dict[str, _Entry] = {}
    declared_total = 0
    for info in infos:
        name = _canonical_name(info)
        if not name:
            continue  # an entry for the root itself ("./"): nothing to create
        if info.flag_bits & 0x1:
            raise UnsafeArtifact(f"entry {name!r} is encrypted; encrypted zips are not supported")
        kind, mode = _entry_kind(info, name)
        if name in entries:
            raise UnsafeArtifact(f"entry {name!r} appears more than once in the zip; duplicate names are refused")
        entries[name] = _Entry(name, info, kind, mode)
        if kind != "file":
            continue
        declared_total += info.file_size
        if declared_total > limits.max_total_bytes:
            raise ArtifactLimitExceeded(
                f"the zip declares more than {limits.max_total_bytes} bytes uncompressed "
                f"(total unpacked size cap; {declared_total} bytes by entry {name!r})"
            )
        _check_ratio(name, info.file_size, info.compress_size, limits)
    for name in entries:
        parent = posixpath.dirname(name)
        while parent:
            above = entries.get(parent)
            if above is not None and above.kind != "dir":
                what = "a symlink" if above.kind == "link" else "a file"
                raise UnsafeArtifact(f"entry {name!r} is inside {parent!r}, which is {what} in the zip")
            parent = posixpath.dirname(parent)
    return entries


def _check_ratio(name: str, size: int, compressed: int, limits: UnpackLimits) -> None:
    if size > limits.ratio_min_bytes and size > limits.max_ratio * max(compressed, 1):
        raise ArtifactLimitExceeded(
            f"entry {name!r} expands {max(compressed, 1)} compressed bytes to {size}"
            f" ({size // max(compressed, 1)}:1), over the compression ratio cap of {limits.max_ratio}:1"
            f" (checked for entries over {limits.ratio_min_bytes} bytes)"
        )


def _check_dockerfile_entry(entries: dict[str, _Entry]) -> None:
    if DOCKERFILE in entries and entries[DOCKERFILE].kind != "dir":
        return
    hint = ""
    nested = sorted(n for n in entries if n.count("/") == 1 and n.endswith(f"/{DOCKERFILE}"))
    if nested:
        hint = f"; found {nested[0]!r}: zip the folder's contents, not the folder itself"
    elif any(n.lower() == DOCKERFILE.lower() for n in entries):
        hint = "; the name is case-sensitive"
    raise UnsafeArtifact(f"no {DOCKERFILE} at the root of the zip{hint}")


def _extract(
    archive: zipfile.ZipFile, entries: dict[str, _Entry], root: Path, limits: UnpackLimits
) -> tuple[int, int, int, int]:
    """Write directories and files, then symlinks (so no write ever goes through a link we made)."""
    files = dirs = links = 0
    total = 0
    for entry in entries.values():
        target = root / entry.name
        if entry.kind == "dir":
            target.mkdir(mode=0o755, parents=True, exist_ok=True)
            dirs += 1
        elif entry.kind == "file":
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            total = _extract_file(archive, entry, target, total, limits)
            files += 1
    for entry in entries.values():
        if entry.kind == "link":
            link_target = _read_link_target(archive, entry)
            target = root / entry.name
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            os.symlink(link_target, target)
            links += 1
    for top, _, _ in os.walk(root):  # the umask may have narrowed directories made along the way
        os.chmod(top, 0o755)
    return files, dirs, links, total


def _extract_file(archive: zipfile.ZipFile, entry: _Entry, target: Path, total: int, limits: UnpackLimits) -> int:
    info = entry.info
    written = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        with archive.open(info) as src, os.fdopen(os.open(target, flags, entry.mode), "wb") as out:
            while chunk := src.read(COPY_CHUNK_BYTES):
                written += len(chunk)
                total += len(chunk)
                if total > limits.max_total_bytes:
                    raise ArtifactLimitExceeded(
                        f"the zip unpacks to more than {limits.max_total_bytes} bytes (total unpacked size cap; "
                        f"stopped in entry {entry.name!r})"
                    )
                if written > info.file_size:
                    raise UnsafeArtifact(f"entry {entry.name!r} holds more than the {info.file_size} bytes it declares")
                _check_ratio(entry.name, written, info.compress_size, limits)
                out.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, RuntimeError) as e:
        raise UnsafeArtifact(f"entry {entry.name!r} cannot be read: {e}") from e
    os.chmod(target, entry.mode)  # the umask may have masked bits at open
    with contextlib.suppress(OverflowError, ValueError, OSError):
        mtime = time.mktime((*info.date_time, 0, 0, -1))
        os.utime(target, (mtime, mtime))
    return total


def _read_link_target(archive: zipfile.ZipFile, entry: _Entry) -> str:
    try:
        with archive.open(entry.info) as src:
            data = src.read(MAX_LINK_TARGET_BYTES + 1)
    except (zipfile.BadZipFile, NotImplementedError, EOFError, RuntimeError) as e:
        raise UnsafeArtifact(f"symlink {entry.name!r} cannot be read: {e}") from e
    if len(data) > MAX_LINK_TARGET_BYTES:
        raise UnsafeArtifact(f"symlink {entry.name!r} has a target longer than {MAX_LINK_TARGET_BYTES} bytes")
    try:
        target = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeArtifact(f"symlink {entry.name!r} has a target that is not UTF-8") from None
    if not target or "\x00" in target:
        raise UnsafeArtifact(f"symlink {entry.name!r} has an empty target or one with a NUL byte")
    if target.startswith("/"):
        raise UnsafeArtifact(
            f"symlink {entry.name!r} points to the absolute path {target!r}; only relative links that stay inside "
            "the artifact are allowed"
        )
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(entry.name), target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArtifact(f"symlink {entry.name!r} points to {target!r}, outside the artifact")
    return target


def _check_links_resolve_inside(root: Path, entries: dict[str, _Entry]) -> None:
    """The lexical check misses chains (``a -> .``, ``b -> a/..``): resolve each link through the real tree."""
    real_root = os.path.realpath(root)
    for entry in entries.values():
        if entry.kind != "link":
            continue
        resolved = os.path.realpath(root / entry.name)
        if resolved != real_root and not resolved.startswith(real_root + os.sep):
            target = os.readlink(root / entry.name)
            raise UnsafeArtifact(
                f"symlink {entry.name!r} -> {target!r} resolves outside the artifact through other symlinks"
            )


# --------------------------------------------------------------------------------------------- zipping


def make_zip(src_dir: Path, out: Path, exclude: tuple[str, ...] = DEFAULT_EXCLUDES) -> Path:
    """Zip the contents of ``src_dir`` (a ``Dockerfile`` at its root) into ``out``, written atomically.

    Files and directories named in ``exclude`` are left out at any depth. Entries are sorted and keep their
    Unix mode, so ``unpack_zip`` restores executable bits; symlinks are stored as links and must stay inside
    ``src_dir``. Sockets, fifos and devices are skipped. The zip never contains ``out`` itself.
    """
    src_dir = src_dir.resolve()
    if not (src_dir / DOCKERFILE).is_file():
        raise UnsafeArtifact(f"{src_dir} has no {DOCKERFILE} at its root")
    skip = set(exclude)
    out = out.absolute()
    with _atomic_file(out) as (raw, part), zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        own = {out.resolve(), part.resolve()}
        for path in _walk(src_dir, skip):
            if not path.is_symlink() and path.resolve() in own:
                continue
            _add_to_zip(archive, src_dir, path)
    return out


def _walk(src_dir: Path, skip: set[str]) -> Iterator[Path]:
    for top, dirnames, filenames in os.walk(src_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        here = Path(top)
        for name in dirnames:
            yield here / name  # symlinks to directories appear here and are not descended into
        for name in sorted(filenames):
            if name not in skip:
                yield here / name


def _add_to_zip(archive: zipfile.ZipFile, src_dir: Path, path: Path) -> None:
    arcname = path.relative_to(src_dir).as_posix()
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(arcname), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise UnsafeArtifact(f"{path} is a symlink to {target!r}, outside {src_dir}; the build would refuse it")
        info = zipfile.ZipInfo(arcname, date_time=_zip_time(st.st_mtime))
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target, compress_type=zipfile.ZIP_STORED)
    elif stat.S_ISDIR(st.st_mode):
        info = zipfile.ZipInfo(arcname + "/", date_time=_zip_time(st.st_mtime))
        info.create_system = 3
        info.external_attr = ((stat.S_IFDIR | 0o755) << 16) | 0x10  # 0x10: MS-DOS directory flag
        archive.writestr(info, b"")
    elif stat.S_ISREG(st.st_mode):
        info = zipfile.ZipInfo.from_file(path, arcname)
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as src, archive.open(info, "w") as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)


def _zip_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    """Zip timestamps cannot predate 1980."""
    return time.localtime(max(mtime, 315532800.0 + 86400))[:6]
