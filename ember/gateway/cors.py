"""Cross-origin (CORS) answers for browsers calling a MicroVM endpoint from another origin (the web console).

A browser sends the endpoint token in ``X-aws-proxy-auth``, a non-simple header, so before the request itself
it sends a *preflight*: ``OPTIONS`` with ``Origin``, ``Access-Control-Request-Method`` and
``Access-Control-Request-Headers``. By the Fetch standard a preflight never carries the headers it asks about,
so it cannot carry the token. The gateway therefore answers a preflight itself (it never reaches the app), and
only when the request it announces will carry a token (``x-aws-proxy-auth`` among the requested headers). That
answer grants nothing by itself: the request that follows goes through the whole pipeline, token check
included, and its response carries ``Access-Control-Allow-Origin`` only once its token has been verified.

``Access-Control-Allow-Origin`` echoes the request's ``Origin`` (with ``Vary: Origin``): what authorises a call
is the bearer token the page holds, not ambient credentials, so any origin may present one. No
``Access-Control-Allow-Credentials`` is ever sent, so browsers never attach cookies. An app that answers with its
own ``Access-Control-Allow-Origin`` keeps its own policy. WebSockets need none of this (a browser sends the
token as a subprotocol and WebSockets are not subject to CORS).
"""

from __future__ import annotations

import re

from .websocket import header_values

Headers = list[tuple[bytes, bytes]]

ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods a preflight may announce (CONNECT and TRACE never)."""
TOKEN_HEADER_NAME = "x-aws-proxy-auth"
PREFLIGHT_MAX_AGE_S = 600
"""How long a browser may reuse a preflight answer (Chromium caps it at 7200 s)."""
EXPOSED_HEADERS = b"x-amzn-requestid, retry-after, content-type, content-length"
"""Response headers a page may read besides the CORS-safelisted ones."""
_ORIGIN_RE = re.compile(r"^(null|[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#,]+)$")
_TOKEN_CHARS_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9a-zA-Z-]+$")
"""An HTTP token (RFC 9110 §5.6.2): what a header name may be."""


def origin_of(headers: Headers) -> str | None:
    """The request's ``Origin`` when it is a serialised origin (``scheme://host[:port]`` or ``null``), else None."""
    values = [v.decode("latin-1").strip() for k, v in headers if k == b"origin"]
    if len(values) != 1 or not _ORIGIN_RE.match(values[0]):
        return None
    return values[0]


def preflight(method: bytes, headers: Headers) -> Headers | None:
    """The headers of a 204 answering this request as a CORS preflight, or None when it is not one to answer.

    Answered: ``OPTIONS`` with a valid ``Origin``, an allowed ``Access-Control-Request-Method``, requested headers
    that include ``x-aws-proxy-auth``, and no body. Anything else goes down the usual path (where a request
    without a token is refused, without CORS headers).
    """
    if method != b"OPTIONS":
        return None
    origin = origin_of(headers)
    requested = [v.decode("latin-1").strip() for k, v in headers if k == b"access-control-request-method"]
    if origin is None or len(requested) != 1 or requested[0] not in ALLOWED_METHODS:
        return None
    if any(k == b"transfer-encoding" or (k == b"content-length" and v.strip() != b"0") for k, v in headers):
        return None
    names = [v.lower() for v in header_values(headers, b"access-control-request-headers")]
    if TOKEN_HEADER_NAME not in names or not all(_TOKEN_CHARS_RE.match(n) for n in names):
        return None
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-methods", requested[0].encode("latin-1")),
        (b"access-control-allow-headers", ", ".join(names).encode("latin-1")),
        (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
        (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
    ]


def response_headers(origin: str | None) -> Headers:
    """The CORS headers of a response to a request from ``origin`` whose token was verified (none without one)."""
    if origin is None:
        return []
    return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
            (b"access-control-expose-headers", EXPOSED_HEADERS)]


def add_to_response(headers: Headers, origin: str | None) -> Headers:
    """``headers`` (the app's response) with the CORS headers added, unless the app answered CORS itself."""
    if origin is None or any(k.lower() == b"access-control-allow-origin" for k, _ in headers):
        return headers
    return [*headers, *response_headers(origin)]
