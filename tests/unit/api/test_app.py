"""The application: the route table matches the service model, plus the unauthenticated and fallback routes."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from ember.api.routes import ROUTES
from ember.errors import CapacityError
from tests.unit.api.conftest import Api, send

MODEL = "data/lambda-microvms/2025-09-09/service-2.json.gz"


def _service_model() -> dict[str, Any]:
    with resources.files("microvm").joinpath(MODEL).open("rb") as raw, gzip.open(raw) as unzipped:
        return json.load(unzipped)


def test_routes_are_exactly_the_service_models_operations() -> None:
    operations = _service_model()["operations"]
    served = {r.operation: (r.method, r.path, r.status) for r in ROUTES if not r.extension}
    modelled = {
        name: (op["http"]["method"], op["http"]["requestUri"], op["http"].get("responseCode", 200))
        for name, op in operations.items()
    }
    assert served == modelled
    assert len(served) == 24


def test_query_members_are_the_models() -> None:
    shapes = _service_model()["shapes"]
    for route in ROUTES:
        if route.extension:
            continue
        op = _service_model()["operations"][route.operation]
        members = shapes[op["input"]["shape"]]["members"]
        query = {m.get("locationName", name): name for name, m in members.items() if m.get("location") == "querystring"}
        assert dict(route.query) == query, route.operation


def test_healthz_and_openapi_need_no_credentials(api: Api) -> None:
    assert requests.get(api.server.url + "/healthz", timeout=5).json() == {"status": "ok"}
    doc = requests.get(api.server.url + "/openapi.json", timeout=5).json()
    assert doc["openapi"].startswith("3.1")


def test_unknown_route_and_method(api: Api) -> None:
    missing = send(api, "GET", "/2025-09-09/nothing")
    assert (missing.status, missing.code) == (404, "UnknownOperationException")
    wrong = send(api, "PATCH", "/2025-09-09/microvms")
    assert (wrong.status, wrong.code) == (405, "MethodNotAllowedException")


def test_body_must_be_a_json_object(api: Api) -> None:
    bad = send(api, "POST", "/2025-09-09/microvms", b"{not json")
    assert (bad.status, bad.code) == (400, "ValidationException")
    assert bad.json()["message"].startswith("request body: is not valid JSON")
    listed = send(api, "POST", "/2025-09-09/microvms", b"[1]")
    assert listed.json()["message"] == "request body: expected a JSON object, got list"


def test_unknown_body_member_is_named(api: Api) -> None:
    response = send(api, "POST", "/2025-09-09/microvms", {"imageIdentifier": "app", "cpus": 4})
    assert response.json()["message"] == "cpus: unknown field: this operation does not accept it"


def test_every_response_has_a_request_id(api: Api) -> None:
    response = api.client.list_microvms()
    assert response["ResponseMetadata"]["RequestId"]
    assert send(api, "GET", "/2025-09-09/nothing").headers["x-amzn-requestid"]


def test_host_capacity_is_insufficient_capacity_503(api: Api) -> None:
    api.create_image("app")

    def full(microvm_id: str) -> None:
        raise CapacityError("not enough free memory on this host for 512 MiB")

    api.microvms.launch = full  # type: ignore[method-assign]
    with pytest.raises(ClientError) as e:
        api.run("app")
    error = e.value.response
    assert error["Error"]["Code"] == "InsufficientCapacityException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert error["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "10"
