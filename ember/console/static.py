"""The console's pages: ``/console`` redirects to ``/console/``, which (and every deep link under it) serves
``static/index.html``; ``/console/static/{path}`` serves the files of ``static/``.

A file path is accepted only if every segment is an ordinary name (no ``..``, ``.``, empty, hidden or backslash
segment, whether it arrived plain or percent-encoded) and it resolves to a regular file inside ``static/``;
anything else is 404. Every console response carries ``SECURITY_HEADERS`` (a CSP allowing only this origin's
scripts and styles, no framing) and ``Cache-Control: no-cache`` (revalidate: a new Ember must not run old JS).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
STATIC_ROOT = web.AppKey("ember_console_static", Path)
"""The directory served (``STATIC_DIR`` unless ``install`` was given another)."""
INDEX = "index.html"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self' https: wss: http: ws:; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'"
)
"""``connect-src`` is open because the console calls MicroVM endpoints through the gateway (another port/host)."""
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".map": "application/json",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
"""Set explicitly: ``mimetypes`` reads the host's tables, and a wrong type with ``nosniff`` breaks the page."""


def with_security_headers(response: web.StreamResponse) -> web.StreamResponse:
    """``response`` with the console's security headers set."""
    response.headers.update(SECURITY_HEADERS)
    return response


def _has_dot_segment(raw_path: str) -> bool:
    # The router may already have decoded or normalised the target; judge the bytes the client actually sent.
    path = raw_path.partition("?")[0]
    segments = unquote(unquote(path)).replace("\\", "/").split("/")
    return any(segment in (".", "..") for segment in segments)


def resolve(root: Path, relative: str) -> Path | None:
    """The regular file ``relative`` names inside ``root``, or None if it is outside, hidden or missing."""
    segments = relative.split("/")
    if any(not s or s.startswith(".") or "\\" in s or "\0" in s for s in segments):
        return None
    base = root.resolve()
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


async def _file_response(path: Path) -> web.StreamResponse:
    content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    body = await asyncio.to_thread(path.read_bytes)
    response = web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
    return with_security_headers(response)


async def redirect_to_index(request: web.Request) -> web.StreamResponse:
    """``/console`` → ``/console/`` (relative links in the page resolve against the slash)."""
    raise web.HTTPFound("/console/", headers=SECURITY_HEADERS)


async def index(request: web.Request) -> web.StreamResponse:
    """The console page, for ``/console/`` and any deep link below it (the page routes on the client)."""
    tail = request.match_info.get("tail", "")
    if tail == "static" or tail.startswith("static/") or _has_dot_segment(request.raw_path):
        raise web.HTTPNotFound()
    path = request.app[STATIC_ROOT] / INDEX
    if not path.is_file():
        raise web.HTTPNotFound()
    return await _file_response(path)


async def static_file(request: web.Request) -> web.StreamResponse:
    """A file of ``static/``; 404 for anything that is not plainly one."""
    if _has_dot_segment(request.raw_path):
        raise web.HTTPNotFound()
    path = resolve(request.app[STATIC_ROOT], request.match_info["path"])
    if path is None:
        raise web.HTTPNotFound()
    return await _file_response(path)
