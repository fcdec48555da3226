"""Console sessions: their table (expiry, bounds, hashed keys) and the cookie + CSRF path into the real API routes."""

from __future__ import annotations

from typing import Any

from ember.console.sessions import COOKIE_NAME, CSRF_HEADER, MAX_SESSIONS_PER_ACCOUNT, SessionStore
from ember.store import accounts
from tests.unit.api.conftest import ACCOUNT_A, ACCOUNT_B, KEY_A, KEY_B
from tests.unit.console.conftest import Clock, Console, csrf
from tests.unit.store.conftest import make_image, make_microvm

MICROVMS = "/2025-09-09/microvms"


def test_a_session_ends_after_an_hour_unused() -> None:
    clock = Clock()
    table = SessionStore(clock=clock)
    cookie, _ = table.create(ACCOUNT_A, KEY_A[0])
    clock.advance(3599)
    assert table.use(cookie) is not None
    clock.advance(3599)
    assert table.use(cookie) is not None
    clock.advance(3600)
    assert table.use(cookie) is None
    assert len(table) == 0


def test_a_session_ends_eight_hours_after_sign_in_however_busy() -> None:
    clock = Clock()
    table = SessionStore(clock=clock)
    cookie, session = table.create(ACCOUNT_A, KEY_A[0])
    assert session.expires_at == clock.now + 8 * 3600
    for _ in range(15):
        clock.advance(1800)
        assert table.use(cookie) is not None
    clock.advance(1800)
    assert table.use(cookie) is None


def test_only_a_hash_of_the_cookie_is_kept() -> None:
    table = SessionStore()
    cookie, session = table.create(ACCOUNT_A, KEY_A[0])
    kept = repr(table.__dict__)
    assert cookie not in kept
    assert session.csrf_token != cookie
    assert table.use(cookie + "x") is None
    assert table.use("") is None and table.use(None) is None


def test_each_account_keeps_a_bounded_number_of_sessions_dropping_the_least_recently_used() -> None:
    clock = Clock()
    table = SessionStore(clock=clock)
    other, _ = table.create(ACCOUNT_B, KEY_B[0])
    cookies = []
    for _ in range(MAX_SESSIONS_PER_ACCOUNT):
        cookies.append(table.create(ACCOUNT_A, KEY_A[0])[0])
        clock.advance(1)
    assert table.use(cookies[0]) is not None  # now the most recently used
    newest, _ = table.create(ACCOUNT_A, KEY_A[0])
    assert len(table) == MAX_SESSIONS_PER_ACCOUNT + 1
    assert table.use(cookies[1]) is None
    assert all(table.use(c) is not None for c in [cookies[0], *cookies[2:], newest, other])


def test_revoke_ends_a_session() -> None:
    table = SessionStore()
    cookie, _ = table.create(ACCOUNT_A, KEY_A[0])
    assert table.revoke(cookie) is True
    assert table.revoke(cookie) is False
    assert table.revoke(None) is False
    assert table.use(cookie) is None


async def _list(console: Console, headers: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, Any]:
    response = await console.client.get(MICROVMS, headers=headers or {}, **kwargs)
    return response.status, await response.json()


def _seed(console: Console) -> tuple[str, str]:
    image_a, version_a = make_image(console.store, "web", ACCOUNT_A)
    image_b, version_b = make_image(console.store, "web", ACCOUNT_B)
    mine = make_microvm(console.store, image_a, version_a, account=ACCOUNT_A).id
    theirs = make_microvm(console.store, image_b, version_b, account=ACCOUNT_B).id
    return mine, theirs


async def test_the_cookie_with_the_csrf_header_is_accepted_on_an_api_route(console: Console) -> None:
    mine, _ = _seed(console)
    body = await console.sign_in()
    status, listed = await _list(console, csrf(body))
    assert status == 200
    assert [vm["microvmId"] for vm in listed["items"]] == [mine]


async def test_one_accounts_cookie_never_reaches_another_accounts_resources(console: Console) -> None:
    mine, theirs = _seed(console)
    body_a = await console.sign_in(KEY_A)
    browser_b = console.browser()
    signed_in = await browser_b.post("/console/session", json={"accessKeyId": KEY_B[0], "secretAccessKey": KEY_B[1]})
    body_b = await signed_in.json()
    assert body_b["accountId"] == ACCOUNT_B
    listed_b = await (await browser_b.get(MICROVMS, headers=csrf(body_b))).json()
    assert [vm["microvmId"] for vm in listed_b["items"]] == [theirs]
    _, listed_a = await _list(console, csrf(body_a))
    assert [vm["microvmId"] for vm in listed_a["items"]] == [mine]
    other = await console.client.get(f"{MICROVMS}/{theirs}", headers=csrf(body_a))
    assert (other.status, other.headers["x-amzn-ErrorType"]) == (404, "ResourceNotFoundException")
    # B's CSRF token with A's cookie is not a session of anyone's.
    assert (await _list(console, csrf(body_b)))[0] == 403


async def test_writes_go_through_the_api_with_its_validation(console: Console) -> None:
    mine, theirs = _seed(console)
    body = await console.sign_in()
    bad = await console.client.get(MICROVMS, params={"maxResults": "0"}, headers=csrf(body))
    assert (bad.status, bad.headers["x-amzn-ErrorType"]) == (400, "ValidationException")
    ended = await console.client.delete(f"{MICROVMS}/{mine}", headers=csrf(body))
    assert ended.status == 200
    assert ("terminate", mine) in console.ctx.microvms.calls  # type: ignore[attr-defined]
    refused = await console.client.delete(f"{MICROVMS}/{theirs}", headers=csrf(body))
    assert refused.status == 404


async def test_the_cookie_without_or_with_a_wrong_csrf_header_is_refused(console: Console) -> None:
    body = await console.sign_in()
    status, answer = await _list(console)
    assert status == 403
    assert answer["message"].startswith(f"console requests must carry the session's CSRF token in the {CSRF_HEADER}")
    assert (await _list(console, {CSRF_HEADER: body["csrfToken"][:-1] + "A"}))[0] == 403
    assert (await _list(console, {CSRF_HEADER: "é" * 43}))[0] == 403
    assert (await _list(console, csrf(body)))[0] == 200


async def test_an_expired_or_unknown_session_is_refused(console: Console) -> None:
    body = await console.sign_in()
    console.clock.advance(3601)
    status, answer = await _list(console, csrf(body))
    assert status == 403
    assert "sign in again" in answer["message"]
    forged = await console.client.get(MICROVMS, headers=csrf(body), cookies={COOKIE_NAME: "forged"})
    assert forged.status == 403


async def test_deleting_the_access_key_ends_its_sessions(console: Console) -> None:
    body = await console.sign_in()
    with console.store.write() as session:
        accounts.delete_access_key(session, KEY_A[0])
    status, answer = await _list(console, csrf(body))
    assert status == 403
    assert answer["message"].startswith("the access key of this console session no longer exists")
    assert len(console.sessions) == 0


async def test_without_a_cookie_the_sigv4_errors_are_unchanged(console: Console) -> None:
    status, answer = await _list(console)
    assert status == 403
    assert answer["message"].startswith("missing Authorization header")


async def test_an_authorization_header_takes_the_sigv4_path_even_with_a_valid_cookie(console: Console) -> None:
    body = await console.sign_in()
    status, answer = await _list(console, {**csrf(body), "Authorization": "Basic abc"})
    assert status == 403
    assert answer["message"].startswith("unsupported Authorization scheme")
