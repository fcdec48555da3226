"""The answers the gateway itself gives (as opposed to the app's): one exception type and its JSON body.

Every status the gateway produces is raised as a :class:`Refusal` somewhere on the request path and
turned into a response in one place. The body is ``{"message": ..., "code": ...}``: ``message`` for
people, ``code`` (snake_case) for programs and tests. docs/gateway.md lists every status and code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import h11

SERVER_HEADER = b"ember-gateway"
REQUEST_ID_HEADER = b"x-amzn-requestid"


class Refusal(Exception):
    """The gateway answers this request itself with ``status`` (never forwarded to the app)."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)


def error_events(refusal: Refusal, request_id: str, *, close: bool) -> list[h11.Response | h11.Data | h11.EndOfMessage]:
    """The h11 events of a JSON error response; ``close`` adds ``Connection: close``."""
    body = json.dumps({"message": refusal.message, "code": refusal.code}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (REQUEST_ID_HEADER, request_id.encode()), (b"server", SERVER_HEADER), *refusal.headers]
    if close:
        headers.append((b"connection", b"close"))
    return [h11.Response(status_code=refusal.status, headers=headers), h11.Data(data=body), h11.EndOfMessage()]
