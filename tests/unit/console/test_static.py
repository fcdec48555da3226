"""The console's pages and files: redirect, index for deep links, content types, security headers, no traversal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ember.console.static import CONTENT_SECURITY_POLICY, resolve
from tests.unit.console.conftest import STATIC_FILES, Console

TRAVERSALS = [
    "/console/static/../app.py",
    "/console/static/%2e%2e/app.py",
    "/console/static/%2E%2E/%2E%2E/app.py",
    "/console/static/..%2fapp.py",
    "/console/static/%2e%2e%2fapp.py",
    "/console/static/..%5capp.py",
    "/console/static/%252e%252e/secret.txt",
    "/console/static/../../secret.txt",
    "/console/static/..%2f..%2fsecret.txt",
    "/console/static/pages/../../secret.txt",
    "/console/static/./app.js",
    "/console/static//etc/passwd",
    "/console/static/%2fetc%2fpasswd",
    "/console/static/.hidden",
    "/console/a/../../secret.txt",
    "/console/%2e%2e/secret.txt",
]


async def _raw_get(console: Console, target: str) -> tuple[int, bytes]:
    """GET ``target`` exactly as written: no client normalises the dots away."""
    reader, writer = await asyncio.open_connection(console.server.host, console.server.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_console_redirects_to_the_slash(console: Console) -> None:
    response = await console.client.get("/console", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, "/console/")


@pytest.mark.parametrize("path", ["/console/", "/console/microvms/mvm-123", "/console/images/web/versions/1"])
async def test_the_page_and_its_deep_links_serve_index_with_security_headers(console: Console, path: str) -> None:
    response = await console.client.get(path)
    assert response.status == 200
    assert await response.read() == STATIC_FILES["index.html"]
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("logo.svg", "image/svg+xml"),
        ("icon.png", "image/png"),
        ("pages/list.js", "text/javascript; charset=utf-8"),
    ],
)
async def test_static_files_have_their_content_type(console: Console, name: str, content_type: str) -> None:
    response = await console.client.get(f"/console/static/{name}")
    assert response.status == 200
    assert await response.read() == STATIC_FILES[name]
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("path", ["/console/static/missing.js", "/console/static/", "/console/static/pages"])
async def test_what_is_not_a_file_is_404(console: Console, path: str) -> None:
    assert (await console.client.get(path)).status == 404


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_traversal_is_refused_with_404(console: Console, target: str) -> None:
    status, body = await _raw_get(console, target)
    assert status == 404, target
    assert b"outside the static directory" not in body
    assert b"import" not in body


def test_resolve_refuses_links_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "static"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("x")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "ok.js").write_text("")
    assert resolve(root, "link.txt") is None
    assert resolve(root, "ok.js") == (root / "ok.js").resolve()
    assert resolve(root, "a\\..\\secret.txt") is None
    assert resolve(root, "ok.js\0") is None
