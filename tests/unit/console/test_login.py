"""Sign-in, session read and sign-out at ``/console/session``: cookie attributes, refusals, throttling."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ember.api.testing import make_context
from ember.console.app import create_app
from ember.console.login import REFUSED_MESSAGE
from ember.console.sessions import COOKIE_NAME, CSRF_HEADER
from ember.console.throttle import MAX_FAILURES, MAX_KEY_FAILURES, WINDOW_S
from ember.store import Store
from tests.unit.api.conftest import ACCOUNT_A, KEY_A, KEY_B
from tests.unit.console.conftest import Console, csrf


async def _post(console: Console, body: object, **kwargs: object) -> tuple[int, dict[str, str], dict[str, object]]:
    response = await console.client.post("/console/session", json=body, **kwargs)  # type: ignore[arg-type]
    return response.status, dict(response.headers), await response.json()


async def test_sign_in_answers_the_session_and_sets_a_strict_http_only_cookie(console: Console) -> None:
    response = await console.client.post(
        "/console/session", json={"accessKeyId": KEY_A[0], "secretAccessKey": KEY_A[1]}
    )
    assert response.status == 200
    body = await response.json()
    assert body == {
        "accountId": ACCOUNT_A,
        "accessKeyId": KEY_A[0],
        "csrfToken": body["csrfToken"],
        "expiresAt": "2025-09-09T20:00:00Z",
    }
    assert len(body["csrfToken"]) >= 40
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"):
        assert attribute in cookie
    assert "Secure" not in cookie
    value = response.cookies[COOKIE_NAME].value
    assert len(value) >= 40 and value != body["csrfToken"]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


async def test_over_https_the_cookie_is_secure(console_store: Store, tmp_path: Path) -> None:
    @web.middleware
    async def as_https(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        return await handler(request.clone(scheme="https"))

    app = create_app(make_context(console_store, tmp_path / "images"))
    app.middlewares.insert(0, as_https)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/console/session", json={"accessKeyId": KEY_A[0], "secretAccessKey": KEY_A[1]})
        assert response.status == 200
        assert "Secure" in response.headers["Set-Cookie"]


async def test_a_wrong_secret_and_an_unknown_key_get_the_same_refusal(console: Console) -> None:
    wrong = await console.client.post("/console/session", json={"accessKeyId": KEY_A[0], "secretAccessKey": KEY_B[1]})
    unknown = await console.client.post(
        "/console/session", json={"accessKeyId": "AKIANOSUCHKEY0000000", "secretAccessKey": KEY_A[1]}
    )
    for response in (wrong, unknown):
        assert response.status == 403
        assert response.headers["x-amzn-ErrorType"] == "AccessDeniedException"
        assert await response.json() == {"message": REFUSED_MESSAGE}
        assert "Set-Cookie" not in response.headers
    assert len(console.sessions) == 0


async def test_a_bad_body_is_a_validation_error_naming_the_field(console: Console) -> None:
    cases = [
        ({"accessKeyId": KEY_A[0]}, "secretAccessKey: required field is missing"),
        ({"accessKeyId": 7, "secretAccessKey": "x"}, "accessKeyId: expected a string, got an integer"),
        ({"accessKeyId": "", "secretAccessKey": "x"}, "accessKeyId: length 0 is less than the minimum length 1"),
        (
            {**dict(zip(("accessKeyId", "secretAccessKey"), KEY_A, strict=True)), "remember": True},
            "remember: unknown field: this operation does not accept it",
        ),
        ([1], "request body: expected a JSON object, got list"),
    ]
    for body, message in cases:
        status, headers, answer = await _post(console, body)
        assert (status, headers["x-amzn-ErrorType"]) == (400, "ValidationException"), body
        assert answer["message"] == message
    not_json = await console.client.post(
        "/console/session", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (await not_json.json())["message"].startswith("request body: is not valid JSON")
    form = await console.client.post("/console/session", data={"accessKeyId": KEY_A[0], "secretAccessKey": KEY_A[1]})
    assert form.status == 400
    assert (await form.json())["message"] == (
        "Content-Type: must be application/json, got 'application/x-www-form-urlencoded'"
    )


async def test_failed_sign_ins_are_throttled_per_address_even_with_the_right_key(console: Console) -> None:
    wrong = {"accessKeyId": KEY_A[0], "secretAccessKey": "not-the-secret"}
    right = {"accessKeyId": KEY_A[0], "secretAccessKey": KEY_A[1]}
    for _ in range(MAX_FAILURES):
        assert (await _post(console, wrong))[0] == 403
        console.clock.advance(1)
    status, headers, body = await _post(console, right)
    assert (status, headers["x-amzn-ErrorType"], headers["Retry-After"]) == (429, "ThrottlingException", "50")
    assert "too many failed console sign-ins" in str(body["message"])
    console.clock.advance(WINDOW_S - MAX_FAILURES)
    assert (await _post(console, right))[0] == 200


async def _throttled_console(console_store: Store, tmp_path: Path) -> TestClient:  # type: ignore[type-arg]
    """The console, with each request's remote address taken from the test header ``X-Remote``."""

    @web.middleware
    async def from_remote(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        return await handler(request.clone(remote=request.headers.get("X-Remote", "127.0.0.1")))

    app = create_app(make_context(console_store, tmp_path / "images"))
    app.middlewares.insert(0, from_remote)
    return TestClient(TestServer(app))


async def test_failed_sign_ins_are_throttled_per_key_id_across_addresses(console_store: Store, tmp_path: Path) -> None:
    async with await _throttled_console(console_store, tmp_path) as client:
        for n in range(MAX_KEY_FAILURES):
            wrong = await client.post(
                "/console/session",
                json={"accessKeyId": KEY_A[0], "secretAccessKey": "not-the-secret"},
                headers={"X-Remote": f"198.51.100.{n}"},
            )
            assert wrong.status == 403
        right = {"accessKeyId": KEY_A[0], "secretAccessKey": KEY_A[1]}
        refused = await client.post("/console/session", json=right, headers={"X-Remote": "203.0.113.1"})
        assert (refused.status, refused.headers["x-amzn-ErrorType"]) == (429, "ThrottlingException")
        assert "with this access key id" in (await refused.json())["message"]
        other = {"accessKeyId": KEY_B[0], "secretAccessKey": KEY_B[1]}
        assert (await client.post("/console/session", json=other, headers={"X-Remote": "203.0.113.1"})).status == 200


async def test_failed_sign_ins_from_one_ipv6_64_count_together(console_store: Store, tmp_path: Path) -> None:
    async with await _throttled_console(console_store, tmp_path) as client:
        for n in range(MAX_FAILURES):
            wrong = await client.post(
                "/console/session",
                json={"accessKeyId": f"AKIAGUESS{n:011d}", "secretAccessKey": "x"},
                headers={"X-Remote": f"2001:db8:7:7::{n + 1:x}"},
            )
            assert wrong.status == 403
        right = {"accessKeyId": KEY_A[0], "secretAccessKey": KEY_A[1]}
        refused = await client.post("/console/session", json=right, headers={"X-Remote": "2001:db8:7:7:ffff::1"})
        assert refused.status == 429
        assert "from this address's /64" in (await refused.json())["message"]
        next_64 = await client.post("/console/session", json=right, headers={"X-Remote": "2001:db8:7:8::1"})
        assert next_64.status == 200


async def test_successful_sign_ins_do_not_count_against_the_throttle(console: Console) -> None:
    for _ in range(MAX_FAILURES + 5):
        await console.sign_in()
    assert (await _post(console, {"accessKeyId": KEY_A[0], "secretAccessKey": "x"}))[0] == 403


async def test_get_session_returns_the_same_body_and_needs_a_live_session(console: Console) -> None:
    assert (await console.client.get("/console/session")).status == 403
    body = await console.sign_in()
    again = await console.client.get("/console/session")
    assert again.status == 200
    assert await again.json() == body
    console.clock.advance(3601)
    expired = await console.client.get("/console/session")
    assert (expired.status, expired.headers["x-amzn-ErrorType"]) == (403, "AccessDeniedException")
    assert "sign in again" in (await expired.json())["message"]


async def test_sign_out_needs_the_csrf_token_then_ends_the_session_and_clears_the_cookie(console: Console) -> None:
    body = await console.sign_in()
    cookie = console.client.session.cookie_jar.filter_cookies(console.server.make_url("/"))[COOKIE_NAME].value
    refused = await console.client.delete("/console/session")
    assert refused.status == 403
    assert (await console.client.delete("/console/session", headers={CSRF_HEADER: "wrong"})).status == 403
    assert (await console.client.get("/console/session")).status == 200
    done = await console.client.delete("/console/session", headers=csrf(body))
    assert done.status == 204
    cleared = done.headers["Set-Cookie"]
    assert cleared.startswith(f"{COOKIE_NAME}=") and "Max-Age=0" in cleared
    assert len(console.sessions) == 0
    replayed = await console.client.get("/console/session", cookies={COOKIE_NAME: cookie})
    assert replayed.status == 403
