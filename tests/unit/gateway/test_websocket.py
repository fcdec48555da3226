"""Upgrade detection and Ember's WebSocket subprotocols."""

from __future__ import annotations

import base64
import hashlib

from ember.gateway.websocket import accept_key, is_upgrade, split_subprotocols


def test_upgrade_needs_both_headers() -> None:
    assert is_upgrade([(b"upgrade", b"WebSocket"), (b"connection", b"keep-alive, Upgrade")])
    assert not is_upgrade([(b"upgrade", b"websocket")])
    assert not is_upgrade([(b"upgrade", b"h2c"), (b"connection", b"upgrade")])


def test_ember_subprotocols_are_split_from_the_apps() -> None:
    ember = b"lambda-microvms, lambda-microvms.authentication.ember1.a.b, lambda-microvms.port.8081"
    offer = split_subprotocols([(b"sec-websocket-protocol", b"chat, v2.json"), (b"sec-websocket-protocol", ember)])
    assert offer.app == ["chat", "v2.json"]
    assert (offer.marker, offer.token, offer.port) == (True, "ember1.a.b", "8081")


def test_no_offer_is_empty() -> None:
    offer = split_subprotocols([])
    assert (offer.app, offer.marker, offer.token, offer.port) == ([], False, None, None)


def test_accept_key_follows_rfc_6455() -> None:
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    expected = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    assert accept_key([(b"sec-websocket-key", key), (b"sec-websocket-version", b"13")]) == expected
    assert accept_key([(b"sec-websocket-key", key), (b"sec-websocket-version", b"8")]) is None
    assert accept_key([(b"sec-websocket-version", b"13")]) is None
