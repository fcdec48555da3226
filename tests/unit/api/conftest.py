"""Fixtures: the API served over a real socket with a real store (SQLite) and fake services, and boto3 clients.

boto3 uses the service model shipped in PyPI ``microvm-ctl`` (found in the installed package, never copied).
Two accounts exist: A (``client``) and B (``client_b``). Managed bases are listed from a temporary
``EMBER_HOME`` holding one fake built ``python-3.11``.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.session
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from ember.api.context import ApiContext, Quotas
from ember.api.testing import ApiServer, FakeImageService, FakeMicrovmService, add_account, make_context
from ember.images.bases import MANAGED_BASES
from ember.store import Store, create_engine, migrate

REGION = "us-east-1"
ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"
KEY_A = ("AKIAEMBERTESTA000001", "secret-a/0123456789abcdefghijklmnopqrstuv")
KEY_B = ("AKIAEMBERTESTB000002", "secret-b/0123456789abcdefghijklmnopqrstuv")
ROLE = "arn:aws:iam::111111111111:role/build"
PYTHON_BASE = f"arn:aws:lambda:{REGION}:aws:microvm-image:python-3.11"
SHELL = f"arn:aws:lambda:{REGION}:aws:network-connector:aws-network-connector:SHELL_INGRESS"
EGRESS = f"arn:aws:lambda:{REGION}:aws:network-connector:aws-network-connector:INTERNET_EGRESS"
MODEL_DATA = resources.files("microvm").joinpath("data")


def image_request(name: str, **extra: Any) -> dict[str, Any]:
    """A valid CreateMicrovmImage request."""
    return {
        "name": name,
        "baseImageArn": PYTHON_BASE,
        "buildRoleArn": ROLE,
        "codeArtifact": {"uri": "s3://ember-tests/app.zip"},
        "resources": [{"minimumMemoryInMiB": 512}],
        "hooks": {"port": 8080, "microvmHooks": {"run": "ENABLED"}},
        **extra,
    }


@functools.cache
def _botocore_session() -> botocore.session.Session:
    """One botocore session for every test client, so the service model is loaded once."""
    core = botocore.session.Session()
    core.get_component("data_loader").search_paths.append(str(MODEL_DATA))
    return core


def make_client(url: str, key: tuple[str, str], *, retries: int = 1) -> Any:
    """A boto3 ``lambda-microvms`` client for ``url`` signing with ``key`` (no retries by default).

    Client-side parameter validation is off, so what reaches the server is what the test sent: the server's own
    validation is under test.
    """
    return _botocore_session().create_client(
        "lambda-microvms",
        region_name=REGION,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        endpoint_url=url,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": retries},
            connect_timeout=5,
            read_timeout=30,
            parameter_validation=False,
        ),
    )


@dataclass
class Api:
    """One running API: its store, context, fakes, server and clients of accounts A and B."""

    store: Store
    ctx: ApiContext
    server: ApiServer
    client: Any
    client_b: Any

    @property
    def images(self) -> FakeImageService:
        return self.ctx.images  # type: ignore[return-value]

    @property
    def microvms(self) -> FakeMicrovmService:
        return self.ctx.microvms  # type: ignore[return-value]

    def create_image(self, name: str = "app", client: Any = None, **extra: Any) -> dict[str, Any]:
        """Create an image (its build succeeds at once unless the fake says otherwise)."""
        return (client or self.client).create_microvm_image(**image_request(name, **extra))

    def run(self, image: str = "app", client: Any = None, **extra: Any) -> dict[str, Any]:
        """RunMicrovm of ``image``."""
        return (client or self.client).run_microvm(imageIdentifier=image, **extra)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api-template") / "ember.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture
def ember_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``EMBER_HOME`` in tmp with one fake built version of the python-3.11 base."""
    home = tmp_path / "home"
    version = "20250909." + MANAGED_BASES["python-3.11"].key()
    base = home / "bases" / "python-3.11" / version
    base.mkdir(parents=True)
    (base / "manifest.json").write_text(
        json.dumps({"name": "python-3.11", "version": version, "created_at": 1757419200.0, "description": "test"})
    )
    monkeypatch.setenv("EMBER_HOME", str(home))
    return home


@pytest.fixture
def make_api(tmp_path: Path, template_db: Path, ember_home: Path) -> Iterator[Callable[..., Api]]:
    """Factory: ``make_api(quotas=..., **ctx_overrides)`` starts an API (stopped at the end of the test)."""
    started: list[Api] = []

    def make(quotas: Quotas | None = None, **overrides: Any) -> Api:
        db = tmp_path / f"ember-{len(started)}.db"
        shutil.copy(template_db, db)
        store = Store.open(f"sqlite:///{db}", migrate=False)
        add_account(store, ACCOUNT_A, *KEY_A)
        add_account(store, ACCOUNT_B, *KEY_B)
        ctx = make_context(store, tmp_path / "images", quotas=quotas, **overrides)
        server = ApiServer(ctx).start()
        api = Api(store, ctx, server, make_client(server.url, KEY_A), make_client(server.url, KEY_B))
        started.append(api)
        return api

    yield make
    for api in started:
        api.server.stop()
        api.store.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """An API with default quotas."""
    return make_api()


@dataclass
class Raw:
    """A response to a hand-made request."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def code(self) -> str | None:
        return self.headers.get("x-amzn-errortype")


def send(
    api: Api,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: tuple[str, str] | None = KEY_A,
    when: datetime | None = None,
    headers: dict[str, str] | None = None,
    tamper: Callable[[dict[str, str]], None] | None = None,
) -> Raw:
    """Send ``method path`` signed with ``key`` (SigV4, signed at ``when``), or unsigned with ``key=None``."""
    url = api.server.url + path
    data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    request = AWSRequest(method=method, url=url, data=data, headers=dict(headers or {}))
    if key is not None:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when or datetime.now(UTC)):
            SigV4Auth(Credentials(*key), "lambda", REGION).add_auth(request)
    sent = {k: v for k, v in request.headers.items()}
    if tamper is not None:
        tamper(sent)
    response = requests.request(method, url, data=data, headers=sent, timeout=30)
    return Raw(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)
