"""The gateway over real sockets and TLS: authentication, refusals, VM states, rate limit and lifecycle."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ember.gateway import Gateway
from ember.gateway.testing import FakeBackend, FakeVm

from .apps import HttpApp
from .conftest import DOWN_PORT, WS_PORT, GatewayFactory, RawClient, base_url, client, token, vm_id

pytestmark = pytest.mark.timeout(60)
AddVm = Callable[..., FakeVm]


async def get(ssl_ctx: ssl.SSLContext, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with client(ssl_ctx) as c:
        return await c.get(url, headers=headers)


def auth(backend: FakeBackend, vm: FakeVm, **kwargs: Any) -> dict[str, str]:
    return {"X-aws-proxy-auth": token(backend, vm, **kwargs)}


async def settled(backend: FakeBackend) -> None:
    """Wait until every connection the gateway opened is closed (it closes just after the client has its answer)."""
    for _ in range(200):
        if backend.opened == backend.closed:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{backend.opened} opened, {backend.closed} closed")


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == code, body
    assert body["message"]
    assert response.headers["x-amzn-requestid"]
    return body


# -- forwarding basics ------------------------------------------------------------------------------------------------
async def test_request_reaches_the_app_with_prefix_stripped_and_ember_headers_replaced(
        gateway: Gateway, backend: FakeBackend, add_vm: AddVm, client_ssl: ssl.SSLContext, http_app: HttpApp) -> None:
    vm = add_vm()
    headers = {**auth(backend, vm), "X-aws-proxy-port": "8080", "x-amzn-requestid": "spoofed"}
    response = await get(client_ssl, f"{base_url(gateway, vm)}/hello/world?x=1", headers)
    assert response.status_code == 200
    seen = response.json()
    assert seen["target"] == "/hello/world?x=1"
    app_headers = dict(seen["headers"])
    assert "x-aws-proxy-auth" not in app_headers and "x-aws-proxy-port" not in app_headers
    assert app_headers["x-amzn-requestid"] != "spoofed"
    assert len(app_headers["x-amzn-requestid"]) == 36  # a uuid4
    assert app_headers["host"] == f"127.0.0.1:{gateway.port}"
    assert app_headers["x-forwarded-prefix"] == f"/microvms/{vm.microvm_id}"
    assert app_headers["x-forwarded-proto"] == "https"
    assert response.headers["x-amzn-requestid"] == app_headers["x-amzn-requestid"]


async def test_the_console_session_never_reaches_the_app(
        gateway: Gateway, backend: FakeBackend, add_vm: AddVm, client_ssl: ssl.SSLContext, http_app: HttpApp) -> None:
    # A browser signed in to the console on the same host name sends its cookie to the gateway's port too.
    vm = add_vm()
    headers = {**auth(backend, vm), "Cookie": "theme=dark; ember_console=s3cr3t", "X-Ember-Csrf": "csrf"}
    response = await get(client_ssl, f"{base_url(gateway, vm)}/", headers)
    assert response.status_code == 200
    app_headers = dict(response.json()["headers"])
    assert app_headers["cookie"] == "theme=dark"
    assert "x-ember-csrf" not in app_headers
    response = await get(client_ssl, f"{base_url(gateway, vm)}/", {**auth(backend, vm), "Cookie": "ember_console=s"})
    assert "cookie" not in dict(response.json()["headers"])


async def test_host_routing_with_a_wildcard_domain(start_gateway: GatewayFactory, backend: FakeBackend,
                                                   add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    gateway = await start_gateway(domain="gw.test")
    vm = add_vm()
    assert gateway.endpoint(vm.microvm_id) == f"{vm.microvm_id}.gw.test:{gateway.port}"
    response = await get(client_ssl, f"https://127.0.0.1:{gateway.port}/microvms/kept?q",
                         {**auth(backend, vm), "Host": f"{vm.microvm_id}.gw.test"})
    assert response.status_code == 200
    assert response.json()["target"] == "/microvms/kept?q"


async def test_plain_http_by_option(start_gateway: GatewayFactory, backend: FakeBackend, add_vm: AddVm) -> None:
    gateway = await start_gateway(plain_http=True, tls_dir=None)
    vm = add_vm()
    assert gateway.ca_path is None
    async with httpx.AsyncClient(timeout=10) as c:
        response = await c.get(f"http://127.0.0.1:{gateway.port}/microvms/{vm.microvm_id}/", headers=auth(backend, vm))
    assert response.status_code == 200
    assert dict(response.json()["headers"])["x-forwarded-proto"] == "http"


def test_tls_dir_is_required_without_plain_http(backend: FakeBackend) -> None:
    with pytest.raises(ValueError, match="tls_dir"):
        Gateway(backend)


# -- tokens: every 403 ------------------------------------------------------------------------------------------------
async def test_missing_token_is_403(gateway: Gateway, add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    assert_refused(await get(client_ssl, f"{base_url(gateway, add_vm())}/"), 403, "token_missing")


async def test_forged_token_is_403(gateway: Gateway, add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    forged = token(FakeBackend(token_secret=b"not the gateway's secret"), vm)
    assert_refused(await get(client_ssl, f"{base_url(gateway, vm)}/", {"X-aws-proxy-auth": forged}),
                   403, "token_forged")


async def test_garbage_token_is_403(gateway: Gateway, add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    assert_refused(await get(client_ssl, f"{base_url(gateway, add_vm())}/", {"X-aws-proxy-auth": "hello"}),
                   403, "token_malformed")


async def test_expired_token_is_403(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                    client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    old = token(backend, vm, minutes=1, now=gateway_clock_minus(3600))
    assert_refused(await get(client_ssl, f"{base_url(gateway, vm)}/", {"X-aws-proxy-auth": old}), 403, "token_expired")


def gateway_clock_minus(seconds: float) -> float:
    import time

    return time.time() - seconds


async def test_token_for_another_vm_is_403(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                           client_ssl: ssl.SSLContext) -> None:
    mine, other = add_vm(), add_vm()
    assert_refused(await get(client_ssl, f"{base_url(gateway, mine)}/", auth(backend, other)),
                   403, "token_other_microvm")


async def test_port_outside_the_token_is_403(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                             client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    headers = {**auth(backend, vm, ports=[{"port": 8080}]), "X-aws-proxy-port": "8081"}
    assert_refused(await get(client_ssl, f"{base_url(gateway, vm)}/", headers), 403, "token_port")
    # The default port is 8080, so a token for another port alone does not reach it either.
    assert_refused(await get(client_ssl, f"{base_url(gateway, vm)}/", auth(backend, vm, ports=[{"port": 3000}])),
                   403, "token_port")


async def test_shell_token_on_the_proxy_is_403(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                               client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(shell_ingress=True)
    assert_refused(await get(client_ssl, f"{base_url(gateway, vm)}/", auth(backend, vm, kind="shell")),
                   403, "token_kind")


async def test_token_of_another_account_is_403(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                               client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    impostor = FakeVm(microvm_id=vm.microvm_id, account_id="999999999999")
    assert_refused(await get(client_ssl, f"{base_url(gateway, vm)}/", auth(backend, impostor)), 403, "token_account")


async def test_bad_port_header_is_400(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                      client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    for bad in ("http", "0", "65536"):
        response = await get(client_ssl, f"{base_url(gateway, vm)}/", {**auth(backend, vm), "X-aws-proxy-port": bad})
        assert_refused(response, 400, "bad_port")


# -- paths the gateway refuses ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/aws/lambda-microvms/runtime/v1/run", "/aws/lambda-microvms/runtime/v1/suspend",
                                  "/aws/lambda-microvms/runtime/v1/ready?x", "//aws/lambda-microvms/runtime/v1/run",
                                  "/aws/lambda-microvms/%72untime/v1/terminate"])
async def test_hook_paths_are_403_and_never_reach_the_app(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                          client_ssl: ssl.SSLContext, http_app: HttpApp,
                                                          path: str) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        response, body = await raw.request("POST", f"/microvms/{vm.microvm_id}{path}",
                                           list(auth(backend, vm).items()), b"{}")
    finally:
        await raw.close()
    assert response.status_code == 403
    assert json.loads(body)["code"] == "hook_path"
    assert http_app.requests == []


@pytest.mark.parametrize("path", ["/a/../b", "/..", "/%2e%2e/x", "/a/%2E%2E/b", "/x/..%2f..%2fetc"])
async def test_path_traversal_is_400(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                     client_ssl: ssl.SSLContext, http_app: HttpApp, path: str) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        response, body = await raw.request("GET", f"/microvms/{vm.microvm_id}{path}", list(auth(backend, vm).items()))
    finally:
        await raw.close()
    assert (response.status_code, json.loads(body)["code"]) == (400, "path_traversal")
    assert http_app.requests == []


async def test_traversal_out_of_the_vm_prefix_is_404(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                     client_ssl: ssl.SSLContext) -> None:
    raw = await RawClient.open(gateway, client_ssl)
    try:
        response, _ = await raw.request("GET", "/microvms/../x", list(auth(backend, add_vm()).items()))
    finally:
        await raw.close()
    assert response.status_code == 404


async def test_oversized_headers_are_431(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                         client_ssl: ssl.SSLContext, http_app: HttpApp) -> None:
    vm = add_vm()
    response = await get(client_ssl, f"{base_url(gateway, vm)}/", {**auth(backend, vm), "X-Big": "a" * 20_000})
    assert_refused(response, 431, "headers_too_large")
    assert response.headers["connection"] == "close"
    assert http_app.requests == []


async def test_oversized_request_line_is_414(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                             client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    response = await get(client_ssl, f"{base_url(gateway, vm)}/{'a' * 9000}", auth(backend, vm))
    assert_refused(response, 414, "request_line_too_long")


async def test_malformed_http_is_400(gateway: Gateway, client_ssl: ssl.SSLContext) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port, ssl=client_ssl,
                                                   server_hostname="127.0.0.1")
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    reply = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert reply.startswith(b"HTTP/1.1 400 ")


async def test_connect_is_405(gateway: Gateway, client_ssl: ssl.SSLContext) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port, ssl=client_ssl,
                                                   server_hostname="127.0.0.1")
    writer.write(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    reply = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    assert reply.startswith(b"HTTP/1.1 405 ")


# -- VM states ---------------------------------------------------------------------------------------------------------
async def test_unknown_vm_is_404(gateway: Gateway, backend: FakeBackend, client_ssl: ssl.SSLContext) -> None:
    ghost = FakeVm(microvm_id=vm_id(999_999))
    assert_refused(await get(client_ssl, f"{base_url(gateway, ghost)}/", auth(backend, ghost)),
                   404, "microvm_not_found")


async def test_terminated_vm_is_404(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                    client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(state="TERMINATED")
    assert_refused(await get(client_ssl, f"{base_url(gateway, vm)}/", auth(backend, vm)), 404, "microvm_not_found")


async def test_no_vm_in_the_path_is_404(gateway: Gateway, client_ssl: ssl.SSLContext) -> None:
    assert_refused(await get(client_ssl, f"https://127.0.0.1:{gateway.port}/favicon.ico"), 404, "no_microvm")


async def test_suspended_without_auto_resume_is_502_saying_so(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                              client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(state="SUSPENDED", auto_resume=False)
    body = assert_refused(await get(client_ssl, f"{base_url(gateway, vm)}/", auth(backend, vm)),
                          502, "microvm_suspended")
    assert "auto-resume is off" in body["message"]
    assert backend.resumes == 0


async def test_suspended_with_auto_resume_is_held_then_served(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                              client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(state="SUSPENDED", resume_delay_s=0.3)
    response = await get(client_ssl, f"{base_url(gateway, vm)}/", auth(backend, vm))
    assert response.status_code == 200
    assert (backend.resumes, vm.state) == (1, "RUNNING")


async def test_twenty_concurrent_requests_cause_exactly_one_resume(gateway: Gateway, backend: FakeBackend,
                                                                   add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(state="SUSPENDED", resume_delay_s=0.3)
    headers = auth(backend, vm)
    async with client(client_ssl) as c:
        responses = await asyncio.gather(*(c.get(f"{base_url(gateway, vm)}/n/{i}", headers=headers)
                                           for i in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert sorted(r.json()["target"] for r in responses) == sorted(f"/n/{i}" for i in range(20))
    assert backend.resumes == 1


async def test_failed_resume_is_502(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                    client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(state="SUSPENDED", resume_delay_s=0.05, resume_fails=True)
    assert_refused(await get(client_ssl, f"{base_url(gateway, vm)}/", auth(backend, vm)), 502, "microvm_unavailable")


async def test_pending_vm_holds_the_request_until_running(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                          client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(state="PENDING")
    request = asyncio.create_task(get(client_ssl, f"{base_url(gateway, vm)}/", auth(backend, vm)))
    await asyncio.sleep(0.3)
    assert not request.done()
    vm.set_state("RUNNING")
    assert (await asyncio.wait_for(request, 10)).status_code == 200


async def test_vm_that_never_starts_is_502_after_the_start_timeout(start_gateway: GatewayFactory,
                                                                   backend: FakeBackend, add_vm: AddVm,
                                                                   client_ssl: ssl.SSLContext) -> None:
    gateway = await start_gateway(start_timeout_s=0.2)
    vm = add_vm(state="PENDING")
    assert_refused(await get(client_ssl, f"{base_url(gateway, vm)}/", auth(backend, vm)), 502, "start_timeout")


async def test_app_not_listening_is_502(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                        client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    for port in (DOWN_PORT, 4000):  # mapped to a closed local port; not mapped at all
        response = await get(client_ssl, f"{base_url(gateway, vm)}/", {**auth(backend, vm),
                                                                      "X-aws-proxy-port": str(port)})
        body = assert_refused(response, 502, "app_not_listening")
        assert str(port) in body["message"]


async def test_app_hanging_up_without_an_answer_is_502(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                       client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    assert_refused(await get(client_ssl, f"{base_url(gateway, vm)}/hang-up", auth(backend, vm)), 502, "app_closed")


async def test_app_speaking_another_protocol_is_502(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                    client_ssl: ssl.SSLContext, ws_app: Any) -> None:
    vm = add_vm()

    async def nonsense(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(nonsense, "127.0.0.1", 0)
    vm.ports[22] = server.sockets[0].getsockname()[1]
    try:
        response = await get(client_ssl, f"{base_url(gateway, vm)}/", {**auth(backend, vm), "X-aws-proxy-port": "22"})
        assert_refused(response, 502, "bad_app_response")
    finally:
        server.close()
        await server.wait_closed()


# -- rate limit --------------------------------------------------------------------------------------------------------
async def test_burst_over_the_rate_limit_is_429_with_retry_after(start_gateway: GatewayFactory, backend: FakeBackend,
                                                                 add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    gateway = await start_gateway(rate_limit_per_s=1.0, rate_limit_burst=5)
    vm, other = add_vm(), add_vm()
    async with client(client_ssl) as c:
        responses = [await c.get(f"{base_url(gateway, vm)}/", headers=auth(backend, vm)) for _ in range(8)]
        assert [r.status_code for r in responses] == [200] * 5 + [429] * 3
        limited = responses[-1]
        assert_refused(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        # An unauthenticated flood spends nobody's budget, and another VM has its own.
        for _ in range(10):
            assert (await c.get(f"{base_url(gateway, other)}/")).status_code == 403
        assert (await c.get(f"{base_url(gateway, other)}/", headers=auth(backend, other))).status_code == 200
    await settled(backend)
    assert backend.opened == 6  # refused requests never count as activity


async def test_rate_limit_can_be_off(start_gateway: GatewayFactory, backend: FakeBackend, add_vm: AddVm,
                                     client_ssl: ssl.SSLContext) -> None:
    gateway = await start_gateway(rate_limit_per_s=None)
    vm = add_vm()
    async with client(client_ssl) as c:
        statuses = {(await c.get(f"{base_url(gateway, vm)}/", headers=auth(backend, vm))).status_code
                    for _ in range(30)}
    assert statuses == {200}


# -- open connections and lifecycle ------------------------------------------------------------------------------------
async def test_every_request_is_counted_open_then_closed(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                         client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    async with client(client_ssl) as c:
        for _ in range(3):
            await c.get(f"{base_url(gateway, vm)}/", headers=auth(backend, vm))
        await c.get(f"{base_url(gateway, vm)}/", headers={**auth(backend, vm), "X-aws-proxy-port": str(DOWN_PORT)})
    await settled(backend)
    assert backend.opened == backend.closed == 4
    assert backend.open_now[vm.microvm_id] == 0


async def test_stop_ends_open_streams_and_is_idempotent(start_gateway: GatewayFactory, backend: FakeBackend,
                                                        add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    gateway = await start_gateway()
    vm = add_vm()
    async with client(client_ssl) as c, c.stream("GET", f"{base_url(gateway, vm)}/sse-wait",
                                                 headers=auth(backend, vm)) as response:
        lines = response.aiter_lines()
        assert await asyncio.wait_for(anext(lines), 10) == "data: first"
        assert backend.open_now[vm.microvm_id] == 1
        assert gateway.open_connections == 1
        await asyncio.wait_for(gateway.stop(), 10)
        with pytest.raises(httpx.HTTPError):
            async for _ in lines:
                pass
    assert gateway.open_connections == 0
    assert backend.open_now[vm.microvm_id] == 0
    await gateway.stop()
    with pytest.raises(httpx.ConnectError):
        await get(client_ssl, f"{base_url(gateway, vm)}/", auth(backend, vm))


async def test_start_twice_is_an_error(gateway: Gateway) -> None:
    with pytest.raises(RuntimeError):
        await gateway.start("127.0.0.1", 0)


async def test_ws_port_via_header_is_plain_http_too(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                    client_ssl: ssl.SSLContext) -> None:
    # A non-upgrade request to the WebSocket app's port reaches it (and it answers as an HTTP server would).
    vm = add_vm()
    response = await get(client_ssl, f"{base_url(gateway, vm)}/",
                         {**auth(backend, vm), "X-aws-proxy-port": str(WS_PORT)})
    assert response.status_code in (400, 426)


async def test_stop_releases_requests_held_for_a_starting_vm(start_gateway: GatewayFactory, backend: FakeBackend,
                                                             add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    gateway = await start_gateway()
    vm = add_vm(state="PENDING")
    request = asyncio.create_task(get(client_ssl, f"{base_url(gateway, vm)}/", auth(backend, vm)))
    for _ in range(200):
        if backend.open_now.get(vm.microvm_id):
            break
        await asyncio.sleep(0.01)
    await asyncio.wait_for(gateway.stop(), 10)
    with pytest.raises(httpx.HTTPError):
        await request
    assert backend.open_now[vm.microvm_id] == 0
