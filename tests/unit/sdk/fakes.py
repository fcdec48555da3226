"""An in-process fake HTTP server for SDK tests: scripted answers per (method, path), every request recorded.

``FakeServer`` runs ``http.server`` in a thread on 127.0.0.1, so both the sync and the async client can
call it. A route answers with a fixed ``Reply``, a list of replies used in turn (the last one repeats),
or a function of the recorded request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Recorded:
    """One request as it arrived: method, raw target (path and query, still encoded), headers, body."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What a route answers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        if self.body is None:
            return b"", dict(self.headers)
        if isinstance(self.body, bytes):
            return self.body, dict(self.headers)
        return json.dumps(self.body).encode(), {"Content-Type": "application/json", **self.headers}


Route = Reply | list[Reply] | Callable[[Recorded], Reply]


def error(status: int, code: str, message: str, **headers: str) -> Reply:
    """An error answer the way Ember (and AWS rest-json services) send one."""
    return Reply(status, {"message": message}, {"x-amzn-ErrorType": code, **headers})


class FakeServer:
    """The server; use as a context manager. ``url`` is its base URL, ``requests`` what it received."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, self.path, {k: v for k, v in self.headers.items()}, body)
                reply = fake._answer(recorded)
                data, headers = reply.encode()
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def route(self, method: str, path: str, answer: Route) -> None:
        """Answer ``method path`` (the path exactly as sent, percent-encoding included) with ``answer``."""
        self.routes[(method, path)] = list(answer) if isinstance(answer, list) else answer

    def _answer(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            route = self.routes.get((recorded.method, recorded.path))
            if route is None:
                return error(404, "ResourceNotFoundException", f"no fake route for {recorded.method} {recorded.path}")
            if isinstance(route, list):
                return route.pop(0) if len(route) > 1 else route[0]
            if isinstance(route, Reply):
                return route
        return route(recorded)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
