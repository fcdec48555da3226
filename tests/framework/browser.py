"""Headless Chromium for console tests: Debian's ``chromium`` driven by the ``playwright`` package.

Playwright's own browser downloads are never used (``playwright install`` needs the internet): the context is
launched from ``/usr/bin/chromium`` with a fresh user-data directory, and trusts any certificate because the
gateway's comes from Ember's own CA. ``PageWatch`` collects uncaught page errors so a test can assert there were
none, and ``screenshot`` saves a page's picture under ``tests/artifacts/console/``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.framework.paths import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts" / "console"
"""Screenshots of every console page (ignored by git; kept by CI as test artifacts)."""


def require_chromium() -> None:
    """Skip the test unless Debian's chromium and the playwright package are installed (scripts/bootstrap.sh)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is missing (pip install -e '.[test]')")


@contextmanager
def chromium(**options: Any) -> Iterator[Any]:
    """A browser context (``playwright.sync_api.BrowserContext``) of a fresh Chromium profile, closed afterwards."""
    from playwright.sync_api import sync_playwright

    profile = Path(tempfile.mkdtemp(prefix="ember-chromium-"))
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                ignore_https_errors=True, viewport=VIEWPORT, **options)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class PageWatch:
    """Uncaught exceptions and console errors of a page, for assertions and failure messages."""

    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, page: Any) -> PageWatch:
        watch = cls()
        page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
        page.on("console", lambda msg: watch.console.append(f"{msg.type}: {msg.text}") if msg.type == "error"
                else None)
        return watch


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save ``tests/artifacts/console/<name>.png`` once no notice (toast) covers the page; returns the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_function("!document.querySelector('#toasts .toast')", timeout=10_000)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
