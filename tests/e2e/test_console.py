"""End to end through the web console: a real ``ember serve`` (API, gateway over TLS, VMs under TCG) driven by
headless Chromium, as a person would click through it.

The walk: sign in with the root key pair, build the code-interpreter example from the "build from folder" form
(zipped in the browser, uploaded, built), run a MicroVM from the run form, call it from the request tester
(through the gateway, another origin), mint a token, suspend it and see SUSPENDED, resume it and see RUNNING with
its Python state kept, see the app's log lines, type into the web shell, terminate it. A screenshot of every page
goes to ``tests/artifacts/console/``. Also: a wrong key pair is refused with no cookie set, and a second
account's console shows none of the first account's images or MicroVMs, not even by deep link.

Like the other e2e tests, the server keeps its database and VMs in a temporary home; the guest kit and the
managed bases come from the default ``EMBER_HOME``.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from ember.api.testing import add_account
from ember.images.bases import ensure_base
from ember.server import ServeSettings
from tests.framework.browser import PageWatch, chromium, require_chromium, screenshot
from tests.framework.paths import EXAMPLES
from tests.framework.server import ServerThread, free_port

pytestmark = pytest.mark.vm

EXAMPLE = EXAMPLES / "code-interpreter"
IMAGE = "code-interpreter"
HOOKS = ("ready", "validate", "run", "resume", "suspend")
BUILD_TIMEOUT_MS = 900_000
STATE_TIMEOUT_MS = 180_000
REQUEST_TIMEOUT_MS = 60_000
UI_TIMEOUT_MS = 15_000
SECOND_ACCOUNT = ("222222222222", "AKEMSECONDACCOUNT1", "second-account-secret-0123456789")


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    require_chromium()
    ensure_base("python-3.11")
    home = tmp_path_factory.mktemp("ember-home")
    settings = ServeSettings(home=home, api_port=free_port(), gateway_port=free_port(), gateway_tls=True)
    running = ServerThread(settings)
    running.start()
    assert running.server.store is not None
    add_account(running.server.store, *SECOND_ACCOUNT)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def shared() -> dict[str, Any]:
    """What the walk leaves for the later tests (the first account's MicroVM id)."""
    return {}


def console_url(serve: ServerThread, route: str = "") -> str:
    return f"http://127.0.0.1:{serve.server.settings.api_port}/console/{route}"


def sign_in(page: Any, serve: ServerThread, key_id: str, secret: str) -> None:
    page.goto(console_url(serve))
    page.fill("#access-key-id", key_id)
    page.fill("#secret-access-key", secret)
    page.click("#sign-in")


def wait_state(page: Any, state: str, timeout_ms: int = STATE_TIMEOUT_MS) -> None:
    """Wait until the MicroVM detail page shows ``state``; fail with the reason the page shows otherwise."""
    try:
        page.wait_for_selector(f"#microvm-state [data-state='{state}']", timeout=timeout_ms)
    except Exception:
        overview = page.inner_text("#microvm-overview")
        raise AssertionError(f"the page never showed {state}:\n{overview}") from None


def send_request(page: Any, method: str, path: str, body: str = "") -> tuple[str, str]:
    """Send a request from the tester; the status and response body the page shows."""
    page.select_option("#tester-method", method)
    page.fill("#tester-path", path)
    page.fill("#tester-body", body)
    page.click("#tester-send")
    page.wait_for_selector("#tester-status", timeout=REQUEST_TIMEOUT_MS)
    return page.inner_text("#tester-status"), page.inner_text("#tester-response")


def test_wrong_key_pair_is_refused_and_sets_no_cookie(serve: ServerThread) -> None:
    creds = serve.server.credentials
    assert creds is not None
    with chromium() as context:
        page = context.new_page()
        watch = PageWatch.attach(page)
        page.goto(console_url(serve))
        page.wait_for_selector("#access-key-id")
        screenshot(page, "login")
        sign_in(page, serve, creds.access_key_id, "not-the-secret")
        error = page.wait_for_selector(".login-form .error-line:not(.hidden)", timeout=UI_TIMEOUT_MS)
        assert "Wrong access key id or secret access key" in error.inner_text()
        assert not [c for c in context.cookies() if c["name"] == "ember_console"]
        assert page.query_selector("#page") is None  # still on the sign-in page
        sign_in(page, serve, "AKEMNOSUCHKEY", creds.secret_access_key)
        page.wait_for_selector(".login-form .error-line:not(.hidden)", timeout=UI_TIMEOUT_MS)
        assert not [c for c in context.cookies() if c["name"] == "ember_console"]
        assert watch.errors == []


def test_build_run_call_suspend_resume_logs_shell_terminate(serve: ServerThread, shared: dict[str, Any]) -> None:
    creds = serve.server.credentials
    assert creds is not None
    timings: dict[str, float] = {}
    with chromium() as context:
        page = context.new_page()
        watch = PageWatch.attach(page)
        sign_in(page, serve, creds.access_key_id, creds.secret_access_key)
        page.wait_for_selector("#microvm-list", timeout=UI_TIMEOUT_MS)
        assert page.inner_text("#who-account") == creds.account_id
        assert any(c["name"] == "ember_console" and c["httpOnly"] for c in context.cookies())

        # Build from the folder form: zipped in the browser, uploaded, CreateMicrovmImage.
        page.click("[data-nav='images']")
        page.wait_for_selector("#build-form")
        page.fill("#build-name", IMAGE)
        page.set_input_files("#build-folder", str(EXAMPLE))
        for hook in HOOKS:
            page.check(f"#hook-{hook}")
        t0 = time.monotonic()
        page.click("#build-submit")
        page.wait_for_url(f"**/#/images/{IMAGE}/versions/1", timeout=REQUEST_TIMEOUT_MS)
        page.wait_for_selector("#build-log .log-line", timeout=BUILD_TIMEOUT_MS)
        done = page.wait_for_selector("#versions [data-version='1'] :is([data-state='SUCCESSFUL'], "
                                      "[data-state='FAILED'])", timeout=BUILD_TIMEOUT_MS)
        timings["build from the form -> SUCCESSFUL"] = time.monotonic() - t0
        if done.get_attribute("data-state") != "SUCCESSFUL":
            pytest.fail(f"build failed: {page.inner_text('#version-detail')}\n--- log ---\n"
                        f"{page.inner_text('#build-log')}")
        page.wait_for_selector("#build-log-box .log-status:text('ended')", timeout=UI_TIMEOUT_MS)
        screenshot(page, "image")
        page.click("[data-nav='images']")
        page.wait_for_selector(f"[data-image='{IMAGE}'] [data-state='CREATED']", timeout=UI_TIMEOUT_MS)
        screenshot(page, "images")

        # Run from the run form (web shell on), land on the detail page.
        page.goto(console_url(serve, f"#/microvms?image={IMAGE}"))
        page.wait_for_selector(f"#run-image option[value='{IMAGE}']", state="attached", timeout=UI_TIMEOUT_MS)
        page.fill("#run-payload", '{"tenant": "console"}')
        page.check("#run-shell")
        t0 = time.monotonic()
        page.click("#run-submit")
        page.wait_for_url("**/#/microvms/mvm-*", timeout=REQUEST_TIMEOUT_MS)
        vm_id = page.url.rsplit("/", 1)[1]
        shared["microvm_id"] = vm_id
        wait_state(page, "RUNNING")
        timings["run form -> RUNNING"] = time.monotonic() - t0

        # The request tester calls the endpoint through the gateway (TLS, another origin).
        t0 = time.monotonic()
        status, body = send_request(page, "POST", "/execute", '{"code": "x = 41\\nprint(x + 1)"}')
        timings["tester POST /execute"] = time.monotonic() - t0
        assert status == "200", body
        assert '"stdout": "42\\n"' in body
        status, body = send_request(page, "GET", "/state")
        assert status == "200" and '"run_payload": "{\\"tenant\\": \\"console\\"}"' in body, body
        page.click("#mint-token")
        page.wait_for_selector("#token-value", timeout=UI_TIMEOUT_MS)
        assert page.inner_text("#token-value").startswith("ember1.")

        # Suspend, resume: the state badge follows; the app's namespace survives.
        t0 = time.monotonic()
        page.click("#microvm-actions [data-action='suspend']")
        wait_state(page, "SUSPENDED")
        timings["suspend -> SUSPENDED"] = time.monotonic() - t0
        t0 = time.monotonic()
        page.click("#microvm-actions [data-action='resume']")
        wait_state(page, "RUNNING")
        timings["resume -> RUNNING"] = time.monotonic() - t0
        status, body = send_request(page, "POST", "/execute", '{"code": "print(x + 1)"}')
        assert status == "200" and '"stdout": "42\\n"' in body, body
        page.wait_for_selector("#timeline [data-tl-state='SUSPENDED']", timeout=UI_TIMEOUT_MS)

        # The app logs every request: the live log shows it.
        line = page.wait_for_selector("#microvm-log .log-line:has-text('/execute')", timeout=REQUEST_TIMEOUT_MS)
        assert "POST" in line.inner_text()

        # The web shell (SHELL_INGRESS) over the gateway's shell WebSocket.
        page.click("#shell-open")
        page.wait_for_selector("#shell-status:text('connected')", timeout=REQUEST_TIMEOUT_MS)
        page.click("#shell-screen")
        page.keyboard.type("echo console-$((6 * 7))")
        page.keyboard.press("Enter")
        page.wait_for_selector("#shell-screen:has-text('console-42')", timeout=REQUEST_TIMEOUT_MS)
        screenshot(page, "microvm")

        page.click("[data-nav='microvms']")
        page.wait_for_selector(f"[data-microvm='{vm_id}'][data-state='RUNNING']", timeout=UI_TIMEOUT_MS)
        screenshot(page, "microvms")
        page.click("[data-nav='account']")
        page.wait_for_selector("#stat-count-live:text('1')", timeout=UI_TIMEOUT_MS)
        assert page.inner_text("#access-key-id") == creds.access_key_id
        assert creds.secret_access_key not in page.content()
        page.wait_for_selector("#quotas [data-quota='microvms'] [data-used='1']", timeout=UI_TIMEOUT_MS)
        assert page.query_selector("#quotas [data-quota='allocatedMemoryMiB'] svg.quota-bar") is not None
        assert page.query_selector("#quotas [data-quota='runMicrovmCallsPerSecond']") is not None
        screenshot(page, "account")
        page.click("[data-nav='metrics']")
        page.wait_for_selector("#states-chart svg [data-series='RUNNING']", timeout=UI_TIMEOUT_MS)
        launches = page.inner_text("[data-latency='launchSeconds'] td:nth-child(2)")
        assert int(launches) >= 1
        resumes = page.inner_text("[data-latency='resumeSeconds'] td:nth-child(2)")
        assert int(resumes) >= 1
        screenshot(page, "metrics")

        # Terminate from the detail page.
        page.goto(console_url(serve, f"#/microvms/{vm_id}"))
        wait_state(page, "RUNNING", UI_TIMEOUT_MS)
        t0 = time.monotonic()
        page.click("#microvm-actions [data-action='terminate']")
        wait_state(page, "TERMINATED")
        timings["terminate -> TERMINATED"] = time.monotonic() - t0
        assert page.query_selector("#microvm-actions [data-action]") is None
        assert watch.errors == [], watch.errors
    print("\n" + "\n".join(f"{step}: {seconds:.1f} s" for step, seconds in timings.items()))


def test_browser_zip_and_sha256_agree_with_python(serve: ServerThread) -> None:
    """The store-only zip the folder form makes is a valid zip with the right bytes, and the plain-JavaScript
    SHA-256 (used where WebCrypto is unavailable: plain http from another machine) matches hashlib."""
    files = {"Dockerfile": b"FROM python:3.11-slim\n", "src/app.py": bytes(range(256)) * 40, "empty.txt": b"",
             "naïve.txt": "héllo".encode()}
    with chromium() as context:
        page = context.new_page()
        page.goto(console_url(serve))
        page.wait_for_selector("#access-key-id")
        made = page.evaluate("""async (files) => {
            const zip = await import("/console/static/zip.js");
            const sha = await import("/console/static/sha256.js");
            const entries = Object.entries(files).map(([name, data]) => ({name, data: new Uint8Array(data)}));
            const blob = zip.makeZip(entries);
            const bytes = new Uint8Array(await blob.arrayBuffer());
            return {zip: Array.from(bytes), names: zip.zipNames(bytes.buffer),
                    plain: entries.map((e) => sha.sha256Plain(e.data)), blobDigest: await sha.sha256Hex(blob)};
        }""", {name: list(data) for name, data in files.items()})
    raw = bytes(made["zip"])
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        assert archive.testzip() is None
        assert {info.filename: archive.read(info) for info in archive.infolist()} == files
    assert made["names"] == list(files)
    assert made["plain"] == [hashlib.sha256(data).hexdigest() for data in files.values()]
    assert made["blobDigest"] == hashlib.sha256(raw).hexdigest()


def test_second_account_sees_none_of_the_first_accounts_resources(serve: ServerThread,
                                                                   shared: dict[str, Any]) -> None:
    account_id, key_id, secret = SECOND_ACCOUNT
    vm_id = shared.get("microvm_id")
    if vm_id is None:
        pytest.skip("the walk did not create a MicroVM")
    with chromium() as context:
        page = context.new_page()
        watch = PageWatch.attach(page)
        sign_in(page, serve, key_id, secret)
        page.wait_for_selector("#microvm-list", timeout=UI_TIMEOUT_MS)
        assert page.inner_text("#who-account") == account_id
        page.select_option("#state-filter", "all")
        page.wait_for_selector("#microvm-list tr.empty", timeout=UI_TIMEOUT_MS)
        assert page.query_selector("[data-microvm]") is None
        screenshot(page, "second-account-microvms")
        page.click("[data-nav='images']")
        page.wait_for_selector("#image-list tr.empty", timeout=UI_TIMEOUT_MS)
        assert page.query_selector("[data-image]") is None
        # Deep links to the first account's resources find nothing.
        page.goto(console_url(serve, f"#/microvms/{vm_id}"))
        page.wait_for_selector(f".error-line:text('No MicroVM {vm_id} in this account')", timeout=UI_TIMEOUT_MS)
        page.goto(console_url(serve, f"#/images/{IMAGE}"))
        page.wait_for_selector(f".error-line:text('No image named {IMAGE}')", timeout=UI_TIMEOUT_MS)
        assert watch.errors == [], watch.errors
