"""The async client: the same calls, errors, pagination, endpoint retries and logs as the sync one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from ember.sdk import AsyncClient, RetryPolicy, errors

from . import samples
from .conftest import KEY_ID, SECRET
from .fakes import FakeServer, Reply, error

VM = samples.vm_id(9)


@pytest.fixture
async def aclient(server: FakeServer) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(endpoint=server.url, access_key_id=KEY_ID, secret_access_key=SECRET, gateway_scheme="http",
                         retry=RetryPolicy(resume_interval_s=0.01))
    yield client
    await client.aclose()


async def test_get_list_and_errors(server: FakeServer, aclient: AsyncClient) -> None:
    server.route("GET", f"/2025-09-09/microvms/{VM}", Reply(200, samples.microvm(VM)))
    server.route("GET", "/2025-09-09/microvms", [Reply(200, {"items": [samples.item(VM)], "nextToken": "n"}),
                                                 Reply(200, {"items": [samples.item(samples.vm_id(1), "TERMINATED")]})])
    assert (await aclient.microvms.get(VM)).state == "RUNNING"
    assert [v.microvmId for v in await aclient.microvms.list()] == [VM]
    server.route("POST", f"/2025-09-09/microvms/{VM}/resume", error(409, "ConflictException", "not SUSPENDED"))
    with pytest.raises(errors.ConflictException, match="not SUSPENDED"):
        await aclient.microvms.resume(VM)


async def test_endpoint_request_caches_the_token_and_retries_502(server: FakeServer, aclient: AsyncClient) -> None:
    server.route("GET", f"/2025-09-09/microvms/{VM}", Reply(200, samples.microvm(VM, endpoint=server.netloc)))
    server.route("POST", f"/2025-09-09/microvms/{VM}/auth-token", Reply(200, {"authToken": {"X-aws-proxy-auth": "t"}}))
    server.route("POST", f"/microvms/{VM}/execute", [Reply(502, {}), Reply(200, {"stdout": "42\n"})])
    vm = aclient.microvms.handle(VM)
    response = await vm.request("POST", "/execute", json={"code": "print(42)"})
    assert response.json() == {"stdout": "42\n"}
    await vm.request("POST", "/execute", json={"code": "1"})
    assert len([r for r in server.requests if r.path.endswith("/auth-token")]) == 1


async def test_logs_stream(server: FakeServer, aclient: AsyncClient) -> None:
    body = "".join(json.dumps({"seq": n, "at": samples.T0, "stream": "stdout", "line": f"l{n}"}) + "\n"
                   for n in (1, 2, 3))
    server.route("GET", f"/2025-09-09/microvms/{VM}/logs", Reply(200, body.encode()))
    assert [line.line async for line in aclient.microvms.logs(VM)] == ["l1", "l2", "l3"]


async def test_run_and_wait(server: FakeServer, aclient: AsyncClient) -> None:
    server.route("POST", "/2025-09-09/microvms", Reply(200, samples.microvm(VM, "PENDING")))
    server.route("GET", f"/2025-09-09/microvms/{VM}", [Reply(200, samples.microvm(VM, "PENDING")),
                                                       Reply(200, samples.microvm(VM, "RUNNING"))])
    vm = await aclient.microvms.run("ci", idle=120, wait=True)
    assert vm.detail is not None and vm.detail.state == "RUNNING"
    assert server.requests[0].json()["idlePolicy"]["maxIdleDurationSeconds"] == 120
