"""``GET /ember/account``: the caller's account and key, its quotas under their refusal's names, and its usage only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from ember.api.context import Quotas
from ember.api.testing import ApiServer
from ember.console import create_app as create_console_app
from tests.unit.api.conftest import ACCOUNT_A, ACCOUNT_B, KEY_A, KEY_B, Api, send
from tests.unit.api.test_artifacts import a_zip, upload

PATH = "/ember/account"
QUOTAS = Quotas(
    max_microvms=4,
    max_memory_mib=4096,
    run_per_second=2.5,
    run_burst=7,
    max_images=3,
    max_artifacts=9,
    max_artifact_storage_bytes=1 << 30,
    max_concurrent_uploads=3,
)
NO_MICROVMS = {"PENDING": 0, "RUNNING": 0, "SUSPENDING": 0, "SUSPENDED": 0, "TERMINATING": 0, "TERMINATED": 0}
SNAPSHOT_BYTES = (1 << 20) + (2 << 20)
"""Memory plus disk snapshot bytes the fake image service records for each successful build."""


def account(api: Api, key: tuple[str, str] = KEY_A) -> dict[str, Any]:
    response = send(api, "GET", PATH, key=key)
    assert response.status == 200, response.body
    return response.json()


def _seed(api: Api) -> dict[str, str]:
    """Account A: images "web" (versions 1 and 2) and "jobs"; MicroVMs one RUNNING, one SUSPENDED, one
    TERMINATED; an upload. Account B: an image, two RUNNING MicroVMs and a bigger upload."""
    api.create_image("web")
    api.client.update_microvm_image(
        imageIdentifier="web",
        baseImageArn="arn:aws:lambda:us-east-1:aws:microvm-image:python-3.11",
        buildRoleArn="arn:aws:iam::111111111111:role/build",
        codeArtifact={"uri": "s3://ember-tests/app.zip"},
        resources=[{"minimumMemoryInMiB": 1024}],
    )
    api.create_image("jobs")
    running = api.run("web", imageVersion="1")["microvmId"]
    suspended = api.run("web", imageVersion="2")["microvmId"]
    ended = api.run("jobs")["microvmId"]
    api.client.suspend_microvm(microvmIdentifier=suspended)
    api.client.terminate_microvm(microvmIdentifier=ended)
    assert upload(api, a_zip("FROM python:3.11\n")).status == 200
    api.create_image("other", client=api.client_b)
    api.run("other", client=api.client_b)
    api.run("other", client=api.client_b)
    assert upload(api, a_zip("FROM python:3.11\n" + "# padding\n" * 500), key=KEY_B).status == 200
    return {"running": running, "suspended": suspended, "ended": ended}


def test_account_names_the_caller_and_every_quota(make_api: Callable[..., Api]) -> None:
    api = make_api(quotas=QUOTAS)
    doc = account(api)
    assert (doc["accountId"], doc["accessKeyId"]) == (ACCOUNT_A, KEY_A[0])
    assert doc["quotas"] == {
        "microvms": {
            "value": 4,
            "unit": "MicroVMs",
            "quotaCode": "ember-max-microvms",
            "error": "ServiceQuotaExceededException",
            "description": doc["quotas"]["microvms"]["description"],
        },
        "allocatedMemoryMiB": {
            "value": 4096,
            "unit": "MiB",
            "quotaCode": "L-CD1C0CC4",
            "error": "ServiceQuotaExceededException",
            "description": doc["quotas"]["allocatedMemoryMiB"]["description"],
        },
        "images": {
            "value": 3,
            "unit": "images",
            "quotaCode": "ember-max-images",
            "error": "ServiceQuotaExceededException",
            "description": doc["quotas"]["images"]["description"],
        },
        "runMicrovmCallsPerSecond": {
            "value": 2.5,
            "unit": "calls per second",
            "quotaCode": "L-535CA9B6",
            "error": "ThrottlingException",
            "description": doc["quotas"]["runMicrovmCallsPerSecond"]["description"],
        },
        "runMicrovmBurst": {
            "value": 7,
            "unit": "calls",
            "quotaCode": "L-535CA9B6",
            "error": "ThrottlingException",
            "description": doc["quotas"]["runMicrovmBurst"]["description"],
        },
        "uploadedArtifacts": {
            "value": 9,
            "unit": "zips",
            "quotaCode": "ember-max-artifacts",
            "error": "ServiceQuotaExceededException",
            "description": doc["quotas"]["uploadedArtifacts"]["description"],
        },
        "uploadedArtifactBytes": {
            "value": 1 << 30,
            "unit": "bytes",
            "quotaCode": "ember-max-artifact-storage-bytes",
            "error": "ServiceQuotaExceededException",
            "description": doc["quotas"]["uploadedArtifactBytes"]["description"],
        },
        "concurrentUploads": {
            "value": 3,
            "unit": "uploads",
            "quotaCode": "ember-max-concurrent-uploads",
            "error": "ThrottlingException",
            "description": doc["quotas"]["concurrentUploads"]["description"],
        },
    }
    assert all(quota["description"] for quota in doc["quotas"].values())
    assert doc["usage"] == {
        "microvmsByState": NO_MICROVMS,
        "microvms": 0,
        "allocatedMemoryMiB": 0,
        "images": 0,
        "imageVersions": 0,
        "buildsInProgress": 0,
        "uploadedArtifacts": 0,
        "uploadedArtifactBytes": 0,
        "concurrentUploads": 0,
        "storageBytes": {"uploadedArtifacts": 0, "imageSnapshots": 0},
    }


def test_usage_counts_the_callers_resources_only(make_api: Callable[..., Api]) -> None:
    api = make_api(quotas=QUOTAS)
    _seed(api)
    mine = account(api)["usage"]
    assert mine == {
        "microvmsByState": {**NO_MICROVMS, "RUNNING": 1, "SUSPENDED": 1, "TERMINATED": 1},
        "microvms": 2,
        "allocatedMemoryMiB": 512 + 1024,
        "images": 2,
        "imageVersions": 3,
        "buildsInProgress": 0,
        "uploadedArtifacts": 1,
        "uploadedArtifactBytes": len(a_zip("FROM python:3.11\n")),
        "concurrentUploads": 0,
        "storageBytes": {
            "uploadedArtifacts": len(a_zip("FROM python:3.11\n")),
            "imageSnapshots": 3 * SNAPSHOT_BYTES,
        },
    }
    theirs = account(api, KEY_B)
    assert (theirs["accountId"], theirs["accessKeyId"]) == (ACCOUNT_B, KEY_B[0])
    assert theirs["usage"]["microvmsByState"] == {**NO_MICROVMS, "RUNNING": 2}
    assert (theirs["usage"]["images"], theirs["usage"]["imageVersions"]) == (1, 1)
    assert theirs["usage"]["storageBytes"]["uploadedArtifacts"] > mine["storageBytes"]["uploadedArtifacts"]


def test_deleted_images_and_unfinished_builds(make_api: Callable[..., Api]) -> None:
    api = make_api(quotas=QUOTAS)
    api.create_image("gone")
    api.client.delete_microvm_image(imageIdentifier="gone")
    api.images.auto_succeed = False
    api.create_image("slow")
    usage = account(api)["usage"]
    assert (usage["images"], usage["imageVersions"], usage["buildsInProgress"]) == (1, 1, 1)
    assert usage["storageBytes"]["imageSnapshots"] == 0


def test_a_full_quota_is_what_the_refusal_names(make_api: Callable[..., Api]) -> None:
    api = make_api(quotas=Quotas(max_microvms=2, max_images=1))
    api.create_image("app")
    api.run("app")
    api.run("app")
    doc = account(api)
    assert doc["usage"]["microvms"] == doc["quotas"]["microvms"]["value"] == 2
    with pytest.raises(api.client.exceptions.ServiceQuotaExceededException) as refused:
        api.run("app")
    assert refused.value.response["quotaCode"] == doc["quotas"]["microvms"]["quotaCode"]
    assert doc["usage"]["images"] == doc["quotas"]["images"]["value"] == 1
    with pytest.raises(api.client.exceptions.ServiceQuotaExceededException) as refused:
        api.create_image("second")
    assert refused.value.response["quotaCode"] == doc["quotas"]["images"]["quotaCode"]


def test_account_needs_credentials_and_takes_only_get(api: Api) -> None:
    unsigned = send(api, "GET", PATH, key=None)
    assert (unsigned.status, unsigned.code) == (403, "AccessDeniedException")
    wrong = send(api, "GET", PATH, key=(KEY_A[0], "not-the-secret"))
    assert (wrong.status, wrong.code) == (403, "AccessDeniedException")
    posted = send(api, "POST", PATH)
    assert (posted.status, posted.code) == (405, "MethodNotAllowedException")


def test_a_console_session_gets_its_own_key_and_account(make_api: Callable[..., Api]) -> None:
    api = make_api()
    _seed(api)
    server = ApiServer(api.ctx, app_factory=create_console_app).start()
    try:
        browser = requests.Session()
        signed_in = browser.post(
            server.url + "/console/session", json={"accessKeyId": KEY_B[0], "secretAccessKey": KEY_B[1]}, timeout=10
        )
        assert signed_in.status_code == 200
        no_csrf = browser.get(server.url + PATH, timeout=10)
        assert (no_csrf.status_code, no_csrf.headers["x-amzn-ErrorType"]) == (403, "AccessDeniedException")
        doc = browser.get(server.url + PATH, headers={"X-Ember-Csrf": signed_in.json()["csrfToken"]}, timeout=10)
        assert doc.status_code == 200
        body = doc.json()
        assert (body["accountId"], body["accessKeyId"]) == (ACCOUNT_B, KEY_B[0])
        assert body["usage"]["microvmsByState"]["RUNNING"] == 2
        assert body["usage"]["microvmsByState"]["SUSPENDED"] == 0
    finally:
        server.stop()


def test_account_is_an_extension_in_the_openapi_document(api: Api) -> None:
    doc = requests.get(api.server.url + "/openapi.json", timeout=5).json()
    operation = doc["paths"][PATH]["get"]
    assert operation["operationId"] == "GetAccount" and operation["x-ember-extension"] is True


def test_a_full_upload_quota_is_what_the_refusal_names(make_api: Callable[..., Api]) -> None:
    api = make_api(quotas=Quotas(max_artifacts=1))
    assert upload(api, a_zip("FROM one\n")).status == 200
    doc = account(api)
    assert doc["usage"]["uploadedArtifacts"] == doc["quotas"]["uploadedArtifacts"]["value"] == 1
    refused = upload(api, a_zip("FROM two\n"))
    assert refused.status == 402
    assert refused.json()["quotaCode"] == doc["quotas"]["uploadedArtifacts"]["quotaCode"]
