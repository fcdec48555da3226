"""Header rewriting both ways: Ember's headers never reach the app, hop-by-hop headers never cross."""

from __future__ import annotations

from ember.gateway.headers import switching_to_client, to_app, to_client


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
