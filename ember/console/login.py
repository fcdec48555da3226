"""``/console/session``: sign in with an access key pair (POST), read the session (GET), sign out (DELETE).

::

    POST   /console/session  {"accessKeyId", "secretAccessKey"}  → 200 SessionInfo + Set-Cookie ember_console=…
    GET    /console/session                                      → 200 SessionInfo (same csrfToken) | 403
    DELETE /console/session  (X-Ember-Csrf)                      → 204, cookie cleared | 403

``SessionInfo`` is ``{"accountId", "accessKeyId", "csrfToken", "expiresAt"}`` (``expiresAt`` ISO 8601, UTC).
A refused key pair is AccessDeniedException whatever half was wrong; failed sign-ins are throttled per remote
address (an IPv6 one by its /64) and per access key id (``throttle``). Errors have the API's shape
(``ember.api.errors.error_response``).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from aiohttp import web
from pydantic import StringConstraints
from sqlalchemy.orm import Session

from ember.api._http import read_json_body
from ember.api._time import iso
from ember.api.app import CTX
from ember.console.sessions import (
    COOKIE_NAME,
    SESSIONS,
    ConsoleSession,
    csrf_matches,
    current_session,
)
from ember.console.static import with_security_headers
from ember.console.throttle import LoginThrottle
from ember.contract._base import ApiModel
from ember.contract.errors import AccessDeniedException, ValidationException
from ember.contract.validation import parse_request
from ember.store import accounts

THROTTLE = web.AppKey("ember_console_throttle", LoginThrottle)
REFUSED_MESSAGE = "the access key pair was not accepted: check the access key id and the secret access key"
"""Says nothing of which half was wrong, so the answer cannot confirm that a key id exists."""
_DUMMY_SECRET = b"\0" * 40
"""Compared against for an unknown key id, so that answer takes as long as a wrong secret."""

KeyText = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class SignInRequest(ApiModel):
    """The body of ``POST /console/session``."""

    accessKeyId: KeyText
    secretAccessKey: KeyText


def _info(session: ConsoleSession) -> dict[str, Any]:
    return {
        "accountId": session.account_id,
        "accessKeyId": session.access_key_id,
        "csrfToken": session.csrf_token,
        "expiresAt": iso(session.expires_at),
    }


def _clear_cookie(response: web.StreamResponse, request: web.Request) -> None:
    response.set_cookie(COOKIE_NAME, "", max_age=0, path="/", httponly=True, samesite="Strict", secure=request.secure)


async def sign_in(request: web.Request) -> web.StreamResponse:
    """Exchange an access key pair for a console session cookie."""
    if request.content_type != "application/json":
        # A cross-site form cannot send application/json without a CORS preflight: no forced sign-ins.
        raise ValidationException.for_field("Content-Type", f"must be application/json, got {request.content_type!r}")
    _, body = await read_json_body(request)
    wanted = parse_request(SignInRequest, body)
    throttle = request.app[THROTTLE]
    attempt = throttle.begin(request.remote or "unknown", wanted.accessKeyId)

    def lookup(db: Session) -> tuple[bytes, str] | None:
        key = accounts.find_access_key(db, wanted.accessKeyId)
        return None if key is None else (key.secret_access_key.encode(), str(key.account_id))

    found = await request.app[CTX].store.aread(lookup)
    given = wanted.secretAccessKey.encode("utf-8", "surrogatepass")
    matched = hmac.compare_digest(given, found[0] if found else _DUMMY_SECRET)
    if found is None or not matched:
        raise AccessDeniedException(REFUSED_MESSAGE)
    throttle.succeeded(attempt)
    cookie, session = request.app[SESSIONS].create(found[1], wanted.accessKeyId)
    response = web.json_response(_info(session))
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=int(request.app[SESSIONS].max_age_s),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return with_security_headers(response)


async def get_session(request: web.Request) -> web.StreamResponse:
    """The current session (the CSRF token included, so a reloaded page can go on), or 403."""
    return with_security_headers(web.json_response(_info(await current_session(request))))


async def sign_out(request: web.Request) -> web.StreamResponse:
    """End the current session (needs ``X-Ember-Csrf``) and clear the cookie."""
    session = await current_session(request)
    if not csrf_matches(request, session):
        raise AccessDeniedException("signing out needs the session's CSRF token in the X-Ember-Csrf header")
    request.app[SESSIONS].revoke(request.cookies.get(COOKIE_NAME))
    response = web.Response(status=204)
    _clear_cookie(response, request)
    return with_security_headers(response)
