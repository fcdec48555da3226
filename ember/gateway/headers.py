"""What the gateway changes in the headers it forwards, both ways.

Towards the app: Ember's own headers (``X-aws-proxy-*``) and any client-supplied ``x-amzn-requestid``
are removed, so an app can tell platform hook calls (no request id) from proxied traffic; hop-by-hop
headers are dropped and the body framing is restated (h11 re-frames the body, so a request carrying
both ``Content-Length`` and ``Transfer-Encoding`` reaches the app with one unambiguous framing);
``x-amzn-requestid``, ``X-Forwarded-For``/``-Proto``/``-Prefix`` are added. The web console's credentials never
reach a guest: its session cookie is cut out of ``Cookie`` (the app's own cookies stay) and its CSRF header is
dropped; a browser sends the console's cookie to the gateway too when both share a host name, because cookies
ignore ports. Towards the client:
hop-by-hop headers and framing are dropped and h11 frames the response for the client's connection.
"""

from __future__ import annotations

from .websocket import header_values

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                        b"transfer-encoding", b"upgrade", b"proxy-authenticate", b"proxy-authorization"})
GATEWAY_ONLY = frozenset({b"x-aws-proxy-auth", b"x-aws-proxy-port", b"x-aws-proxy-force-h2",
                          b"x-amzn-requestid", b"x-forwarded-prefix"})
"""Request headers that belong to the gateway: never forwarded as the client sent them."""
REQUEST_ID = b"x-amzn-requestid"
CONSOLE_COOKIE = b"ember_console"
"""The console's session cookie (``ember.console.sessions.COOKIE_NAME``; the gateway does not import the console)."""
CONSOLE_ONLY = frozenset({b"x-ember-csrf"})
"""Request headers of the console's session (``ember.console.sessions.CSRF_HEADER``): never forwarded."""
COOKIE = b"cookie"

Headers = list[tuple[bytes, bytes]]


def to_app(headers: Headers, *, request_id: str, client_ip: str, scheme: str, prefix: str,
           upgrade: bool, app_subprotocols: list[str]) -> Headers:
    """The request headers the app receives."""
    nominated = {v.lower().encode("latin-1") for v in header_values(headers, b"connection")}
    chunked = any(k == b"transfer-encoding" for k, _ in headers)
    out: Headers = []
    forwarded_for: list[bytes] = []
    have_host = False
    for name, value in headers:
        if name in HOP_BY_HOP or name in GATEWAY_ONLY or name in CONSOLE_ONLY or name in nominated:
            continue
        if name == COOKIE:
            value = without_console_cookie(value)
            if not value:
                continue
        if name == b"content-length" and chunked:
            continue
        if name in (b"expect", b"sec-websocket-protocol"):
            continue  # the gateway answers 100-continue itself; subprotocols are restated below
        if name == b"x-forwarded-for":
            forwarded_for.append(value)
            continue
        have_host = have_host or name == b"host"
        out.append((name, value))
    if not have_host:
        out.append((b"host", b"localhost"))  # HTTP/1.0 clients may omit it; the app gets HTTP/1.1
    if chunked:
        out.append((b"transfer-encoding", b"chunked"))
    if upgrade:
        out += [(b"connection", b"upgrade"), (b"upgrade", b"websocket")]
        if app_subprotocols:
            out.append((b"sec-websocket-protocol", ", ".join(app_subprotocols).encode("latin-1")))
    else:
        # One app connection per request: the app may close as soon as it has answered.
        out.append((b"connection", b"close"))
    forwarded_for.append(client_ip.encode("latin-1"))
    out += [(b"x-forwarded-for", b", ".join(forwarded_for)), (b"x-forwarded-proto", scheme.encode("latin-1")),
            (REQUEST_ID, request_id.encode("latin-1"))]
    if prefix:
        out.append((b"x-forwarded-prefix", prefix.encode("latin-1")))
    return out


def without_console_cookie(value: bytes) -> bytes:
    """A ``Cookie`` header value without the console's session cookie, the other cookies as sent (empty if none)."""
    pairs = [pair.strip(b" \t") for pair in value.split(b";")]
    kept = [pair for pair in pairs if pair and pair.split(b"=", 1)[0].strip(b" \t") != CONSOLE_COOKIE]
    return b"; ".join(kept)


def to_client(headers: Headers, request_id: str) -> Headers:
    """The response headers the client receives (h11 adds the framing for the client's connection)."""
    nominated = {v.lower().encode("latin-1") for v in header_values(headers, b"connection")}
    chunked = any(k == b"transfer-encoding" for k, _ in headers)
    out = [(k, v) for k, v in headers
           if k not in HOP_BY_HOP and k not in nominated and not (chunked and k == b"content-length")]
    if not any(k == REQUEST_ID for k, _ in out):
        out.append((REQUEST_ID, request_id.encode("latin-1")))
    return out


def switching_to_client(headers: Headers, request_id: str, add_marker: bool) -> Headers:
    """The 101 response headers the client receives; ``add_marker`` selects the ``lambda-microvms`` subprotocol."""
    out = to_client(headers, request_id)
    out += [(b"connection", b"Upgrade"), (b"upgrade", b"websocket")]
    if add_marker and not any(k == b"sec-websocket-protocol" for k, _ in out):
        out.append((b"sec-websocket-protocol", b"lambda-microvms"))
    return out
