"""SigV4: what the SDK signs verifies when botocore recomputes the signature from the request as received."""

from __future__ import annotations

import re

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from ember.sdk import Client

from . import samples
from .conftest import KEY_ID, REGION, SECRET
from .fakes import FakeServer, Recorded, Reply

AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/"
                  r"aws4_request, SignedHeaders=(?P<signed>[^,]+), Signature=(?P<sig>[0-9a-f]{64})")


def recompute(request: Recorded, secret: str) -> tuple[str, str]:
    """(signature sent, signature botocore computes from what arrived) for ``request``."""
    match = AUTH.fullmatch(request.headers["Authorization"])
    assert match is not None, request.headers["Authorization"]
    lowered = {k.lower(): v for k, v in request.headers.items()}
    headers = {name: lowered[name] for name in match["signed"].split(";")}
    aws_request = AWSRequest(method=request.method, url=f"http://{lowered['host']}{request.target}",
                             data=request.body, headers=headers)
    aws_request.context["timestamp"] = lowered["x-amz-date"]
    signer = SigV4Auth(BotoCredentials(match["key"], secret), match["service"], match["region"])
    canonical = signer.canonical_request(aws_request)
    return match["sig"], signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)


@pytest.fixture
def answered(server: FakeServer) -> FakeServer:
    arn = f"arn:aws:lambda:{REGION}:{samples.ACCOUNT}:microvm:{samples.vm_id(1)}"
    detail = Reply(200, samples.microvm(samples.vm_id(1)))
    server.route("GET", f"/2025-09-09/microvms/{arn.replace(':', '%3A')}", detail)
    server.route("GET", "/2025-09-09/microvms", Reply(200, {"items": []}))
    server.route("POST", "/2025-09-09/microvms", Reply(200, samples.microvm(samples.vm_id(2), "PENDING")))
    return server


def test_signed_requests_verify_with_botocore_recomputation(answered: FakeServer, client: Client) -> None:
    arn = f"arn:aws:lambda:{REGION}:{samples.ACCOUNT}:microvm:{samples.vm_id(1)}"
    client.microvms.get(arn)  # a path parameter with ':' (encoded %3A, double-encoded when signing)
    client.microvms.list(image="ci image/1")  # a query with a space and a slash
    client.microvms.run("ci", idle=300, payload='{"tenant": "ä"}')  # a JSON body with non-ASCII text
    assert len(answered.requests) == 3
    for request in answered.requests:
        sent, expected = recompute(request, SECRET)
        assert sent == expected, request.target


def test_a_wrong_secret_does_not_verify(answered: FakeServer, client: Client) -> None:
    client.microvms.list()
    sent, expected = recompute(answered.requests[0], SECRET + "x")
    assert sent != expected


def test_scope_names_the_key_region_and_service_lambda(answered: FakeServer, client: Client) -> None:
    client.microvms.list()
    match = AUTH.fullmatch(answered.requests[0].headers["Authorization"])
    assert match is not None
    assert (match["key"], match["region"], match["service"]) == (KEY_ID, REGION, "lambda")
    assert "host" in match["signed"].split(";") and "x-amz-date" in match["signed"].split(";")


def test_signature_is_accepted_by_the_api_verifier(answered: FakeServer, client: Client) -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    from ember.api.auth import SignedRequest, parse_authorization, verify

    client.microvms.run("ci", payload="x y")
    client.microvms.list(image="a:b")
    for request in answered.requests:
        headers = CIMultiDictProxy(CIMultiDict(request.headers))
        signed = SignedRequest(request.method, request.target, headers, request.body)
        verify(signed, parse_authorization(headers["Authorization"]), SECRET)


def test_path_parameters_are_percent_encoded_like_botocore(answered: FakeServer, client: Client) -> None:
    arn = f"arn:aws:lambda:{REGION}:{samples.ACCOUNT}:microvm:{samples.vm_id(1)}"
    client.microvms.get(arn)
    assert answered.requests[0].target == "/2025-09-09/microvms/" + arn.replace(":", "%3A")


def test_session_token_is_sent_and_signed(server: FakeServer) -> None:
    server.route("GET", "/2025-09-09/microvms", Reply(200, {"items": []}))
    with Client(endpoint=server.url, access_key_id=KEY_ID, secret_access_key=SECRET, session_token="tok") as c:
        c.microvms.list()
    request = server.requests[0]
    assert request.headers["X-Amz-Security-Token"] == "tok"
    sent, expected = recompute(request, SECRET)
    assert sent == expected
