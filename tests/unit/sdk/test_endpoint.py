"""Requests to a MicroVM endpoint: token minted once and cached, re-minted at 80% of its life or on 403,
502 retried while the VM resumes, 429 retried after Retry-After, headers as the gateway expects."""

from __future__ import annotations

import itertools

import pytest

from ember.sdk import Client, RetryPolicy
from ember.sdk.tokens import TokenCache

from . import samples
from .fakes import FakeServer, Recorded, Reply

VM = samples.vm_id(7)
TOKEN_ROUTE = f"/2025-09-09/microvms/{VM}/auth-token"
APP = f"/microvms/{VM}/state"
FAST = RetryPolicy(resume_patience_s=1.0, resume_interval_s=0.01, throttle_base_s=0.01)


@pytest.fixture
def endpoint(server: FakeServer, client: Client) -> FakeServer:
    """The fake serves the API and the endpoint; each minted token is tok-1, tok-2, ..."""
    counter = itertools.count(1)
    server.route("GET", f"/2025-09-09/microvms/{VM}", Reply(200, samples.microvm(VM, endpoint=server.netloc)))
    server.route("POST", TOKEN_ROUTE, lambda r: Reply(200, {"authToken": {"X-aws-proxy-auth": f"tok-{next(counter)}"}}))
    client.retry = FAST
    return server


def app_requests(server: FakeServer) -> list[Recorded]:
    return [r for r in server.requests if r.path.startswith("/microvms/")]


def mints(server: FakeServer) -> list[Recorded]:
    return [r for r in server.requests if r.path == TOKEN_ROUTE]


def test_request_sends_token_and_port_headers(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("POST", APP, Reply(200, {"ok": True}))
    response = client.microvms.handle(VM).request("POST", "/state", json={"a": 1}, port=8080)
    assert response.status_code == 200 and response.json() == {"ok": True}
    sent = app_requests(endpoint)[0]
    assert sent.headers["X-aws-proxy-auth"] == "tok-1"
    assert sent.headers["X-aws-proxy-port"] == "8080"
    assert sent.json() == {"a": 1} and sent.headers["Content-Type"] == "application/json"
    assert mints(endpoint)[0].json() == {"expirationInMinutes": 15, "allowedPorts": [{"port": 8080}]}


def test_token_is_minted_once_and_shared_between_handles(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("GET", APP, Reply(200, {}))
    for _ in range(3):
        client.microvms.handle(VM).request("GET", "/state")
    assert len(mints(endpoint)) == 1
    assert [r.headers["X-aws-proxy-auth"] for r in app_requests(endpoint)] == ["tok-1"] * 3


def test_another_port_gets_its_own_token(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("GET", APP, Reply(200, {}))
    vm = client.microvms.handle(VM)
    vm.request("GET", "/state", port=8080)
    vm.request("GET", "/state", port=9000)
    assert [m.json()["allowedPorts"] for m in mints(endpoint)] == [[{"port": 8080}], [{"port": 9000}]]
    assert app_requests(endpoint)[1].headers["X-aws-proxy-port"] == "9000"


def test_token_is_reminted_after_80_percent_of_its_lifetime(endpoint: FakeServer, client: Client) -> None:
    now = [1000.0]
    client.tokens = TokenCache(clock=lambda: now[0])
    endpoint.route("GET", APP, Reply(200, {}))
    vm = client.microvms.handle(VM)
    vm.request("GET", "/state")
    now[0] += 15 * 60 * 0.79
    vm.request("GET", "/state")
    assert len(mints(endpoint)) == 1
    now[0] += 15 * 60 * 0.02
    vm.request("GET", "/state")
    assert len(mints(endpoint)) == 2
    assert app_requests(endpoint)[-1].headers["X-aws-proxy-auth"] == "tok-2"


def test_403_remints_once_and_retries(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("GET", APP, lambda r: Reply(200 if r.headers["X-aws-proxy-auth"] == "tok-2" else 403,
                                               {"code": "token_expired"}))
    response = client.microvms.handle(VM).request("GET", "/state")
    assert response.status_code == 200
    assert [r.headers["X-aws-proxy-auth"] for r in app_requests(endpoint)] == ["tok-1", "tok-2"]


def test_a_second_403_is_returned_not_retried_forever(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("GET", APP, Reply(403, {"message": "forbidden by the app"}))
    response = client.microvms.handle(VM).request("GET", "/state")
    assert response.status_code == 403
    assert len(app_requests(endpoint)) == 2 and len(mints(endpoint)) == 2


def test_502_is_retried_while_the_vm_resumes(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("GET", APP, [Reply(502, {"code": "start_timeout"}), Reply(502, b"bad gateway"), Reply(200, {})])
    response = client.microvms.handle(VM).request("GET", "/state")
    assert response.status_code == 200
    assert len(app_requests(endpoint)) == 3 and len(mints(endpoint)) == 1


def test_502_gives_up_after_the_resume_patience(endpoint: FakeServer, client: Client) -> None:
    client.retry = RetryPolicy(resume_patience_s=0.3, resume_interval_s=0.05)
    endpoint.route("GET", APP, Reply(502, {"code": "app_not_listening"}))
    response = client.microvms.handle(VM).request("GET", "/state")
    assert response.status_code == 502
    assert 2 <= len(app_requests(endpoint)) <= 7


def test_502_for_a_suspended_vm_without_auto_resume_is_not_retried(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("GET", APP, Reply(502, {"code": "microvm_suspended", "message": "call ResumeMicrovm first"}))
    assert client.microvms.handle(VM).request("GET", "/state").status_code == 502
    assert len(app_requests(endpoint)) == 1


def test_429_is_retried_after_retry_after(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("GET", APP, [Reply(429, {}, {"Retry-After": "0"}), Reply(429, {}), Reply(200, {"n": 3})])
    response = client.microvms.handle(VM).request("GET", "/state")
    assert response.json() == {"n": 3} and len(app_requests(endpoint)) == 3


def test_429_gives_up_after_the_attempts(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("GET", APP, Reply(429, {}, {"Retry-After": "0"}))
    assert client.microvms.handle(VM).request("GET", "/state").status_code == 429
    assert len(app_requests(endpoint)) == FAST.throttle_attempts


def test_other_statuses_are_the_apps_answer(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("GET", APP, Reply(500, {"error": "app bug"}))
    assert client.microvms.handle(VM).request("GET", "/state").status_code == 500
    assert len(app_requests(endpoint)) == 1


def test_the_handle_fetches_the_endpoint_once(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("GET", APP, Reply(200, {}))
    vm = client.microvms.handle(VM)
    vm.request("GET", "/state")
    vm.request("GET", "state")
    gets = [r for r in endpoint.requests if r.method == "GET" and r.path == f"/2025-09-09/microvms/{VM}"]
    assert len(gets) == 1
    assert vm.url("/x") == f"http://{endpoint.netloc}/microvms/{VM}/x"


def test_terminate_forgets_the_tokens(endpoint: FakeServer, client: Client) -> None:
    endpoint.route("GET", APP, Reply(200, {}))
    endpoint.route("DELETE", f"/2025-09-09/microvms/{VM}", Reply(200, {}))
    vm = client.microvms.handle(VM)
    vm.request("GET", "/state")
    vm.terminate()
    assert client.tokens.get(VM, 8080) is None


def test_retry_policy_table() -> None:
    policy = RetryPolicy(resume_patience_s=10, resume_interval_s=2)
    assert policy.delay(403, {}, b"", attempt=1, waited_s=0, reminted=False) == 0.0
    assert policy.delay(401, {}, b"", attempt=2, waited_s=0, reminted=True) is None
    assert policy.delay(502, {}, b"", attempt=1, waited_s=0, reminted=False) == 2
    assert policy.delay(502, {}, b"", attempt=5, waited_s=9, reminted=False) is None
    assert policy.delay(429, {"retry-after": "3"}, b"", attempt=1, waited_s=0, reminted=False) == 3
    assert policy.delay(429, {"Retry-After": "999"}, b"", attempt=1, waited_s=0, reminted=False) is None
    delay = policy.delay(429, {}, b"", attempt=3, waited_s=0, reminted=False)
    assert delay is not None and 0.5 * 2 * 0.5 <= delay <= 2.0
    assert policy.delay(200, {}, b"", attempt=1, waited_s=0, reminted=False) is None
    assert policy.delay(404, {}, b"", attempt=1, waited_s=0, reminted=False) is None
