"""The tenant-boundary suite's world: one real ``ember serve`` in this process, two accounts, three running VMs.

Account A (the server's root account) owns image ``ci-a`` and the VMs A1 and A2; account B (a second access key
added to the store, as an operator would) owns image ``ci-b`` and the VM B. Both images are the code-interpreter
example, uploaded with ``POST /ember/artifacts`` and built through the API. Each VM holds its name in the app's
namespace (``ME``), so an answer says which VM gave it; A1 also serves a second HTTP service on port 9000.

Attacks come from outside only: raw HTTPS to the gateway (``http.client``, which neither normalises paths nor
limits headers), SigV4-signed calls to the API, boto3. A "protection off" test switches exactly one check off with
``monkeypatch`` in the module the running server calls (``Switches``), then runs the same attack and asserts that
it succeeds: so the check is what stopped it. Nothing here is a production switch.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import http.client
import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from ember.images.artifact import make_zip
from ember.images.bases import ensure_base
from ember.server import ServeSettings
from ember.store import accounts
from tests.framework.paths import EXAMPLES
from tests.framework.server import MICROVM_CTL_DATA, REGION, ServerThread, free_port, upload_artifact, wait_for

ACCOUNT_B = "222222222222"
KEY_B = ("AKIAEMBERSECURITYB01", "security-b/0123456789abcdefghijklmnopqrstu")
BASE = f"arn:aws:lambda:{REGION}:aws:microvm-image:python-3.11"
ROLE = "arn:aws:iam::123456789012:role/build"
HOOKS = {"port": 8080, "microvmImageHooks": {"ready": "ENABLED"}}
BUILD_TIMEOUT_S = 900.0
RUN_TIMEOUT_S = 180.0
HOOK_PREFIX = "/aws/lambda-microvms/runtime/v1/"
SECOND_PORT = 9000
SECOND_SERVICE = f"""
import http.server, threading

class _Admin(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{{"service": "admin-{SECOND_PORT}"}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

_admin = http.server.ThreadingHTTPServer(("0.0.0.0", {SECOND_PORT}), _Admin)
threading.Thread(target=_admin.serve_forever, daemon=True).start()
"""
"""Run in A1's app: a second service on another port (an admin port a token for 8080 must not reach)."""


@dataclasses.dataclass
class Answer:
    """One HTTP response: status, lower-cased headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        """The gateway's refusal code (JSON ``code``) or the API's error type (``x-amzn-ErrorType``)."""
        if "x-amzn-errortype" in self.headers:
            return self.headers["x-amzn-errortype"]
        try:
            data = self.json()
        except ValueError:
            return None
        return data.get("code") if isinstance(data, dict) else None

    @property
    def message(self) -> str:
        data = self.json()
        return str(data.get("message") or data.get("Message") or "")


@dataclasses.dataclass
class Tenant:
    """An account with its key pair, a boto3 client and its image."""

    account_id: str
    key: tuple[str, str]
    client: Any
    image: str
    artifact_uri: str


@dataclasses.dataclass
class World:
    """The running server, both tenants, the three VMs, and how to reach them."""

    serve: ServerThread
    a: Tenant
    b: Tenant
    vms: dict[str, dict[str, Any]]
    """``a1``, ``a2``, ``b``: GetMicrovm of each (``microvmId``, ``endpoint``...)."""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.serve.server.settings.api_port}"

    @property
    def gateway_port(self) -> int:
        port = self.serve.server.gateway_port
        assert port is not None
        return port

    @property
    def token_secret(self) -> bytes:
        microvms = self.serve.server.microvms
        assert microvms is not None
        return microvms.token_secret

    def vm_id(self, name: str) -> str:
        return str(self.vms[name]["microvmId"])

    # -- the gateway -------------------------------------------------------------------------------------------
    def gateway(self, target: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                body: bytes | None = None) -> Answer:
        """Send ``method target`` over TLS to the gateway exactly as written (no normalisation) and read the answer."""
        ca = self.serve.server.settings.home / "tls" / "ca.pem"
        context = ssl.create_default_context(cafile=str(ca))
        connection = http.client.HTTPSConnection("127.0.0.1", self.gateway_port, context=context, timeout=120)
        try:
            connection.putrequest(method, target, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def path(self, vm: str, rest: str) -> str:
        """The request target of ``rest`` on ``vm``'s endpoint (path routing: ``/microvms/{id}`` + ``rest``)."""
        return f"/microvms/{self.vm_id(vm)}{rest}"

    def token(self, vm: str, *, tenant: Tenant | None = None, ports: list[dict[str, Any]] | None = None) -> str:
        """A fresh endpoint token for ``vm`` from CreateMicrovmAuthToken (15 min, port 8080 by default)."""
        owner = tenant or (self.b if vm == "b" else self.a)
        answer = owner.client.create_microvm_auth_token(microvmIdentifier=self.vm_id(vm), expirationInMinutes=15,
                                                        allowedPorts=ports or [{"port": 8080}])
        return str(answer["authToken"]["X-aws-proxy-auth"])

    def execute(self, vm: str, code: str, *, token: str | None = None, on: str | None = None,
                headers: dict[str, str] | None = None, target_suffix: str = "") -> Answer:
        """POST /execute of ``code`` on the endpoint of ``on`` (default ``vm``) with a token for ``vm``."""
        body = json.dumps({"code": code}).encode()
        sent = {"X-aws-proxy-auth": token or self.token(vm), "Content-Type": "application/json", **(headers or {})}
        return self.gateway(self.path(on or vm, "/execute" + target_suffix), method="POST", headers=sent, body=body)

    def whoami(self, answer: Answer) -> str:
        """Which VM answered an ``execute`` of ``print(ME)``."""
        assert answer.status == 200, (answer.status, answer.body)
        return str(answer.json()["stdout"]).strip()

    # -- the API -----------------------------------------------------------------------------------------------
    def api(self, method: str, path: str, *, key: tuple[str, str] | None, body: bytes = b"",
            when: datetime | None = None, headers: dict[str, str] | None = None) -> Answer:
        """A SigV4-signed call (``key=None``: unsigned), signed at ``when`` (default: now)."""
        url = self.api_url + path
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
        if key is not None:
            with mock.patch("botocore.auth.get_current_datetime", return_value=when or datetime.now(UTC)):
                SigV4Auth(Credentials(*key), "lambda", REGION).add_auth(request)
        connection = http.client.HTTPConnection("127.0.0.1", self.serve.server.settings.api_port, timeout=60)
        try:
            connection.request(method, path, body=body or None, headers=dict(request.headers.items()))
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()


def token_claims(token: str) -> dict[str, Any]:
    """The JSON payload of an ``ember1.<payload>.<sig>`` token (docs/gateway.md, Tokens)."""
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def with_claims(token: str, **changes: Any) -> str:
    """``token`` with its payload changed and its original signature kept (a tampered token)."""
    prefix, _, signature = token.split(".")
    payload = json.dumps({**token_claims(token), **changes}, separators=(",", ":"), sort_keys=True).encode()
    return f"{prefix}.{base64.urlsafe_b64encode(payload).rstrip(b'=').decode()}.{signature}"


def resigned(token: str, secret: bytes) -> str:
    """``token`` with its signature recomputed over its (possibly tampered) payload with ``secret``."""
    prefix, body, _ = token.split(".")
    signature = hmac.new(secret, f"{prefix}.{body}".encode(), hashlib.sha256).digest()
    return f"{prefix}.{body}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


class Switches:
    """Each method switches one protection off for the rest of a test, in the code path the running server uses.

    The token switches replace ``ember.gateway.server.verify_token`` (the verifier the gateway calls) with one
    that still runs the real verifier, changing only what the switched-off check compares, so every other
    check stays on. Several token switches may be combined.
    """

    def __init__(self, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
        self.world = world
        self.mp = monkeypatch
        self._token_checks_off: set[str] = set()

    def _token_check(self, check: str) -> None:
        import ember.gateway.server as gateway_server

        if not self._token_checks_off:
            real, off, backend = gateway_server.verify_token, self._token_checks_off, self.world.serve.server.microvms
            assert backend is not None

            def verify(secret: bytes, token: str | None, microvm_id: str, port: int | None, kind: Any,
                       now: float | None = None) -> Any:
                requested = microvm_id
                try:
                    claimed = token_claims(token) if token else None
                except (ValueError, IndexError):  # not a token this switch can read: the real checks refuse it
                    claimed = None
                if token and claimed is not None:
                    if "signature" in off:
                        token = resigned(token, secret)
                    if "microvm" in off:
                        microvm_id = str(claimed["mvm"])
                    if "expiry" in off:
                        now = float(claimed["exp"]) - 1
                    if "port" in off:
                        port = None
                claims = real(secret, token, microvm_id, port, kind, now)
                target = backend.lookup(requested) if "account" in off else None
                return dataclasses.replace(claims, account_id=target.account_id) if target else claims

            self.mp.setattr(gateway_server, "verify_token", verify)
        self._token_checks_off.add(check)

    def token_vm_binding(self) -> None:
        """The token's MicroVM is not compared with the requested one."""
        self._token_check("microvm")

    def token_expiry(self) -> None:
        """The token is checked as if it were one second before its expiry."""
        self._token_check("expiry")

    def token_port_scope(self) -> None:
        """The requested port is not compared with the token's ports."""
        self._token_check("port")

    def token_signature(self) -> None:
        """The token's signature is not checked (it is recomputed with the real key before the real check)."""
        self._token_check("signature")

    def token_account(self) -> None:
        """The token's account is not compared with the VM's (the gateway's check after the VM lookup)."""
        self._token_check("account")

    def path_check(self) -> None:
        """The gateway's path check decodes the path but no longer refuses ``.``/``..`` segments or a NUL."""
        from urllib.parse import unquote

        from ember.gateway import routing

        def decode_only(raw_path: str) -> str:
            decoded = raw_path
            for _ in range(routing.MAX_DECODE_ROUNDS):
                decoded = unquote(decoded, errors="replace")
            return decoded

        self.mp.setattr(routing, "check_path", decode_only)

    def hook_path_check(self) -> None:
        """No path is taken for a hook path."""
        from ember.gateway import routing

        self.mp.setattr(routing, "is_hook_path", lambda path: False)

    def head_limits(self) -> None:
        """The gateway's request-head caps (16 KiB head, 8 KiB request line) are raised to 1 MiB."""
        gateway = self.world.serve.server.gateway
        self.mp.setattr(gateway, "max_header_bytes", 1024 * 1024)
        self.mp.setattr(gateway, "max_request_line_bytes", 1024 * 1024)

    def api_account_scoping(self) -> None:
        """Store lookups of MicroVMs and images by id or name ignore the caller's account."""
        from sqlalchemy import select

        from ember.store import images, microvms
        from ember.store.models import Image

        real_find_microvm = microvms.find_microvm

        def find_microvm(session: Any, microvm_id: str, *, account_id: str | None) -> Any:
            return real_find_microvm(session, microvm_id, account_id=None)

        def find_image(session: Any, account_id: str, name: str, *, include_deleted: bool = False,
                       for_update: bool = False) -> Any:
            stmt = select(Image).where(Image.name == name)
            if not include_deleted:
                stmt = stmt.where(Image.deleted.is_(False))
            return session.scalars(stmt.order_by(Image.id.desc()).limit(1)).first()

        self.mp.setattr(microvms, "find_microvm", find_microvm)
        self.mp.setattr(images, "find_image", find_image)

    def artifact_confinement(self) -> None:
        """A local artifact path is resolved but not held to the caller's upload folder (API check and build)."""
        import os

        from ember.images import artifact

        self.mp.setattr(artifact, "confine_local_path", lambda path, root: Path(os.path.realpath(path)))

    def sigv4_signature(self) -> None:
        """The API accepts whatever signature a request carries (the compare always matches)."""
        from ember.api import auth

        self.mp.setattr(auth, "expected_signatures", lambda request, parsed, secret, stamp: [parsed.signature])

    def sigv4_clock(self) -> None:
        """The API no longer compares the request time with its clock."""
        from ember.api import auth

        self.mp.setattr(auth, "check_clock", lambda when, now, stamp: None)

    def authentication(self, account_id: str) -> None:
        """Every API request is taken to come from ``account_id``, signed or not."""
        import ember.api.app as api_app

        async def authenticate(ctx: Any, request: Any, body: bytes) -> str:
            return account_id

        self.mp.setattr(api_app, "authenticate", authenticate)


@pytest.fixture
def switch_off(world: World, monkeypatch: pytest.MonkeyPatch) -> Switches:
    """Protection switches for one test (undone after it)."""
    return Switches(world, monkeypatch)


def _client(world_url: str, key: tuple[str, str]) -> Any:
    core = botocore.session.Session()
    core.get_component("data_loader").search_paths.append(MICROVM_CTL_DATA)
    return boto3.session.Session(botocore_session=core, region_name=REGION, aws_access_key_id=key[0],
                                 aws_secret_access_key=key[1]).client(
        "lambda-microvms", endpoint_url=world_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def _build(tenant: Tenant) -> None:
    created = tenant.client.create_microvm_image(name=tenant.image, baseImageArn=BASE, buildRoleArn=ROLE,
                                                 codeArtifact={"uri": tenant.artifact_uri}, hooks=HOOKS)
    got, _ = wait_for("build", lambda: tenant.client.get_microvm_image_version(
        imageIdentifier=tenant.image, imageVersion=created["imageVersion"]),
        lambda v: v["state"] in ("SUCCESSFUL", "FAILED"), BUILD_TIMEOUT_S, 1.0)
    assert got["state"] == "SUCCESSFUL", got.get("stateReason")


def run_vm(tenant: Tenant) -> dict[str, Any]:
    """RunMicrovm of the tenant's image, waited for until RUNNING."""
    vm_id = tenant.client.run_microvm(imageIdentifier=tenant.image)["microvmId"]
    detail, _ = wait_for("run", lambda: tenant.client.get_microvm(microvmIdentifier=vm_id),
                         lambda v: v["state"] in ("RUNNING", "TERMINATED"), RUN_TIMEOUT_S)
    assert detail["state"] == "RUNNING", detail.get("stateReason")
    return dict(detail)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One ``ember serve`` (TLS gateway) with accounts A and B, an image each and the VMs A1, A2 and B."""
    ensure_base("python-3.11")
    home = tmp_path_factory.mktemp("ember-security")
    serve = ServerThread(ServeSettings(home=home, api_port=free_port(), gateway_port=free_port()))
    serve.start()
    try:
        store, creds = serve.server.store, serve.server.credentials
        assert store is not None and creds is not None and creds.account_id != ACCOUNT_B
        with store.write() as session:
            accounts.add_access_key(session, ACCOUNT_B, *KEY_B)
        url = f"http://127.0.0.1:{serve.server.settings.api_port}"
        zip_path = make_zip(EXAMPLES / "code-interpreter", home / "code-interpreter.zip")
        key_a = (creds.access_key_id, creds.secret_access_key)
        a = Tenant(creds.account_id, key_a, _client(url, key_a), "ci-a", upload_artifact(url, *key_a, zip_path))
        b = Tenant(ACCOUNT_B, KEY_B, _client(url, KEY_B), "ci-b", upload_artifact(url, *KEY_B, zip_path))
        _build(a)
        _build(b)
        world = World(serve, a, b, {"a1": run_vm(a), "a2": run_vm(a), "b": run_vm(b)})
        for name in world.vms:
            assert world.execute(name, f"ME = {name!r}").status == 200
        assert world.execute("a1", SECOND_SERVICE).json()["error"] is None
        yield world
    finally:
        serve.stop()
