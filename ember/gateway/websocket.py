"""WebSocket upgrade requests as the gateway sees them: detection, Ember's subprotocols, the accept key.

Browsers cannot set headers on a WebSocket, so clients pass the token and port as subprotocols
(CONTRACT §3): ``<app protocols>, lambda-microvms, lambda-microvms.authentication.<token>,
lambda-microvms.port.<port>``. Ember's entries are removed before the app sees the upgrade. A
browser fails the handshake if it offered subprotocols and the answer names none, so when the app
selects none the gateway answers with the ``lambda-microvms`` marker. Frames themselves are never
parsed here: an app's WebSocket is a byte tunnel; only the shell (``shell.py``) speaks frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsproto.utilities import generate_accept_token

MARKER = "lambda-microvms"
AUTH_PREFIX = "lambda-microvms.authentication."
PORT_PREFIX = "lambda-microvms.port."
SUPPORTED_VERSION = b"13"


@dataclass(frozen=True)
class Subprotocols:
    """A ``Sec-WebSocket-Protocol`` offer split into the app's entries and Ember's."""

    app: list[str] = field(default_factory=list)
    marker: bool = False
    token: str | None = None
    port: str | None = None


def header_values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Comma-separated values of every ``name`` header (h11 lowercases names), stripped, empties dropped."""
    values: list[str] = []
    for key, value in headers:
        if key == name:
            values.extend(v.strip() for v in value.decode("latin-1").split(","))
    return [v for v in values if v]


def is_upgrade(headers: list[tuple[bytes, bytes]]) -> bool:
    """A WebSocket upgrade request: ``Upgrade: websocket`` and ``Connection: upgrade``."""
    upgrade = [v.lower() for v in header_values(headers, b"upgrade")]
    connection = [v.lower() for v in header_values(headers, b"connection")]
    return "websocket" in upgrade and "upgrade" in connection


def split_subprotocols(headers: list[tuple[bytes, bytes]]) -> Subprotocols:
    """The offered subprotocols, with Ember's entries taken out."""
    app: list[str] = []
    marker, token, port = False, None, None
    for value in header_values(headers, b"sec-websocket-protocol"):
        if value == MARKER:
            marker = True
        elif value.startswith(AUTH_PREFIX):
            token = value[len(AUTH_PREFIX):]
        elif value.startswith(PORT_PREFIX):
            port = value[len(PORT_PREFIX):]
        else:
            app.append(value)
    return Subprotocols(app=app, marker=marker, token=token, port=port)


def accept_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """``Sec-WebSocket-Accept`` for a version-13 handshake, or None when the request is not a valid one."""
    keys = [v for k, v in headers if k == b"sec-websocket-key"]
    versions = [v.strip() for k, v in headers if k == b"sec-websocket-version"]
    if len(keys) != 1 or versions != [SUPPORTED_VERSION]:
        return None
    return generate_accept_token(keys[0].strip())
