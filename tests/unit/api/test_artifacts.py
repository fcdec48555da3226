"""Code-artifact uploads (``POST /ember/artifacts``) and which ``file://`` artifacts an account may build from."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import io
import os
import stat
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ember.api import artifacts
from ember.api.context import Quotas
from tests.unit.api.conftest import ACCOUNT_A, ACCOUNT_B, KEY_A, KEY_B, REGION, Api, Raw, image_request, send

PATH = "/ember/artifacts"
HASH_HEADER = "X-Ember-Content-SHA256"


def a_zip(text: str = "FROM python:3.11\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("Dockerfile", text)
    return buffer.getvalue()


def upload(api: Api, body: bytes, *, key: tuple[str, str] | None = KEY_A, digest: str | None = None,
           content_type: str = "application/zip", sign_hash: bool = True, extra: dict[str, str] | None = None) -> Raw:
    """POST the body signed the way the SDK signs it: over an empty payload, the body's hash in a signed header."""
    url = api.server.url + PATH
    headers = {"Content-Type": content_type, **(extra or {})}
    value = digest if digest is not None else hashlib.sha256(body).hexdigest()
    if sign_hash:
        headers[HASH_HEADER] = value
    request = AWSRequest(method="POST", url=url, data=b"", headers=headers)
    if key is not None:
        SigV4Auth(Credentials(*key), "lambda", REGION).add_auth(request)
    sent = dict(request.headers.items())
    if not sign_hash:
        sent[HASH_HEADER] = value
    response = requests.post(url, data=body, headers=sent, timeout=30)
    return Raw(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


def folder(api: Api, account: str) -> Path:
    assert api.ctx.artifacts_dir is not None
    return api.ctx.artifacts_dir / account


def leftovers(api: Api, account: str) -> list[str]:
    return sorted(p.name for p in folder(api, account).iterdir()) if folder(api, account).exists() else []


# ---------------------------------------------------------------- the upload route


def test_an_upload_is_kept_by_digest_privately_and_answers_its_uri(api: Api) -> None:
    body = a_zip()
    digest = hashlib.sha256(body).hexdigest()
    response = upload(api, body)
    assert response.status == 200, response.body
    stored = folder(api, ACCOUNT_A) / f"{digest}.zip"
    assert response.json() == {"uri": stored.as_uri(), "sha256": digest, "sizeBytes": len(body)}
    assert stored.read_bytes() == body
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder(api, ACCOUNT_A).stat().st_mode) == 0o700
    assert stat.S_IMODE(folder(api, ACCOUNT_A).parent.stat().st_mode) == 0o700
    again = upload(api, body)
    assert again.status == 200 and again.json()["uri"] == stored.as_uri()
    assert leftovers(api, ACCOUNT_A) == [f"{digest}.zip"]


def test_each_account_uploads_into_its_own_folder(api: Api) -> None:
    body = a_zip()
    uri_a = upload(api, body).json()["uri"]
    uri_b = upload(api, body, key=KEY_B).json()["uri"]
    assert f"/{ACCOUNT_A}/" in uri_a and f"/{ACCOUNT_B}/" in uri_b


def test_a_body_that_is_not_a_zip_is_refused(api: Api) -> None:
    response = upload(api, b"not a zip at all")
    assert (response.status, response.code) == (400, "ValidationException")
    assert response.json()["message"] == "request body: is not a zip file"
    assert leftovers(api, ACCOUNT_A) == []


def test_a_declared_length_over_the_cap_is_refused_before_reading(api: Api) -> None:
    from ember.images.artifact import MAX_ARTIFACT_BYTES

    url = api.server.url + PATH
    headers = {"Content-Type": "application/zip", HASH_HEADER: "0" * 64}
    request = AWSRequest(method="POST", url=url, data=b"", headers=headers)
    SigV4Auth(Credentials(*KEY_A), "lambda", REGION).add_auth(request)
    connection = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=10)
    try:
        connection.putrequest("POST", PATH)
        for name, value in request.headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(MAX_ARTIFACT_BYTES + 1))
        connection.endheaders()  # no body follows: the answer must come from the declared length alone
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert (response.status, response.headers["x-amzn-ErrorType"]) == (413, "RequestEntityTooLargeException")
    assert f"larger than the maximum {MAX_ARTIFACT_BYTES} bytes (512 MiB)".encode() in body
    assert leftovers(api, ACCOUNT_A) == []


def test_a_streamed_body_over_the_cap_is_cut_off(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ember.api.artifacts.MAX_ARTIFACT_BYTES", 1000)
    body = a_zip("FROM python:3.11\n" + "#" * 5000)
    response = upload(api, body)
    assert (response.status, response.code) == (413, "RequestEntityTooLargeException")
    assert "larger than the maximum 1000 bytes" in response.json()["message"]
    assert leftovers(api, ACCOUNT_A) == []


@pytest.mark.parametrize(
    ("case", "status", "code", "text"),
    [
        ("unsigned", 403, "AccessDeniedException", "missing Authorization header"),
        ("unknown key", 403, "AccessDeniedException", "is not known to this Ember server"),
        ("body swapped", 403, "AccessDeniedException", "the body does not match X-Ember-Content-SHA256"),
        ("hash not signed", 403, "AccessDeniedException", "X-Ember-Content-SHA256 must be a signed header"),
        ("no hash", 400, "ValidationException", "X-Ember-Content-SHA256: must be the body's SHA-256"),
        ("not zip type", 400, "ValidationException", "Content-Type: must be application/zip"),
    ],
)
def test_what_an_upload_is_refused_for(api: Api, case: str, status: int, code: str, text: str) -> None:
    body = a_zip()
    kwargs: dict[str, Any] = {
        "unsigned": {"key": None},
        "unknown key": {"key": ("AKIAEMBERNOBODY00001", "x" * 40)},
        "body swapped": {"digest": hashlib.sha256(a_zip("FROM debian:12\n")).hexdigest()},
        "hash not signed": {"sign_hash": False},
        "no hash": {"digest": "not-a-digest"},
        "not zip type": {"content_type": "application/x-www-form-urlencoded"},
    }[case]
    response = upload(api, body, **kwargs)
    assert (response.status, response.code) == (status, code), response.body
    assert text in response.json()["message"]
    assert leftovers(api, ACCOUNT_A) == []


def test_a_signature_over_the_real_body_is_not_what_the_route_checks(api: Api) -> None:
    """Signed like a JSON route (payload hash of the body), the upload is refused: no body is read unsigned."""
    body = a_zip()
    response = send(api, "POST", PATH, body, headers={"Content-Type": "application/zip",
                                                        HASH_HEADER: hashlib.sha256(body).hexdigest()})
    assert (response.status, response.code) == (403, "AccessDeniedException")


def test_the_route_is_in_the_openapi_document() -> None:
    from ember.api.openapi import openapi_document

    operation = openapi_document()["paths"][PATH]["post"]
    assert operation["operationId"] == "UploadCodeArtifact" and operation["x-ember-extension"] is True
    assert list(operation["requestBody"]["content"]) == ["application/zip"]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [(HASH_HEADER, "header")]
    assert "413" in operation["responses"]


# ---------------------------------------------------------------- quotas and deletion


def account_usage(api: Api, key: tuple[str, str] = KEY_A) -> dict[str, Any]:
    response = send(api, "GET", "/ember/account", key=key)
    assert response.status == 200, response.body
    return response.json()["usage"]


def open_upload(api: Api, body: bytes, *, sent_bytes: int) -> http.client.HTTPConnection:
    """An upload of ``body`` (its Content-Length declared) that has sent only ``sent_bytes`` so far."""
    headers = {"Content-Type": "application/zip", HASH_HEADER: hashlib.sha256(body).hexdigest()}
    request = AWSRequest(method="POST", url=api.server.url + PATH, data=b"", headers=headers)
    SigV4Auth(Credentials(*KEY_A), "lambda", REGION).add_auth(request)
    connection = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=10)
    connection.putrequest("POST", PATH)
    for name, value in request.headers.items():
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    connection.send(body[:sent_bytes])
    return connection


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def fds_into(path: Path) -> list[str]:
    """This process's open files under ``path`` (the test server runs in this process)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(path)):
                found.append(target)
    return found


def test_uploads_past_the_count_quota_are_refused_until_one_is_deleted(make_api: Callable[..., Api]) -> None:
    api = make_api(quotas=Quotas(max_artifacts=1))
    first = a_zip("FROM one\n")
    assert upload(api, first).status == 200
    refused = upload(api, a_zip("FROM two\n"))
    assert (refused.status, refused.code) == (402, "ServiceQuotaExceededException")
    assert refused.json()["quotaCode"] == "ember-max-artifacts"
    assert "the account keeps 1 uploaded code artifacts (uploads in flight included), the maximum is 1" in (
        refused.json()["message"]
    )
    assert upload(api, first).status == 200  # the same zip again: kept once, counted once
    assert upload(api, a_zip("FROM two\n"), key=KEY_B).status == 200  # B has its own quota
    deleted = send(api, "DELETE", f"{PATH}/{hashlib.sha256(first).hexdigest()}")
    assert (deleted.status, deleted.body) == (204, b"")
    assert upload(api, a_zip("FROM two\n")).status == 200
    assert len(leftovers(api, ACCOUNT_A)) == 1


def test_an_upload_past_the_byte_quota_is_refused_by_its_length_and_leaves_nothing(
    make_api: Callable[..., Api],
) -> None:
    first, second = a_zip("FROM one\n"), a_zip("FROM two\n" + "#" * 200)
    api = make_api(quotas=Quotas(max_artifact_storage_bytes=len(first) + len(second) - 1))
    assert upload(api, first).status == 200
    refused = upload(api, second)
    assert (refused.status, refused.code) == (402, "ServiceQuotaExceededException")
    assert refused.json()["quotaCode"] == "ember-max-artifact-storage-bytes"
    message = refused.json()["message"]
    assert f"an upload of {len(second)} bytes (its Content-Length) brings" in message
    assert f"to {len(first) + len(second)} bytes, more than the maximum {len(first) + len(second) - 1} bytes" in message
    assert leftovers(api, ACCOUNT_A) == [f"{hashlib.sha256(first).hexdigest()}.zip"]
    assert upload(api, first).status == 200  # a re-upload of a kept zip fits whatever is left


def test_a_streamed_upload_is_cut_off_when_it_passes_the_byte_quota(make_api: Callable[..., Api]) -> None:
    body = a_zip("FROM python:3.11\n" + "#" * 5000)
    api = make_api(quotas=Quotas(max_artifact_storage_bytes=1000))
    headers = {"Content-Type": "application/zip", HASH_HEADER: hashlib.sha256(body).hexdigest()}
    request = AWSRequest(method="POST", url=api.server.url + PATH, data=b"", headers=headers)
    SigV4Auth(Credentials(*KEY_A), "lambda", REGION).add_auth(request)
    chunks = (body[i : i + 512] for i in range(0, len(body), 512))  # no Content-Length: chunked
    response = requests.post(api.server.url + PATH, data=chunks, headers=dict(request.headers.items()), timeout=30)
    assert (response.status_code, response.headers["x-amzn-ErrorType"]) == (402, "ServiceQuotaExceededException")
    assert "bytes received, brings the account's uploaded code artifacts" in response.json()["message"]
    assert leftovers(api, ACCOUNT_A) == []


def test_a_third_upload_at_once_is_throttled_and_dropped_uploads_leave_nothing(make_api: Callable[..., Api]) -> None:
    api = make_api(quotas=Quotas(max_concurrent_uploads=2))
    bodies = [a_zip(f"FROM {n}\n" + "#" * 4000) for n in range(2)]
    held = [open_upload(api, body, sent_bytes=100) for body in bodies]
    try:
        eventually(lambda: account_usage(api)["concurrentUploads"] == 2, "both uploads under way")
        eventually(lambda: len(leftovers(api, ACCOUNT_A)) == 2, "both temp files created")
        usage = account_usage(api)
        assert (usage["uploadedArtifacts"], usage["uploadedArtifactBytes"]) == (2, sum(map(len, bodies)))
        assert usage["storageBytes"]["uploadedArtifacts"] == 0
        refused = upload(api, a_zip())
        assert (refused.status, refused.code) == (429, "ThrottlingException")
        assert refused.headers["retry-after"] == "5"
        assert refused.json()["quotaCode"] == "ember-max-concurrent-uploads"
        assert upload(api, a_zip(), key=KEY_B).status == 200
    finally:
        for connection in held:
            connection.close()  # the clients go away part-way
    eventually(lambda: account_usage(api)["concurrentUploads"] == 0, "dropped uploads ended")
    eventually(lambda: leftovers(api, ACCOUNT_A) == [], "temp files removed")
    assert fds_into(folder(api, ACCOUNT_A)) == []
    assert upload(api, a_zip()).status == 200


def test_an_upload_cancelled_by_a_stopping_server_leaves_nothing(make_api: Callable[..., Api]) -> None:
    api = make_api()
    held = open_upload(api, a_zip("#" * 4000), sent_bytes=100)
    try:
        eventually(lambda: any(n.endswith(".part") for n in leftovers(api, ACCOUNT_A)), "the upload under way")
        api.server.stop()  # cancels the handler still reading the body
    finally:
        held.close()
    assert leftovers(api, ACCOUNT_A) == []
    assert fds_into(folder(api, ACCOUNT_A)) == []


def test_delete_removes_only_the_callers_own_upload(api: Api) -> None:
    body = a_zip()
    sha = hashlib.sha256(body).hexdigest()
    upload(api, body, key=KEY_B)
    missing = send(api, "DELETE", f"{PATH}/{sha}")
    assert (missing.status, missing.code) == (404, "ResourceNotFoundException")
    assert missing.json()["message"] == f"this account keeps no uploaded artifact with SHA-256 {sha}"
    assert leftovers(api, ACCOUNT_B) == [f"{sha}.zip"]
    malformed = send(api, "DELETE", f"{PATH}/{sha.upper()}")
    assert (malformed.status, malformed.code) == (400, "ValidationException")
    assert malformed.json()["message"].startswith("sha256: ")
    assert send(api, "DELETE", f"{PATH}/..%2F{ACCOUNT_B}%2F{sha}.zip").status == 400
    unsigned = send(api, "DELETE", f"{PATH}/{sha}", key=None)
    assert (unsigned.status, unsigned.code) == (403, "AccessDeniedException")
    assert (send(api, "DELETE", f"{PATH}/{sha}", key=KEY_B).status) == 204
    assert leftovers(api, ACCOUNT_B) == []
    assert account_usage(api, KEY_B)["uploadedArtifacts"] == 0


def test_a_build_from_a_deleted_upload_keeps_its_own_copy(tmp_path: Path) -> None:
    """Builds copy the zip when they fetch it (``fetch_artifact``), so deleting the upload afterwards is safe."""
    from ember.images.artifact import fetch_artifact

    root = tmp_path / "artifacts" / ACCOUNT_A
    root.mkdir(parents=True)
    kept = root / "a.zip"
    kept.write_bytes(a_zip())
    copy = fetch_artifact(kept.as_uri(), tmp_path / "build" / "artifact.zip", file_root=root)
    kept.unlink()
    assert zipfile.is_zipfile(copy)


async def test_a_cancelled_temp_file_creation_leaves_no_file_or_fd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    real_mkstemp = tempfile.mkstemp

    def slow_mkstemp(*args: Any) -> tuple[int, str]:
        entered.set()
        release.wait(10)
        return real_mkstemp(*args)

    monkeypatch.setattr("ember.api.artifacts.tempfile.mkstemp", slow_mkstemp)
    task = asyncio.create_task(artifacts._make_temp(tmp_path, ".upload-test-"))
    await asyncio.to_thread(entered.wait, 10)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    eventually_async = time.monotonic() + 10
    while list(tmp_path.iterdir()) or fds_into(tmp_path):
        assert time.monotonic() < eventually_async, (list(tmp_path.iterdir()), fds_into(tmp_path))
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------- file:// artifacts in image requests


def create(api: Api, uri: str, client: Any = None, name: str = "app") -> Any:
    return api.create_image(name, client=client, codeArtifact={"uri": uri})


def test_an_own_upload_builds_and_the_build_is_held_to_the_own_folder(api: Api) -> None:
    uri = upload(api, a_zip()).json()["uri"]
    created = create(api, uri)
    assert created["codeArtifact"] == {"uri": uri}
    (build_id,) = api.images.scheduled
    assert api.images.file_roots[build_id] == folder(api, ACCOUNT_A)
    api.client.update_microvm_image(imageIdentifier="app", baseImageArn=image_request("x")["baseImageArn"],
                                    buildRoleArn=image_request("x")["buildRoleArn"], codeArtifact={"uri": uri})
    assert api.images.file_roots[api.images.scheduled[-1]] == folder(api, ACCOUNT_A)


def test_remote_uris_are_not_held_to_a_folder(api: Api) -> None:
    create(api, "s3://bucket/app.zip")
    create(api, "https://example.com/app.zip", name="web")
    assert list(api.images.file_roots.values()) == [None, None]


def _refused(api: Api, uri: str, client: Any = None, *, update: bool = False) -> str:
    client = client or api.client
    with pytest.raises(client.exceptions.ValidationException) as info:
        if update:
            client.update_microvm_image(imageIdentifier="app", baseImageArn=image_request("x")["baseImageArn"],
                                        buildRoleArn=image_request("x")["buildRoleArn"], codeArtifact={"uri": uri})
        else:
            create(api, uri, client=client)
    message = str(info.value.response["Error"]["Message"])
    assert message.startswith("codeArtifact.uri: ")
    return message


def test_another_accounts_upload_is_refused(api: Api) -> None:
    uri_b = upload(api, a_zip(), key=KEY_B).json()["uri"]
    message = _refused(api, uri_b)
    assert "is not an artifact this account uploaded" in message
    assert "must be uploaded with POST /ember/artifacts (or `ember image build`)" in message
    assert api.images.scheduled == []


@pytest.mark.parametrize("uri", ["file:///etc/passwd", "/etc/passwd", "file:///etc/ssh/nothing-here.zip",
                                 "file://localhost/etc/hostname"])
def test_host_paths_are_refused_alike_whether_or_not_they_exist(api: Api, uri: str) -> None:
    assert "is not an artifact this account uploaded" in _refused(api, uri)


def test_dot_dot_out_of_the_own_folder_is_refused(api: Api) -> None:
    uri_b = Path(upload(api, a_zip(), key=KEY_B).json()["uri"].removeprefix("file://"))
    upload(api, a_zip())
    sneaky = f"file://{folder(api, ACCOUNT_A)}/../{ACCOUNT_B}/{uri_b.name}"
    encoded = f"file://{folder(api, ACCOUNT_A)}/%2e%2e/{ACCOUNT_B}/{uri_b.name}"
    for uri in (sneaky, encoded):
        assert "is not an artifact this account uploaded" in _refused(api, uri)


def test_a_symlink_out_of_the_own_folder_is_refused(api: Api) -> None:
    uri_b = Path(upload(api, a_zip(), key=KEY_B).json()["uri"].removeprefix("file://"))
    upload(api, a_zip())
    link = folder(api, ACCOUNT_A) / "link.zip"
    os.symlink(uri_b, link)
    assert "is not an artifact this account uploaded" in _refused(api, link.as_uri())
    os.symlink(folder(api, ACCOUNT_B), folder(api, ACCOUNT_A) / "b")
    assert "is not an artifact this account uploaded" in _refused(api, f"file://{folder(api, ACCOUNT_A)}/b/x.zip")


def test_a_missing_file_in_the_own_folder_is_refused_naming_the_route(api: Api) -> None:
    upload(api, a_zip())
    message = _refused(api, (folder(api, ACCOUNT_A) / ("0" * 64 + ".zip")).as_uri())
    assert "this account has no upload there; upload the zip with POST /ember/artifacts" in message


def test_update_is_checked_too(api: Api) -> None:
    create(api, "s3://bucket/app.zip")
    assert "is not an artifact this account uploaded" in _refused(api, "file:///etc/passwd", update=True)


def test_a_server_without_an_artifacts_folder_refuses_every_file_uri(make_api: Any) -> None:
    api = make_api(artifacts_dir=None)
    assert "is not an artifact this account uploaded" in _refused(api, "file:///srv/app.zip")
    response = upload(api, a_zip())
    assert (response.status, response.code) == (400, "ValidationException")
