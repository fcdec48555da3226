"""The control-plane HTTP application: ``create_app(ctx)`` serves every route of ``routes.ROUTES``.

Each request is authenticated (SigV4, ``auth``), its path, query and body members are merged and validated with
the operation's contract model, the handler runs, and the result is written as rest-json with the model's status.
Whatever a handler raises goes through ``errors.to_api_error`` (one table), so every failure a client sees is a
contract error with ``x-amzn-ErrorType``; unexpected ones are logged and answered as InternalServerException
without a traceback. ``GET /healthz`` and ``GET /openapi.json`` need no credentials.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from ember.api import auth
from ember.api._http import CALLER, MAX_BODY_BYTES, Call, Caller, query_members, read_json_body
from ember.api.context import ApiContext
from ember.api.errors import (
    REQUEST_ID_HEADER,
    MethodNotAllowedException,
    PayloadTooLargeException,
    UnknownOperationException,
    classic_error,
    error_response,
    to_api_error,
)
from ember.api.logs import CLOSING
from ember.api.openapi import openapi_document
from ember.api.quotas import RUN_LIMITER, RateLimiter
from ember.api.routes import ROUTES, Route
from ember.api.upload_quotas import UPLOAD_QUOTAS, UploadQuotas
from ember.contract.errors import AccessDeniedException, ApiError, InternalServerException
from ember.store import accounts

log = logging.getLogger(__name__)

CTX = web.AppKey("ember_ctx", ApiContext)
SessionAuth = Callable[[web.Request], Awaitable[Caller | None]]
SESSION_AUTH: web.AppKey[SessionAuth] = web.AppKey("ember_session_auth")
"""Set by ``ember.console.app.install``: the account and access key of a request's console session (None without a
cookie)."""
_ROUTE = web.RequestKey("ember_route", Route)
_REQUEST_ID = web.RequestKey("ember_request_id", str)


async def authenticate(ctx: ApiContext, request: web.Request, body: bytes) -> str:
    """The account id of the key that signed ``request``; AccessDeniedException otherwise.

    A request without ``Authorization`` may instead carry a console session (``SESSION_AUTH``, installed by
    ``ember.console``): same account scoping, no other path into the handlers. The accepted caller (account and
    access key id) is also kept on the request as ``request[CALLER]``.
    """
    session_auth = request.app.get(SESSION_AUTH)
    if session_auth is not None and "Authorization" not in request.headers:
        caller = await session_auth(request)
        if caller is not None:
            request[CALLER] = caller
            return caller.account_id
    parsed = auth.parse_authorization(request.headers.get("Authorization"))

    def lookup(session):  # type: ignore[no-untyped-def]
        key = accounts.find_access_key(session, parsed.access_key_id)
        return None if key is None else (key.secret_access_key, key.account_id)

    found = await ctx.store.aread(lookup)
    if found is None:
        raise AccessDeniedException(
            f"the access key id {parsed.access_key_id[:128]!r} is not known to this Ember server "
            "(`ember credentials` prints the root key)"
        )
    secret, account_id = found
    signed = auth.SignedRequest(request.method, request.raw_path, request.headers, body)
    auth.verify(signed, parsed, secret, now=datetime.now(UTC))
    request[CALLER] = Caller(str(account_id), parsed.access_key_id)
    return str(account_id)


def _endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        request[_ROUTE] = route
        ctx = request.app[CTX]
        # A raw-body route streams its body itself, after the signature (over an empty payload) checked out.
        raw = b"" if route.raw_body else await request.read()
        account_id = await authenticate(ctx, request, raw)
        body = {} if route.raw_body else (await read_json_body(request))[1]
        members = {
            **body,
            **query_members(request, route.query, route.list_members, route.request),
            **request.match_info,
        }
        caller = request.get(CALLER)
        key_id = caller.access_key_id if caller is not None and caller.account_id == account_id else None
        call = Call(ctx, account_id, request, members, body, access_key_id=key_id)
        result = await route.handler(call)
        if isinstance(result, web.StreamResponse):
            return result
        if route.status == 204:
            return web.Response(status=204)
        return web.json_response(result.to_wire() if result is not None else {}, status=route.status)  # type: ignore[attr-defined]

    handle.__name__ = route.operation
    return handle


def _router_error(exc: web.HTTPException, request: web.Request) -> ApiError | None:
    if isinstance(exc, web.HTTPNotFound):
        return UnknownOperationException(f"no operation is served at {request.method} {request.path[:200]}")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowedException(f"{request.path[:200]} does not accept {request.method} (allowed: {allowed})")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLargeException(f"request body: larger than the maximum {MAX_BODY_BYTES} bytes")
    return None


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every exception becomes a contract error response (``errors.ERROR_TABLE``)."""
    request[_REQUEST_ID] = str(uuid.uuid4())
    try:
        return await handler(request)
    except web.HTTPException as exc:
        error = _router_error(exc, request)
        if error is None:
            raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        error = to_api_error(exc)
        if isinstance(error, InternalServerException) and not isinstance(exc, ApiError):
            route = request.get(_ROUTE)
            log.exception(
                "API request failed",
                extra={
                    "action": "api_internal_error",
                    "operation": route.operation if route else None,
                    "request_id": request[_REQUEST_ID],
                },
            )
    route = request.get(_ROUTE)
    if route is not None and route.tag_api:
        error = classic_error(error)
    return error_response(error, request[_REQUEST_ID])


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    request_id = request.get(_REQUEST_ID)
    if request_id and REQUEST_ID_HEADER not in response.headers:
        response.headers[REQUEST_ID_HEADER] = request_id


async def healthz(request: web.Request) -> web.Response:
    """Liveness: 200 and ``{"status": "ok"}`` while the server answers (no credentials needed)."""
    return web.json_response({"status": "ok"})


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API (no credentials needed)."""
    return web.json_response(request.app[_OPENAPI])


_OPENAPI = web.AppKey("ember_openapi", dict)


def create_app(ctx: ApiContext) -> web.Application:
    """The aiohttp application of the control plane for ``ctx``."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY_BYTES)
    app[CTX] = ctx
    app[RUN_LIMITER] = RateLimiter(rate=ctx.quotas.run_per_second, burst=ctx.quotas.run_burst)
    app[UPLOAD_QUOTAS] = UploadQuotas(ctx.quotas)
    app[CLOSING] = asyncio.Event()
    app[_OPENAPI] = openapi_document(region=ctx.region)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _endpoint(route))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi_json)
    app.on_response_prepare.append(_add_request_id)

    async def closing(app: web.Application) -> None:
        app[CLOSING].set()

    app.on_shutdown.append(closing)
    return app
