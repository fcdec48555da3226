"""Error responses become the typed exceptions of ember.sdk.errors; throttling is retried, then raised."""

from __future__ import annotations

import socket

import pytest

from ember.contract import ERROR_TYPES
from ember.sdk import Client, errors

from . import samples
from .conftest import KEY_ID, SECRET
from .fakes import FakeServer, Reply, error

GET_VM = f"/2025-09-09/microvms/{samples.vm_id(1)}"


@pytest.mark.parametrize("code", sorted(ERROR_TYPES))
def test_every_contract_error_code_has_its_class(server: FakeServer, client: Client, code: str) -> None:
    status = ERROR_TYPES[code].http_status
    server.route("GET", GET_VM, Reply(status, {"message": f"{code} happened", "resourceId": "mvm-x"},
                                      {"x-amzn-ErrorType": code, "x-amzn-RequestId": "req-1", "Retry-After": "0"}))
    with pytest.raises(errors.ApiError) as caught:
        client.microvms.get(samples.vm_id(1))
    exc = caught.value
    assert type(exc).__name__ == code and exc.code == code
    assert exc.status == status and exc.message == f"{code} happened"
    assert exc.request_id == "req-1" and exc.resource_id == "mvm-x"
    assert str(exc) == f"{code}: {code} happened"


def test_sdk_error_classes_mirror_the_contract() -> None:
    assert set(errors.ERROR_CLASSES) == set(ERROR_TYPES)
    for code, cls in errors.ERROR_CLASSES.items():
        assert cls.default_status == ERROR_TYPES[code].http_status


def test_error_type_header_with_a_namespace_suffix(server: FakeServer, client: Client) -> None:
    server.route("GET", GET_VM, Reply(409, {"message": "busy"},
                                      {"x-amzn-ErrorType": "ConflictException:http://internal.amazon.com/"}))
    with pytest.raises(errors.ConflictException, match="busy"):
        client.microvms.get(samples.vm_id(1))


def test_code_from_the_body_when_there_is_no_header(server: FakeServer, client: Client) -> None:
    server.route("GET", GET_VM, Reply(400, {"__type": "ValidationException", "Message": "maxResults: too big"}))
    with pytest.raises(errors.ValidationException, match="maxResults: too big"):
        client.microvms.get(samples.vm_id(1))


def test_status_picks_the_class_when_nothing_names_a_code(server: FakeServer, client: Client) -> None:
    server.route("GET", GET_VM, Reply(404, b"<html>not here</html>"))
    with pytest.raises(errors.ResourceNotFoundException, match="not here"):
        client.microvms.get(samples.vm_id(1))


def test_unknown_code_keeps_its_name(server: FakeServer, client: Client) -> None:
    server.route("GET", GET_VM, error(418, "TeapotException", "short and stout"))
    with pytest.raises(errors.ApiError) as caught:
        client.microvms.get(samples.vm_id(1))
    assert type(caught.value) is errors.ApiError
    assert caught.value.code == "TeapotException" and caught.value.status == 418


def test_throttling_is_retried_after_retry_after(server: FakeServer, client: Client) -> None:
    server.route("GET", GET_VM, [error(429, "ThrottlingException", "slow down", **{"Retry-After": "0"}),
                                 Reply(200, samples.microvm(samples.vm_id(1)))])
    assert client.microvms.get(samples.vm_id(1)).state == "RUNNING"
    assert len(server.requests) == 2
    first, second = server.requests
    assert first.headers["X-Amz-Date"] <= second.headers["X-Amz-Date"]  # each try is signed afresh


def test_throttling_gives_up_after_the_attempts(server: FakeServer, client: Client) -> None:
    server.route("GET", GET_VM, error(429, "ThrottlingException", "slow down", **{"Retry-After": "0"}))
    with pytest.raises(errors.ThrottlingException) as caught:
        client.microvms.get(samples.vm_id(1))
    assert caught.value.retry_after == 0
    assert len(server.requests) == 4


def test_a_long_retry_after_is_not_slept_through(server: FakeServer, client: Client) -> None:
    server.route("GET", GET_VM, error(429, "ThrottlingException", "slow down", **{"Retry-After": "3600"}))
    with pytest.raises(errors.ThrottlingException):
        client.microvms.get(samples.vm_id(1))
    assert len(server.requests) == 1


def test_other_errors_are_not_retried(server: FakeServer, client: Client) -> None:
    server.route("POST", "/2025-09-09/microvms", error(500, "InternalServerException", "boom"))
    with pytest.raises(errors.InternalServerException):
        client.microvms.run("ci")
    assert len(server.requests) == 1


def test_connection_refused_says_where_and_what_to_check() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(endpoint=f"http://127.0.0.1:{port}", access_key_id=KEY_ID, secret_access_key=SECRET) as c:
        c.transport.http.timeout = 2.0  # type: ignore[assignment]
        with pytest.raises(errors.ConnectionFailed, match=f"127.0.0.1:{port}.*ember serve"):
            c.microvms.list()


def test_every_sdk_error_is_an_ember_error() -> None:
    from ember.errors import EmberError

    assert issubclass(errors.SdkError, EmberError)
    assert issubclass(errors.ResourceNotFoundException, errors.ApiError)
