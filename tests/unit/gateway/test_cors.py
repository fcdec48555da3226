"""CORS for browser pages calling an endpoint: preflights answered by the gateway, headers only with a valid token."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import pytest

from ember.gateway import Gateway, cors
from ember.gateway.testing import FakeBackend, FakeVm

from .apps import HttpApp
from .conftest import DOWN_PORT, RawClient, header, token

pytestmark = pytest.mark.timeout(60)
AddVm = Callable[..., FakeVm]
ORIGIN = "http://127.0.0.1:9180"
PREFLIGHT = [("origin", ORIGIN), ("access-control-request-method", "POST"),
             ("access-control-request-headers", "content-type, x-aws-proxy-auth, x-aws-proxy-port")]


def path(vm: FakeVm, rest: str = "/execute") -> str:
    return f"/microvms/{vm.microvm_id}{rest}"


# -- the pure rules ---------------------------------------------------------------------------------------------------
def test_preflight_answer_echoes_origin_method_and_headers_without_credentials() -> None:
    headers = [(k.encode(), v.encode()) for k, v in PREFLIGHT]
    answer = dict(cors.preflight(b"OPTIONS", headers) or [])
    assert answer[b"access-control-allow-origin"] == ORIGIN.encode()
    assert answer[b"access-control-allow-methods"] == b"POST"
    assert answer[b"access-control-allow-headers"] == b"content-type, x-aws-proxy-auth, x-aws-proxy-port"
    assert b"access-control-allow-credentials" not in answer


@pytest.mark.parametrize("change", [
    {"access-control-request-headers": "content-type"},  # the request would carry no token
    {"access-control-request-method": "CONNECT"},
    {"origin": "not an origin"},
    {"origin": None},
    {"access-control-request-method": None},
    {"content-length": "5"},
    {"access-control-request-headers": "x-aws-proxy-auth, bad header"},
])
def test_not_a_preflight_to_answer(change: dict[str, str | None]) -> None:
    fields = dict(PREFLIGHT)
    fields.update(change)  # type: ignore[arg-type]
    headers = [(k.encode(), v.encode()) for k, v in fields.items() if v is not None]
    assert cors.preflight(b"OPTIONS", headers) is None


def test_get_is_never_a_preflight() -> None:
    assert cors.preflight(b"GET", [(k.encode(), v.encode()) for k, v in PREFLIGHT]) is None


def test_app_that_answers_cors_itself_keeps_its_policy() -> None:
    own = [(b"access-control-allow-origin", b"https://app.example")]
    assert cors.add_to_response(own, ORIGIN) == own
    added = dict(cors.add_to_response([(b"content-type", b"text/plain")], ORIGIN))
    assert added[b"access-control-allow-origin"] == ORIGIN.encode()
    assert cors.add_to_response([(b"content-type", b"text/plain")], None) == [(b"content-type", b"text/plain")]


# -- through the gateway ----------------------------------------------------------------------------------------------
async def test_preflight_is_answered_by_the_gateway_and_never_reaches_the_app(
        gateway: Gateway, add_vm: AddVm, client_ssl: ssl.SSLContext, http_app: HttpApp) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        response, body = await raw.request("OPTIONS", path(vm), PREFLIGHT)
        assert response.status_code == 204 and body == b""
        assert header(response, "access-control-allow-origin") == ORIGIN
        assert "x-aws-proxy-auth" in (header(response, "access-control-allow-headers") or "")
        assert header(response, "access-control-allow-credentials") is None
        # the connection stays usable for the request itself
        response, _ = await raw.request("GET", path(vm, "/state"), [("origin", ORIGIN)])
        assert response.status_code == 403  # no token: refused, and without CORS headers
        assert header(response, "access-control-allow-origin") is None
    finally:
        await raw.close()
    assert http_app.requests == []


async def test_preflight_that_announces_no_token_is_refused_like_any_tokenless_request(
        gateway: Gateway, add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        response, _ = await raw.request("OPTIONS", path(vm), [("origin", ORIGIN),
                                                              ("access-control-request-method", "GET")])
        assert response.status_code == 403
        assert header(response, "access-control-allow-origin") is None
    finally:
        await raw.close()


async def test_preflight_to_a_hook_path_is_refused(gateway: Gateway, add_vm: AddVm,
                                                   client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        response, _ = await raw.request("OPTIONS", path(vm, "/aws/lambda-microvms/runtime/v1/run"), PREFLIGHT)
        assert response.status_code == 403
        assert header(response, "access-control-allow-origin") is None
    finally:
        await raw.close()


async def test_response_to_a_request_with_a_valid_token_carries_cors_headers(
        gateway: Gateway, backend: FakeBackend, add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        response, _ = await raw.request("POST", path(vm), [("origin", ORIGIN),
                                                           ("x-aws-proxy-auth", token(backend, vm))], b"{}")
        assert response.status_code == 200
        assert header(response, "access-control-allow-origin") == ORIGIN
        assert "x-amzn-requestid" in (header(response, "access-control-expose-headers") or "")
        assert header(response, "access-control-allow-credentials") is None
        response, _ = await raw.request("GET", path(vm), [("x-aws-proxy-auth", token(backend, vm))])
        assert header(response, "access-control-allow-origin") is None  # no Origin, no CORS
    finally:
        await raw.close()


async def test_bad_token_gets_no_cors_headers(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                              client_ssl: ssl.SSLContext) -> None:
    vm, other = add_vm(), add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        for bad in ("ember1.forged.token", token(backend, other)):
            response, _ = await raw.request("GET", path(vm), [("origin", ORIGIN), ("x-aws-proxy-auth", bad)])
            assert response.status_code == 403
            assert header(response, "access-control-allow-origin") is None
    finally:
        await raw.close()


async def test_gateway_error_after_a_valid_token_is_readable_by_the_page(
        gateway: Gateway, backend: FakeBackend, add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        response, body = await raw.request("GET", path(vm), [
            ("origin", ORIGIN), ("x-aws-proxy-auth", token(backend, vm)), ("x-aws-proxy-port", str(DOWN_PORT))])
        assert response.status_code == 502, body
        assert header(response, "access-control-allow-origin") == ORIGIN
    finally:
        await raw.close()
