"""Code artifacts from the client: a folder zipped (build args applied) and uploaded with a signed content hash."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from ember.sdk import AsyncClient, Client, errors
from ember.sdk._artifacts import CONTENT_SHA256_HEADER, make_local_zip, passthrough_uri
from ember.sdk._http import SyncTransport
from ember.sdk.config import Credentials

from .conftest import KEY_ID, SECRET
from .fakes import FakeServer, Recorded, Reply, error

URI = "file:///srv/ember/artifacts/111111111111/x.zip"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    d = tmp_path / "app"
    (d / ".git").mkdir(parents=True)
    (d / ".git" / "HEAD").write_text("ref")
    (d / "Dockerfile").write_text("FROM python:3.11-slim\nARG GREETING=hi\narg  level\nCOPY app.py /app.py\n")
    (d / "app.py").write_text("print('x')\n")
    return d


def _answer(request: Recorded) -> Reply:
    digest = hashlib.sha256(request.body).hexdigest()
    return Reply(200, {"uri": URI, "sha256": digest, "sizeBytes": len(request.body)})


def test_a_folder_is_zipped_without_git(app_dir: Path, tmp_path: Path) -> None:
    out = make_local_zip(app_dir, tmp_path)
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["Dockerfile", "app.py"]


def test_build_args_are_written_into_the_dockerfile(app_dir: Path, tmp_path: Path) -> None:
    out = make_local_zip(app_dir, tmp_path, {"GREETING": "hello world", "level": "3"})
    with zipfile.ZipFile(out) as z:
        text = z.read("Dockerfile").decode()
        assert z.read("app.py") == b"print('x')\n"
    assert 'ARG GREETING="hello world"\n' in text and "arg  level=3\n" in text


def test_an_undeclared_build_arg_is_refused(app_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="build arg NOPE is not declared"):
        make_local_zip(app_dir, tmp_path, {"NOPE": "1"})


def test_a_zip_is_copied_and_a_uri_passed_through(app_dir: Path, tmp_path: Path) -> None:
    from ember.images.artifact import make_zip

    z = make_zip(app_dir, tmp_path / "in.zip")
    (tmp_path / "out").mkdir()
    assert make_local_zip(z, tmp_path / "out").read_bytes() == z.read_bytes()
    assert passthrough_uri("s3://bucket/key.zip") == "s3://bucket/key.zip"
    assert passthrough_uri(str(z)) is None
    with pytest.raises(errors.ConfigurationError, match="build args need a local folder or zip"):
        passthrough_uri("https://example.com/a.zip", {"A": "1"})


def test_a_missing_or_odd_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="does not exist"):
        make_local_zip(tmp_path / "missing", tmp_path)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(errors.ConfigurationError, match="neither a folder nor a zip"):
        make_local_zip(tmp_path / "notes.txt", tmp_path)


def test_upload_streams_the_zip_with_a_signed_content_hash(server: FakeServer, client: Client, app_dir: Path) -> None:
    server.route("POST", "/ember/artifacts", _answer)
    seen: list[tuple[int, int]] = []
    result = client.images.upload(app_dir, on_progress=lambda sent, total: seen.append((sent, total)))
    (request,) = server.requests
    digest = hashlib.sha256(request.body).hexdigest()
    assert result.uri == URI and result.sha256 == digest and result.size_bytes == len(request.body)
    assert request.headers["Content-Type"] == "application/zip"
    assert request.headers[CONTENT_SHA256_HEADER] == digest
    signed = request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert CONTENT_SHA256_HEADER.lower() in signed and "content-type" in signed
    with zipfile.ZipFile(io.BytesIO(request.body)) as z:
        assert "Dockerfile" in z.namelist()
    assert seen[0] == (0, len(request.body)) and seen[-1] == (len(request.body), len(request.body))


def test_the_signature_covers_an_empty_payload(server: FakeServer, client: Client, app_dir: Path) -> None:
    """The server verifies the signature before reading the body, so the client signs as if it were empty."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    server.route("POST", "/ember/artifacts", _answer)
    client.images.upload(app_dir)
    (request,) = server.requests
    names = request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {name: request.headers[next(k for k in request.headers if k.lower() == name)] for name in names}
    rebuilt = AWSRequest(method="POST", url=server.url + "/ember/artifacts", data=b"", headers=headers)
    rebuilt.context["timestamp"] = request.headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(KEY_ID, SECRET), "lambda", "us-east-1")
    expected = signer.signature(signer.string_to_sign(rebuilt, signer.canonical_request(rebuilt)), rebuilt)
    assert request.headers["Authorization"].endswith(f"Signature={expected}")


def test_build_uploads_first_and_passes_the_uri(server: FakeServer, client: Client, app_dir: Path) -> None:
    from . import samples

    server.route("POST", "/ember/artifacts", _answer)
    server.route("POST", "/2025-09-09/microvm-images", Reply(201, samples.created()))
    client.images.create("ci", app_dir, build_args={"GREETING": "yo"})
    upload, create = server.requests
    assert upload.path == "/ember/artifacts" and create.json()["codeArtifact"] == {"uri": URI}
    with zipfile.ZipFile(io.BytesIO(upload.body)) as z:
        assert "ARG GREETING=yo" in z.read("Dockerfile").decode()


def test_a_refused_upload_raises_the_servers_error(server: FakeServer, client: Client, app_dir: Path) -> None:
    server.route("POST", "/ember/artifacts", error(413, "RequestEntityTooLargeException", "larger than 536870912"))
    with pytest.raises(errors.ApiError, match="larger than 536870912") as info:
        client.images.upload(app_dir)
    assert info.value.status == 413


def test_a_failed_connection_is_retried(server: FakeServer, app_dir: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    server.route("POST", "/ember/artifacts", _answer)
    calls = []
    real = httpx.Client.request

    def flaky(self: httpx.Client, *args: object, **kwargs: object) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            list(kwargs["content"])  # type: ignore[call-overload]  # the body went out, then the link broke
            raise httpx.ConnectError("reset")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpx.Client, "request", flaky)
    monkeypatch.setattr("ember.sdk._http.backoff", lambda attempt, error=None: 0.0 if attempt < 3 else None)
    transport = SyncTransport(server.url, "us-east-1", Credentials(KEY_ID, SECRET))
    try:
        assert transport.upload(make_local_zip(app_dir, tmp_path)).uri == URI
    finally:
        transport.close()
    assert len(calls) == 2 and len(server.requests) == 1


async def test_async_upload(server: FakeServer, app_dir: Path) -> None:
    server.route("POST", "/ember/artifacts", _answer)
    async with AsyncClient(endpoint=server.url, access_key_id=KEY_ID, secret_access_key=SECRET) as aclient:
        result = await aclient.images.upload(app_dir)
    (request,) = server.requests
    assert result.sha256 == hashlib.sha256(request.body).hexdigest() == request.headers[CONTENT_SHA256_HEADER]
