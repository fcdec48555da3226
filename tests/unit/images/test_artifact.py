"""Unit tests of code artifacts: safe unpacking of hostile zips, zipping a folder, fetching from file/HTTP/S3."""

from __future__ import annotations

import contextlib
import http.server
import os
import stat
import threading
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ember import errors
from ember.images.artifact import (
    ArtifactError,
    ArtifactLimitExceeded,
    ArtifactNotFound,
    ArtifactOutsideRoot,
    UnpackLimits,
    UnsafeArtifact,
    UnsupportedArtifactUri,
    confine_local_path,
    fetch_artifact,
    local_path,
    make_zip,
    unpack_zip,
)

MiB = 1024 * 1024
DOCKERFILE = b"FROM debian:12\n"


def entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def build_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]], *, dockerfile: bool = True) -> Path:
    """A zip holding ``members`` (name or ZipInfo, data), plus a root Dockerfile unless told not to."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if dockerfile:
            zf.writestr("Dockerfile", DOCKERFILE)
        for name, data in members:
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    return entry(name, stat.S_IFLNK | 0o777), target.encode()


def refused(tmp_path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]], **kwargs) -> str:
    """Unpack a zip of ``members`` expecting a refusal; check nothing is left behind; return the message."""
    zip_path = build_zip(tmp_path / "in.zip", members, dockerfile=kwargs.pop("dockerfile", True))
    (tmp_path / "out").mkdir(exist_ok=True)
    out = tmp_path / "out" / "ctx"
    with pytest.raises(UnsafeArtifact) as info:
        unpack_zip(zip_path, out, **kwargs)
    assert not out.exists()
    assert list((tmp_path / "out").iterdir()) == []  # the temp directory is gone too
    return str(info.value)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("/etc/passwd", "entry '/etc/passwd' has an absolute path"),
        ("../x", "entry '../x' has a '..' component"),
        ("a/../../x", "entry 'a/../../x' has a '..' component"),
        ("..\\..\\x", "entry '..\\\\..\\\\x' has a backslash in its name"),
        ("C:/Windows/x", "entry 'C:/Windows/x' has an absolute path"),
    ],
)
def test_bad_paths_are_refused(tmp_path: Path, name: str, message: str) -> None:
    assert message in refused(tmp_path, [(name, b"x")])


def test_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    assert "symlink 'link' points to the absolute path '/etc'" in refused(tmp_path, [symlink("link", "/etc")])
    message = refused(tmp_path, [symlink("sub/link", "../../outside")])
    assert "symlink 'sub/link' points to '../../outside', outside the artifact" in message


def test_symlink_chain_resolving_outside_is_refused(tmp_path: Path) -> None:
    # Each link alone stays inside when read lexically; together `b` is the parent of the context.
    message = refused(tmp_path, [symlink("a", "."), symlink("b", "a/..")])
    assert "symlink 'b' -> 'a/..' resolves outside the artifact through other symlinks" in message


def test_writing_through_a_symlink_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, [symlink("lib", "sub"), ("lib/evil.py", b"x")])
    assert "entry 'lib/evil.py' is inside 'lib', which is a symlink in the zip" in message


@pytest.mark.parametrize(
    ("kind", "word"),
    [
        (stat.S_IFCHR, "character device"),
        (stat.S_IFBLK, "block device"),
        (stat.S_IFIFO, "fifo"),
        (stat.S_IFSOCK, "socket"),
    ],
)
def test_special_entries_are_refused(tmp_path: Path, kind: int, word: str) -> None:
    message = refused(tmp_path, [(entry("dev/thing", kind | 0o644), b"")])
    assert f"entry 'dev/thing' is a {word}" in message


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name" while we build the bad zip on purpose
        message = refused(tmp_path, [("app.py", b"one"), ("app.py", b"two")])
    assert "entry 'app.py' appears more than once in the zip" in message
    message = refused(tmp_path, [("a/b", b"x"), ("./a//b", b"y")])
    assert "entry 'a/b' appears more than once" in message


def test_file_used_as_directory_is_refused(tmp_path: Path) -> None:
    assert "entry 'a/b' is inside 'a', which is a file in the zip" in refused(tmp_path, [("a", b"x"), ("a/b", b"y")])


def test_zip_bomb_is_refused_by_the_ratio_cap(tmp_path: Path) -> None:
    message = refused(tmp_path, [("zeros.bin", bytes(50 * MiB))])
    assert "entry 'zeros.bin' expands" in message
    assert "to 52428800" in message
    assert "over the compression ratio cap of 200:1 (checked for entries over 1048576 bytes)" in message


def test_ratio_cap_ignores_small_entries(tmp_path: Path) -> None:
    report = unpack_zip(build_zip(tmp_path / "z.zip", [("zeros.bin", bytes(MiB))]), tmp_path / "ctx")
    assert report.total_bytes == MiB + len(DOCKERFILE)


def test_total_size_cap(tmp_path: Path) -> None:
    message = refused(tmp_path, [("a.bin", os.urandom(4000))], limits=UnpackLimits(max_total_bytes=3000))
    assert "more than 3000 bytes uncompressed (total unpacked size cap" in message


def test_file_count_cap(tmp_path: Path) -> None:
    members: list[tuple[str | zipfile.ZipInfo, bytes]] = [(f"f{i}", b"") for i in range(20_000)]
    message = refused(tmp_path, members)
    assert "the zip has 20001 entries, over the file count cap of 20000" in message


def test_declared_size_lies_are_caught(tmp_path: Path) -> None:
    """A central directory that understates an entry's size: the entry is refused, never trusted."""
    zip_path = build_zip(tmp_path / "in.zip", [("big.bin", os.urandom(10_000))])
    data = bytearray(zip_path.read_bytes())
    central = data.rfind(b"PK\x01\x02")  # the last central directory record: big.bin
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")  # its uncompressed size
    zip_path.write_bytes(bytes(data))
    with pytest.raises(UnsafeArtifact, match=r"big\.bin"):
        unpack_zip(zip_path, tmp_path / "ctx")
    assert not (tmp_path / "ctx").exists()


def test_missing_dockerfile_is_refused_with_a_hint(tmp_path: Path) -> None:
    assert "no Dockerfile at the root of the zip" in refused(tmp_path, [("app.py", b"")], dockerfile=False)
    message = refused(tmp_path, [("myapp/Dockerfile", DOCKERFILE)], dockerfile=False)
    assert "found 'myapp/Dockerfile': zip the folder's contents, not the folder itself" in message
    assert "the name is case-sensitive" in refused(tmp_path, [("dockerfile", DOCKERFILE)], dockerfile=False)


def test_not_a_zip(tmp_path: Path) -> None:
    bogus = tmp_path / "x.zip"
    bogus.write_bytes(b"hello")
    with pytest.raises(UnsafeArtifact, match=r"x\.zip is not a readable zip file"):
        unpack_zip(bogus, tmp_path / "ctx")


def test_refusals_are_invalid_input_for_the_api(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput) as info:
        unpack_zip(build_zip(tmp_path / "z.zip", [("../x", b"")]), tmp_path / "ctx")
    assert info.value.field == "codeArtifact"


# ---------------------------------------------------------------- a good zip


def test_good_zip_keeps_exec_bits_dirs_and_inside_symlinks(tmp_path: Path) -> None:
    zip_path = build_zip(
        tmp_path / "good.zip",
        [
            (entry("bin/run.sh", stat.S_IFREG | 0o755), b"#!/bin/sh\necho hi\n"),
            (entry("src/pkg/mod.py", stat.S_IFREG | 0o664), b"x = 1\n"),
            (entry("suid", stat.S_IFREG | 0o4777), b""),
            (entry("empty/", stat.S_IFDIR | 0o700), b""),
            ("plain-from-elsewhere.txt", b"no mode"),
            symlink("src/link.py", "pkg/mod.py"),
            symlink("top", "."),
            symlink("node_modules/.bin/tool", "../tool/cli.js"),
            ("node_modules/tool/cli.js", b"js"),
        ],
    )
    dest = tmp_path / "ctx"
    report = unpack_zip(zip_path, dest)
    assert (report.root, report.files, report.directories, report.symlinks) == (dest, 6, 1, 3)
    assert report.total_bytes == sum(
        len(d) for d in (DOCKERFILE, b"#!/bin/sh\necho hi\n", b"x = 1\n", b"no mode", b"js")
    )
    assert stat.S_IMODE((dest / "bin" / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "src" / "pkg" / "mod.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "suid").stat().st_mode) == 0o755  # no setuid, no group/other write
    assert stat.S_IMODE((dest / "empty").stat().st_mode) == 0o755
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert (dest / "src" / "link.py").read_text() == "x = 1\n"
    assert os.readlink(dest / "node_modules" / ".bin" / "tool") == "../tool/cli.js"
    assert (dest / "Dockerfile").read_bytes() == DOCKERFILE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx", "good.zip"]  # no temp directory left


def test_unpack_into_existing_directory(tmp_path: Path) -> None:
    zip_path = build_zip(tmp_path / "z.zip", [])
    (tmp_path / "empty").mkdir()
    unpack_zip(zip_path, tmp_path / "empty")
    assert (tmp_path / "empty" / "Dockerfile").is_file()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ArtifactError, match="already exists and is not an empty directory"):
        unpack_zip(zip_path, tmp_path / "full")


# ---------------------------------------------------------------- make_zip


def test_make_zip_round_trip_with_excludes(tmp_path: Path) -> None:
    src = tmp_path / "app"
    (src / ".git").mkdir(parents=True)
    (src / ".git" / "HEAD").write_text("ref")
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "__pycache__" / "m.pyc").write_bytes(b"\0")
    (src / "pkg" / "m.py").write_text("x")
    (src / ".venv").mkdir()
    (src / "Dockerfile").write_bytes(DOCKERFILE)
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / "empty").mkdir()
    (src / "alias.py").symlink_to("pkg/m.py")
    out = make_zip(src, src / "app.zip")  # the zip inside the folder it zips: must not include itself
    with zipfile.ZipFile(out) as zf:
        names = sorted(zf.namelist())
    assert names == ["Dockerfile", "alias.py", "empty/", "pkg/", "pkg/m.py", "run.sh"]
    report = unpack_zip(out, tmp_path / "ctx")
    assert report.symlinks == 1 and report.directories == 2
    assert stat.S_IMODE((tmp_path / "ctx" / "run.sh").stat().st_mode) == 0o755
    assert (tmp_path / "ctx" / "alias.py").read_text() == "x"


def test_make_zip_refuses_missing_dockerfile_and_links_out(tmp_path: Path) -> None:
    src = tmp_path / "app"
    src.mkdir()
    with pytest.raises(UnsafeArtifact, match="has no Dockerfile at its root"):
        make_zip(src, tmp_path / "a.zip")
    (src / "Dockerfile").write_bytes(DOCKERFILE)
    (src / "secrets").symlink_to("/etc")
    with pytest.raises(UnsafeArtifact, match="is a symlink to '/etc', outside"):
        make_zip(src, tmp_path / "a.zip")
    assert not (tmp_path / "a.zip").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["app"]


# ---------------------------------------------------------------- fetching: file


def test_fetch_file_uri_and_plain_path(tmp_path: Path) -> None:
    src = build_zip(tmp_path / "my app.zip", [])
    assert fetch_artifact(src.as_uri(), tmp_path / "a.zip").read_bytes() == src.read_bytes()
    assert fetch_artifact(str(src), tmp_path / "b" / "b.zip").read_bytes() == src.read_bytes()
    assert fetch_artifact(f"file://localhost{src}".replace(" ", "%20"), tmp_path / "c.zip").exists()


def test_fetch_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="does not exist"):
        fetch_artifact(str(tmp_path / "missing.zip"), tmp_path / "a.zip")
    with pytest.raises(UnsafeArtifact, match="is not a regular file"):
        fetch_artifact(str(tmp_path), tmp_path / "a.zip")
    big = tmp_path / "big.zip"
    big.write_bytes(bytes(2000))
    with pytest.raises(ArtifactLimitExceeded, match="is 2000 bytes, over the artifact size cap of 1000 bytes"):
        fetch_artifact(str(big), tmp_path / "a.zip", max_bytes=1000)
    assert not (tmp_path / "a.zip").exists()
    with pytest.raises(UnsupportedArtifactUri, match="names host 'otherhost'"):
        fetch_artifact("file://otherhost/x.zip", tmp_path / "a.zip")


def test_local_path_of_file_uris_and_absolute_paths_only() -> None:
    assert local_path("file:///srv/a%20b.zip") == Path("/srv/a b.zip")
    assert local_path("file://localhost/srv/a.zip") == Path("/srv/a.zip")
    assert local_path("/srv/a.zip") == Path("/srv/a.zip")
    assert local_path("s3://bucket/a.zip") is None and local_path("https://example.com/a.zip") is None
    with pytest.raises(UnsupportedArtifactUri, match="names host 'otherhost'"):
        local_path("file://otherhost/a.zip")
    with pytest.raises(UnsupportedArtifactUri, match="NUL byte"):
        local_path("file:///srv/a%00.zip")


def test_confine_local_path_keeps_files_under_the_root(tmp_path: Path) -> None:
    root, other = tmp_path / "artifacts" / "111111111111", tmp_path / "artifacts" / "222222222222"
    root.mkdir(parents=True)
    other.mkdir()
    own = build_zip(root / "own.zip", [])
    theirs = build_zip(other / "theirs.zip", [])
    assert confine_local_path(own, root) == own.resolve()
    (root / "link.zip").symlink_to(theirs)
    (root / "dir").symlink_to(other)
    for path in (theirs, root / ".." / other.name / "theirs.zip", root / "link.zip", root / "dir" / "theirs.zip",
                 root, Path("/etc/passwd")):
        with pytest.raises(ArtifactOutsideRoot, match="is outside the folder local artifacts may be read from"):
            confine_local_path(path, root)


def test_fetch_with_a_file_root_reads_only_under_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    own = build_zip(root / "own.zip", [])
    outside = build_zip(tmp_path / "outside.zip", [])
    assert fetch_artifact(own.as_uri(), tmp_path / "a.zip", file_root=root).read_bytes() == own.read_bytes()
    with pytest.raises(ArtifactOutsideRoot) as info:
        fetch_artifact(outside.as_uri(), tmp_path / "b.zip", file_root=root)
    assert info.value.field == "codeArtifact.uri" and isinstance(info.value, errors.InvalidInput)
    (root / "link.zip").symlink_to(outside)
    with pytest.raises(ArtifactOutsideRoot):
        fetch_artifact((root / "link.zip").as_uri(), tmp_path / "c.zip", file_root=root)
    assert not (tmp_path / "b.zip").exists() and not (tmp_path / "c.zip").exists()
    assert fetch_artifact(outside.as_uri(), tmp_path / "d.zip").exists()  # no root: any local file (library use)


def test_a_symlink_swapped_in_after_the_check_is_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    root.mkdir()
    build_zip(root / "own.zip", [])
    outside = build_zip(tmp_path / "outside.zip", [])
    real_confine = confine_local_path

    def confine_then_swap(path: Path, file_root: Path) -> Path:
        resolved = real_confine(path, file_root)
        resolved.unlink()
        resolved.symlink_to(outside)
        return resolved

    monkeypatch.setattr("ember.images.artifact.confine_local_path", confine_then_swap)
    with pytest.raises(UnsafeArtifact, match="is a symlink"):
        fetch_artifact((root / "own.zip").as_uri(), tmp_path / "a.zip", file_root=root)


@pytest.mark.parametrize("uri", ["ftp://example.com/a.zip", "relative/a.zip", "ecr://repo/image"])
def test_unsupported_uri_names_scheme_and_supported_ones(tmp_path: Path, uri: str) -> None:
    with pytest.raises(UnsupportedArtifactUri) as info:
        fetch_artifact(uri, tmp_path / "a.zip")
    message = str(info.value)
    assert message.startswith("codeArtifact.uri: ")
    assert "supported: file://, http://, https://, s3:// or an absolute path" in message
    scheme = uri.split("://")[0] if "://" in uri else None
    assert (f"scheme {scheme!r}" if scheme else "no scheme") in message


# ---------------------------------------------------------------- fetching: HTTP


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b"PK-fake-zip" * 1000

    def do_GET(self) -> None:
        with contextlib.suppress(ConnectionError):
            if self.path.startswith("/ok.zip"):
                self.send_response(200)
                self.send_header("Content-Length", str(len(self.payload)))
                self.end_headers()
                self.wfile.write(self.payload)
            elif self.path == "/endless":  # no Content-Length: only counting while reading can stop it
                self.send_response(200)
                self.end_headers()
                for _ in range(64):
                    self.wfile.write(bytes(64 * 1024))
            elif self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/ok.zip")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/forbidden":
                self.send_error(403)
            else:
                self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fetch_http(tmp_path: Path, http_base: str) -> None:
    assert fetch_artifact(f"{http_base}/ok.zip", tmp_path / "a.zip").read_bytes() == _Handler.payload
    assert fetch_artifact(f"{http_base}/redirect", tmp_path / "b.zip").read_bytes() == _Handler.payload


def test_fetch_http_cap_hit_mid_stream(tmp_path: Path, http_base: str) -> None:
    with pytest.raises(ArtifactLimitExceeded) as info:
        fetch_artifact(f"{http_base}/endless", tmp_path / "a.zip", max_bytes=MiB)
    assert f"is larger than the artifact size cap of {MiB} bytes (stopped after" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_fetch_http_declared_length_over_cap(tmp_path: Path, http_base: str) -> None:
    with pytest.raises(ArtifactLimitExceeded, match="is 11000 bytes, over the artifact size cap of 100 bytes"):
        fetch_artifact(f"{http_base}/ok.zip?X-Amz-Signature=secret", tmp_path / "a.zip", max_bytes=100)


def test_fetch_http_errors_hide_query_strings(tmp_path: Path, http_base: str) -> None:
    with pytest.raises(ArtifactNotFound) as info:
        fetch_artifact(f"{http_base}/nope.zip?token=secret", tmp_path / "a.zip")
    assert "HTTP 404" in str(info.value) and "secret" not in str(info.value)
    with pytest.raises(ArtifactError, match="HTTP 403"):
        fetch_artifact(f"{http_base}/forbidden", tmp_path / "a.zip")
    with pytest.raises(ArtifactError, match="ConnectError"):
        fetch_artifact("http://127.0.0.1:1/x.zip", tmp_path / "a.zip")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- fetching: S3 (moto's server)


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server", reason="moto is a test dependency (pyproject [test])")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_fetch_s3(tmp_path: Path, s3_endpoint: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="artifacts")
    body = build_zip(tmp_path / "src.zip", [("app.py", b"print(1)\n")]).read_bytes()
    client.put_object(Bucket="artifacts", Key="microvm-images/app/1.zip", Body=body)

    out = fetch_artifact("s3://artifacts/microvm-images/app/1.zip", tmp_path / "a.zip", s3_endpoint_url=s3_endpoint)
    assert out.read_bytes() == body
    with pytest.raises(ArtifactNotFound, match="NoSuchKey"):
        fetch_artifact("s3://artifacts/missing.zip", tmp_path / "b.zip", s3_endpoint_url=s3_endpoint)
    with pytest.raises(ArtifactNotFound, match="NoSuchBucket"):
        fetch_artifact("s3://nobucket/x.zip", tmp_path / "b.zip", s3_endpoint_url=s3_endpoint)
    with pytest.raises(ArtifactLimitExceeded, match="over the artifact size cap of 10 bytes"):
        fetch_artifact(
            "s3://artifacts/microvm-images/app/1.zip", tmp_path / "b.zip", s3_endpoint_url=s3_endpoint, max_bytes=10
        )
    assert not (tmp_path / "b.zip").exists()


def test_s3_uri_needs_bucket_and_key(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedArtifactUri, match="must name a bucket and a key"):
        fetch_artifact("s3://bucket-only", tmp_path / "a.zip")
