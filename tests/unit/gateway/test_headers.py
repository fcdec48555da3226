"""Header rewriting both ways: Ember's headers never reach the app, hop-by-hop headers never cross."""

from __future__ import annotations

from ember.console import sessions
from ember.gateway.headers import CONSOLE_COOKIE, CONSOLE_ONLY, switching_to_client, to_app, to_client


def names(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [k for k, _ in headers]


def test_request_headers_lose_ember_and_hop_by_hop_headers_and_gain_forwarding_ones() -> None:
    sent = [(b"host", b"gw:9443"), (b"x-aws-proxy-auth", b"tok"), (b"x-aws-proxy-port", b"8080"),
            (b"x-amzn-requestid", b"spoofed"), (b"connection", b"keep-alive, x-secret"), (b"x-secret", b"1"),
            (b"keep-alive", b"5"), (b"te", b"trailers"), (b"expect", b"100-continue"),
            (b"x-forwarded-for", b"1.2.3.4"), (b"accept", b"*/*")]
    out = dict(to_app(sent, request_id="rid", client_ip="127.0.0.1", scheme="https", prefix="/microvms/x",
                      upgrade=False, app_subprotocols=[]))
    assert out == {b"host": b"gw:9443", b"accept": b"*/*", b"connection": b"close",
                   b"x-forwarded-for": b"1.2.3.4, 127.0.0.1", b"x-forwarded-proto": b"https",
                   b"x-amzn-requestid": b"rid", b"x-forwarded-prefix": b"/microvms/x"}


def test_chunked_wins_over_content_length() -> None:
    out = to_app([(b"host", b"h"), (b"content-length", b"5"), (b"transfer-encoding", b"chunked")], request_id="r",
                 client_ip="c", scheme="http", prefix="", upgrade=False, app_subprotocols=[])
    assert b"content-length" not in names(out)
    assert (b"transfer-encoding", b"chunked") in out


def test_missing_host_gets_one() -> None:
    out = to_app([], request_id="r", client_ip="c", scheme="http", prefix="", upgrade=False, app_subprotocols=[])
    assert (b"host", b"localhost") in out


def test_upgrade_keeps_the_upgrade_and_only_the_apps_subprotocols() -> None:
    sent = [(b"host", b"h"), (b"connection", b"Upgrade"), (b"upgrade", b"websocket"),
            (b"sec-websocket-protocol", b"chat, lambda-microvms, lambda-microvms.authentication.t")]
    out = to_app(sent, request_id="r", client_ip="c", scheme="http", prefix="", upgrade=True, app_subprotocols=["chat"])
    assert (b"connection", b"upgrade") in out and (b"upgrade", b"websocket") in out
    assert [v for k, v in out if k == b"sec-websocket-protocol"] == [b"chat"]


def test_response_headers_lose_hop_by_hop_and_framing() -> None:
    got = [(b"content-type", b"text/plain"), (b"transfer-encoding", b"chunked"), (b"content-length", b"3"),
           (b"connection", b"close"), (b"keep-alive", b"timeout=5")]
    assert to_client(got, "rid") == [(b"content-type", b"text/plain"), (b"x-amzn-requestid", b"rid")]
    assert to_client([(b"x-amzn-requestid", b"app")], "rid") == [(b"x-amzn-requestid", b"app")]


def test_switching_adds_the_marker_only_when_the_app_chose_no_subprotocol() -> None:
    assert (b"sec-websocket-protocol", b"lambda-microvms") in switching_to_client([], "r", add_marker=True)
    chose = switching_to_client([(b"sec-websocket-protocol", b"chat")], "r", add_marker=True)
    assert [v for k, v in chose if k == b"sec-websocket-protocol"] == [b"chat"]
    assert b"sec-websocket-protocol" not in names(switching_to_client([], "r", add_marker=False))


def forwarded_cookies(*values: bytes) -> list[bytes]:
    sent = [(b"host", b"h")] + [(b"cookie", v) for v in values]
    out = to_app(sent, request_id="r", client_ip="c", scheme="http", prefix="", upgrade=False, app_subprotocols=[])
    return [v for k, v in out if k == b"cookie"]


def test_the_console_session_cookie_is_cut_out_and_the_apps_cookies_kept() -> None:
    assert forwarded_cookies(b"theme=dark; ember_console=s3cr3t; cart=42") == [b"theme=dark; cart=42"]
    assert forwarded_cookies(b"ember_console=s3cr3t;theme=dark") == [b"theme=dark"]
    assert forwarded_cookies(b"a=1", b" ember_console = s3cr3t ; b=2") == [b"a=1", b"b=2"]
    # Names are compared exactly: a cookie that only resembles the console's is the app's own.
    assert forwarded_cookies(b"ember_console_pref=1; Ember_Console=2") == [b"ember_console_pref=1; Ember_Console=2"]
    assert forwarded_cookies(b"x=ember_console=1") == [b"x=ember_console=1"]


def test_a_cookie_header_holding_only_the_console_cookie_is_dropped() -> None:
    assert forwarded_cookies(b"ember_console=s3cr3t") == []
    assert forwarded_cookies(b"ember_console=a; ember_console=b;") == []
    assert forwarded_cookies(b"ember_console") == []


def test_the_console_csrf_header_never_reaches_the_app() -> None:
    sent = [(b"host", b"h"), (b"x-ember-csrf", b"token"), (b"accept", b"*/*")]
    out = to_app(sent, request_id="r", client_ip="c", scheme="http", prefix="", upgrade=True, app_subprotocols=[])
    assert b"x-ember-csrf" not in names(out) and (b"accept", b"*/*") in out


def test_the_console_names_are_the_consoles() -> None:
    assert CONSOLE_COOKIE.decode() == sessions.COOKIE_NAME
    assert sessions.CSRF_HEADER.lower().encode() in CONSOLE_ONLY
