"""The shell WebSocket over the fake agent: PTY bytes both ways, resize, exit, and who may open it."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus

from ember.gateway import Gateway
from ember.gateway.shell import SHELL_PTY
from ember.gateway.testing import FakeBackend, FakeVm

from .conftest import RawClient, T, header, token

pytestmark = pytest.mark.timeout(60)
AddVm = Callable[..., FakeVm]


def shell_url(gateway: Gateway, vm: FakeVm) -> str:
    return f"wss://127.0.0.1:{gateway.port}/microvms/{vm.microvm_id}/.ember/shell"


def shell_protocols(backend: FakeBackend, vm: FakeVm, kind: str = "shell") -> list[str]:
    return ["lambda-microvms", f"lambda-microvms.authentication.{token(backend, vm, kind=kind)}"]


async def test_shell_echoes_pty_bytes_and_resizes(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                  client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(shell_ingress=True)
    async with connect(shell_url(gateway, vm), ssl=client_ssl, subprotocols=shell_protocols(backend, vm),  # type: ignore[arg-type]
                       open_timeout=T) as ws:
        assert ws.subprotocol == "lambda-microvms"
        await ws.send(b"echo hi\n")
        assert await asyncio.wait_for(ws.recv(), T) == b"echo hi\n"
        await ws.send(json.dumps({"resize": [132, 43]}))
        assert await asyncio.wait_for(ws.recv(), T) == b"[resized 132x43]"
        await ws.send("typed as text")  # any other text frame is input
        assert await asyncio.wait_for(ws.recv(), T) == b"typed as text"
        await ws.send(json.dumps({"resize": [0, 10]}))  # out of bounds: ignored
        await ws.send(b"after")
        assert await asyncio.wait_for(ws.recv(), T) == b"after"
        assert backend.open_now[vm.microvm_id] == 1
    (proc,) = vm.processes
    assert proc.argv[0] == "/bin/sh" and "bash" in proc.argv[-1]
    assert proc.resizes == [(132, 43)]
    assert SHELL_PTY == (80, 24)
    for _ in range(100):
        if proc.killed:
            break
        await asyncio.sleep(0.02)
    assert proc.killed  # closing the WebSocket ends the shell


async def test_shell_exit_closes_the_websocket_normally(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                        client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(shell_ingress=True)
    async with connect(shell_url(gateway, vm), ssl=client_ssl, subprotocols=shell_protocols(backend, vm),  # type: ignore[arg-type]
                       open_timeout=T) as ws:
        await ws.send(b"exit\n")
        with pytest.raises(ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), T)
    assert (ws.close_code, ws.close_reason) == (1000, "exit 0")


async def test_shell_token_in_the_header_works_too(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                   client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(shell_ingress=True)
    async with connect(shell_url(gateway, vm), ssl=client_ssl, open_timeout=T,
                       additional_headers={"X-aws-proxy-auth": token(backend, vm, kind="shell")}) as ws:
        assert ws.subprotocol is None
        await ws.send(b"x")
        assert await asyncio.wait_for(ws.recv(), T) == b"x"


async def refused_status(gateway: Gateway, vm: FakeVm, protocols: list[str], client_ssl: ssl.SSLContext) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(shell_url(gateway, vm), ssl=client_ssl, subprotocols=protocols,  # type: ignore[arg-type]
                           open_timeout=T):
            pass
    return info.value.response.status_code


async def test_proxy_token_cannot_open_the_shell(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                 client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(shell_ingress=True)
    assert await refused_status(gateway, vm, shell_protocols(backend, vm, kind="proxy"), client_ssl) == 403
    assert vm.processes == []


async def test_shell_needs_the_shell_ingress_connector(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                       client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(shell_ingress=False)
    assert await refused_status(gateway, vm, shell_protocols(backend, vm), client_ssl) == 403
    assert vm.processes == []


async def test_shell_without_upgrade_is_426(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                            client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(shell_ingress=True)
    raw = await RawClient.open(gateway, client_ssl)
    try:
        response, body = await raw.request("GET", f"/microvms/{vm.microvm_id}/.ember/shell",
                                           [("X-aws-proxy-auth", token(backend, vm, kind="shell"))])
    finally:
        await raw.close()
    assert (response.status_code, header(response, "upgrade"), json.loads(body)["code"]) == (
        426, "websocket", "websocket_required")


async def test_shell_with_a_broken_handshake_is_400(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                    client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(shell_ingress=True)
    raw = await RawClient.open(gateway, client_ssl)
    try:
        response, body = await raw.request("GET", f"/microvms/{vm.microvm_id}/.ember/shell", [
            ("X-aws-proxy-auth", token(backend, vm, kind="shell")), ("connection", "upgrade"),
            ("upgrade", "websocket"), ("sec-websocket-version", "13")])
    finally:
        await raw.close()
    assert (response.status_code, json.loads(body)["code"]) == (400, "bad_websocket")
    assert vm.processes == []


async def test_shell_of_a_suspended_vm_resumes_it(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                  client_ssl: ssl.SSLContext) -> None:
    vm = add_vm(shell_ingress=True, state="SUSPENDED", resume_delay_s=0.1)
    async with connect(shell_url(gateway, vm), ssl=client_ssl, subprotocols=shell_protocols(backend, vm),  # type: ignore[arg-type]
                       open_timeout=T) as ws:
        await ws.send(b"up?")
        assert await asyncio.wait_for(ws.recv(), T) == b"up?"
    assert backend.resumes == 1
