"""Code-artifact uploads (``POST /ember/artifacts``) and which ``file://`` artifacts an account may build from."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

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
