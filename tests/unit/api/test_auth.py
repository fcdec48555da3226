"""SigV4: botocore-signed requests pass; missing, malformed, unknown-key, skewed and tampered ones are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from ember.api import auth
from ember.contract.errors import AccessDeniedException
from tests.unit.api.conftest import KEY_A, Api, make_client, send

LIST = "/2025-09-09/microvm-images"


def test_botocore_signed_request_is_accepted(api: Api) -> None:
    assert api.client.list_microvm_images()["items"] == []


def test_signed_query_string_with_encoded_characters_is_accepted(api: Api) -> None:
    api.create_image("a-b_c")
    assert [i["name"] for i in api.client.list_microvm_images(nameFilter="b_c", maxResults=5)["items"]] == ["a-b_c"]


def test_missing_authorization_is_access_denied(api: Api) -> None:
    response = send(api, "GET", LIST, key=None)
    assert (response.status, response.code) == (403, "AccessDeniedException")
    assert "missing Authorization" in response.json()["message"]


def test_malformed_authorization_is_access_denied(api: Api) -> None:
    response = send(api, "GET", LIST, headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, key=None)
    assert response.status == 403
    assert "malformed Authorization" in response.json()["message"]


def test_unknown_access_key_is_refused_through_botocore(api: Api) -> None:
    client = make_client(api.server.url, ("AKIANOSUCHKEY0000000", "whatever"))
    with pytest.raises(client.exceptions.AccessDeniedException, match="not known to this Ember server"):
        client.list_microvm_images()


def test_wrong_secret_is_a_signature_mismatch(api: Api) -> None:
    client = make_client(api.server.url, (KEY_A[0], "not-the-secret"))
    with pytest.raises(client.exceptions.AccessDeniedException, match="signature does not match"):
        client.list_microvm_images()


@pytest.mark.parametrize("minutes", [-16, 16])
def test_request_signed_more_than_15_minutes_away_is_refused(api: Api, minutes: int) -> None:
    response = send(api, "GET", LIST, when=datetime.now(UTC) + timedelta(minutes=minutes))
    assert response.status == 403
    assert "the maximum difference is 900 s" in response.json()["message"]


def test_request_signed_14_minutes_ago_is_accepted(api: Api) -> None:
    assert send(api, "GET", LIST, when=datetime.now(UTC) - timedelta(minutes=14)).status == 200


def test_signed_header_changed_after_signing_is_refused(api: Api) -> None:
    def tamper(headers: dict[str, str]) -> None:
        headers["X-Amz-Date"] = headers["X-Amz-Date"][:-3] + "00Z"

    response = send(api, "POST", "/2025-09-09/microvms", {"imageIdentifier": "x"}, tamper=tamper)
    assert response.status == 403


def test_body_not_matching_declared_sha256_is_refused(api: Api) -> None:
    response = send(
        api, "POST", "/2025-09-09/microvms", {"imageIdentifier": "x"}, headers={"X-Amz-Content-SHA256": "0" * 64}
    )
    assert response.status == 403
    assert "X-Amz-Content-SHA256" in response.json()["message"]


def test_credential_scope_for_another_service_is_refused() -> None:
    parsed = auth.parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AK/20250909/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, "
        "Signature=" + "a" * 64
    )
    headers = CIMultiDictProxy(CIMultiDict({"Host": "h", "X-Amz-Date": "20250909T000000Z"}))
    request = auth.SignedRequest("GET", "/", headers, b"")
    with pytest.raises(AccessDeniedException, match="service 's3'"):
        auth.verify(request, parsed, "secret", now=datetime(2025, 9, 9, tzinfo=UTC))


def test_parse_authorization_splits_the_credential_scope() -> None:
    parsed = auth.parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AKID/20250909/eu-west-1/lambda/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "A" * 64
    )
    assert (parsed.access_key_id, parsed.date, parsed.region, parsed.service) == (
        "AKID",
        "20250909",
        "eu-west-1",
        "lambda",
    )
    assert parsed.signed_headers == ("host", "x-amz-date")
    assert parsed.signature == "a" * 64


def test_other_schemes_are_named_in_the_refusal() -> None:
    with pytest.raises(AccessDeniedException, match="only AWS4-HMAC-SHA256"):
        auth.parse_authorization("Bearer abc")
