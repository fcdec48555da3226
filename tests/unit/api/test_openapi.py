"""The OpenAPI document: generated from the route table; schemathesis finds no 500 against a running app."""

from __future__ import annotations

from typing import Any

import hypothesis
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from ember.api.openapi import openapi_document
from ember.api.routes import ROUTES
from tests.unit.api.conftest import KEY_A, REGION, SHELL, Api

EXAMPLES_PER_OPERATION = 12
"""Small on purpose: the whole fuzz run stays well under a minute."""

schemathesis.serializer.alias("application/zip", "application/octet-stream")  # the artifact upload's raw body


class SigV4(requests.auth.AuthBase):
    """Sign a ``requests`` request with botocore's SigV4 (service ``lambda``)."""

    def __init__(self, key: tuple[str, str]) -> None:
        self.credentials = Credentials(*key)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        aws = AWSRequest(method=request.method, url=request.url, data=body.encode() if isinstance(body, str) else body)
        SigV4Auth(self.credentials, "lambda", REGION).add_auth(aws)
        for name in ("Authorization", "X-Amz-Date"):
            request.headers[name] = aws.headers[name]
        return request


def test_document_has_every_route_with_its_status_and_the_security_scheme() -> None:
    doc = openapi_document()
    for route in ROUTES:
        operation = doc["paths"][route.path][route.method.lower()]
        assert operation["operationId"] == route.operation
        assert str(route.status) in operation["responses"]
    assert doc["components"]["securitySchemes"]["sigv4"]["description"].startswith("AWS Signature Version 4")
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    logs = doc["paths"]["/2025-09-09/microvms/{microvmIdentifier}/logs"]["get"]
    assert logs["x-ember-extension"] is True
    assert [p["name"] for p in logs["parameters"]] == ["microvmIdentifier", "since", "follow"]


def test_request_bodies_leave_out_path_and_query_members() -> None:
    doc = openapi_document()
    body = doc["paths"]["/2025-09-09/microvm-images/{imageIdentifier}"]["put"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert "imageIdentifier" not in schema["properties"]
    assert set(schema["required"]) == {"baseImageArn", "buildRoleArn", "codeArtifact"}
    untag = doc["paths"]["/2017-03-31/tags/{Resource}"]["delete"]
    assert "requestBody" not in untag
    assert {p["name"]: p["in"] for p in untag["parameters"]} == {"Resource": "path", "tagKeys": "query"}


def test_fuzzing_every_operation_finds_no_server_error(api: Api) -> None:
    api.create_image("app")
    api.run("app", ingressNetworkConnectors=[SHELL])
    schema = schemathesis.openapi.from_dict(openapi_document())
    session = requests.Session()
    session.auth = SigV4(KEY_A)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(ROUTES) + 2
    strategy = st.sampled_from(operations).flatmap(lambda op: op.as_strategy())
    seen: list[str] = []

    @given(case=strategy)
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION * len(operations),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    def fuzz(case: Any) -> None:
        if case.operation.path.endswith("/logs") and case.query:
            case.query.pop("follow", None)  # a follow stream waits for its MicroVM to end
        response = case.call(base_url=api.server.url, session=session, timeout=10)
        seen.append(f"{case.method} {case.path} {response.status_code}")
        case.validate_response(response, checks=[not_a_server_error])

    fuzz()
    assert not [line for line in seen if line.endswith(" 500")]
    assert any(line.endswith(" 200") or line.endswith(" 201") for line in seen)
