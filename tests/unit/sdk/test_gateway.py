"""A ``Microvm`` handle through Ember's real gateway (TLS with its generated CA, a fake backend, local apps):
CA trust, auto-resume, app WebSockets and the shell protocol."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ember.sdk import Client, errors

from .conftest import KEY_ID, SECRET
from .fakes import FakeServer
from .gateway_env import WS_PORT, GatewayThread, api_for


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with GatewayThread(tmp_path_factory.mktemp("tls")) as running:
        yield running


@pytest.fixture
def tls_client(server: FakeServer, gw: GatewayThread) -> Iterator[Client]:
    with Client(endpoint=server.url, access_key_id=KEY_ID, secret_access_key=SECRET,
                verify=gw.tls_dir / "ca.pem") as c:
        yield c


def test_request_through_the_gateway_trusting_embers_ca(server: FakeServer, gw: GatewayThread,
                                                       tls_client: Client) -> None:
    vm = gw.add_vm(1)
    api_for(server, gw, vm)
    response = tls_client.microvms.handle(vm.microvm_id).request("POST", "/echo", content=b"hello")
    assert response.status_code == 200 and response.content == b"hello"


def test_the_local_ca_is_found_under_ember_home(server: FakeServer, gw: GatewayThread, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "tls").mkdir(parents=True)
    (home / "tls" / "ca.pem").write_bytes((gw.tls_dir / "ca.pem").read_bytes())
    vm = gw.add_vm(2)
    api_for(server, gw, vm)
    with Client(endpoint=server.url, access_key_id=KEY_ID, secret_access_key=SECRET, home=home) as c:
        assert c.microvms.handle(vm.microvm_id).request("GET", "/info").status_code == 200


def test_an_untrusted_gateway_says_how_to_trust_it(server: FakeServer, gw: GatewayThread, tmp_path: Path) -> None:
    vm = gw.add_vm(3)
    api_for(server, gw, vm)
    with (Client(endpoint=server.url, access_key_id=KEY_ID, secret_access_key=SECRET, home=tmp_path) as c,
          pytest.raises(errors.ConnectionFailed, match="ember ca")):
        c.microvms.handle(vm.microvm_id).request("GET", "/info")


def test_a_suspended_vm_is_resumed_by_the_request(server: FakeServer, gw: GatewayThread,
                                                  tls_client: Client) -> None:
    vm = gw.add_vm(4, state="SUSPENDED", resume_delay_s=0.1)
    api_for(server, gw, vm)
    before = gw.backend.resumes
    response = tls_client.microvms.handle(vm.microvm_id).request("POST", "/echo", json={"x": 41})
    assert response.json() == {"x": 41}
    assert gw.backend.resumes == before + 1 and vm.state == "RUNNING"


def test_app_websocket(server: FakeServer, gw: GatewayThread, tls_client: Client) -> None:
    vm = gw.add_vm(5)
    api_for(server, gw, vm)
    with tls_client.microvms.handle(vm.microvm_id).websocket("/ws", port=WS_PORT) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "ping"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=10) == b"\x00\x01"


def test_shell_protocol(server: FakeServer, gw: GatewayThread, tls_client: Client) -> None:
    vm = gw.add_vm(6, shell_ingress=True)
    api_for(server, gw, vm)
    with tls_client.microvms.handle(vm.microvm_id).shell() as ws:
        ws.send(b"ls\r")
        assert ws.recv(timeout=10) == b"ls\r"
        ws.send(json.dumps({"resize": [100, 40]}))
        assert ws.recv(timeout=10) == b"[resized 100x40]"
        ws.send(b"exit\n")
        with pytest.raises(Exception):  # noqa: B017 - ConnectionClosedOK
            ws.recv(timeout=10)
        assert ws.close_reason == "exit 0"


async def test_async_request_and_shell(server: FakeServer, gw: GatewayThread) -> None:
    from ember.sdk import AsyncClient

    vm = gw.add_vm(7, shell_ingress=True)
    api_for(server, gw, vm)
    client = AsyncClient(endpoint=server.url, access_key_id=KEY_ID, secret_access_key=SECRET,
                         verify=gw.tls_dir / "ca.pem")
    try:
        handle = client.microvms.handle(vm.microvm_id)
        response = await handle.request("POST", "/echo", content=b"async")
        assert response.content == b"async"
        ws = await handle.websocket("/ws", port=WS_PORT)
        await ws.send("hi")
        assert await ws.recv() == "hi"
        await ws.close()
        shell = await handle.shell()
        await shell.send(b"pwd\r")
        assert await shell.recv() == b"pwd\r"
        await shell.close()
    finally:
        await client.aclose()
