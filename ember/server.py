"""``ember serve``: one process running the control-plane API, the gateway and this host's VMs.

The composition root: it opens the store (migrating it), creates the root
credentials and the token key on first start, reconciles stored VMs with the
host, then serves. On SIGTERM/SIGINT it stops accepting, suspends running VMs
(they resume on the next request after a restart) and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path

from ember.api.context import ApiContext, Quotas
from ember.host.host import Host
from ember.images.service import ImageService
from ember.lifecycle.service import MicrovmService
from ember.settings import ember_home
from ember.store import Store, accounts

log = logging.getLogger(__name__)

DEFAULT_API_PORT = 9180
DEFAULT_GATEWAY_PORT = 9443
ROOT_KEY_ENV = ("EMBER_ROOT_ACCESS_KEY_ID", "EMBER_ROOT_SECRET_ACCESS_KEY")
CREDENTIALS_FILE = "credentials.json"
TLS_DIR = "tls"  # the gateway's CA and certificate: `ember ca` prints $EMBER_HOME/tls/ca.pem
TOKEN_KEY_FILE = "token.key"
ARTIFACTS_DIR = "artifacts"  # uploaded code artifacts, one folder per account (ember.api.artifacts)


@dataclass
class ServeSettings:
    home: Path = field(default_factory=ember_home)
    api_host: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    gateway_host: str = "127.0.0.1"
    gateway_port: int = DEFAULT_GATEWAY_PORT
    gateway_tls: bool = True
    domain: str | None = None
    region: str = "us-east-1"
    database_url: str | None = None
    quotas: Quotas = field(default_factory=Quotas)
    build_egress: bool = True
    min_idle_s: int = 60
    tick_s: float = 1.0
    map_arm64: bool = False
    """Accept ARM_64 in cpuConfigurations and build for this host's architecture (for old clients)."""


@dataclass(frozen=True)
class RootCredentials:
    account_id: str
    access_key_id: str
    secret_access_key: str


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def root_credentials(home: Path) -> RootCredentials:
    """The root key: from EMBER_ROOT_* when set, else ``$EMBER_HOME/credentials.json`` (created once, 0600)."""
    path = home / CREDENTIALS_FILE
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    else:
        stored = {"account_id": "".join(secrets.choice("0123456789") for _ in range(12)),
                  "access_key_id": "AKEM" + secrets.token_hex(8).upper(),
                  "secret_access_key": secrets.token_urlsafe(30)}
        _write_private(path, json.dumps(stored, indent=2).encode())
    key_id, secret = (os.environ.get(name) for name in ROOT_KEY_ENV)
    return RootCredentials(stored["account_id"], key_id or stored["access_key_id"],
                           secret or stored["secret_access_key"])


def token_key(home: Path) -> bytes:
    path = home / TOKEN_KEY_FILE
    if not path.exists():
        _write_private(path, secrets.token_bytes(32))
    return path.read_bytes()


def host_architecture() -> str:
    """The contract's name for this machine's architecture."""
    import platform

    return {"x86_64": "X86_64", "amd64": "X86_64", "aarch64": "ARM_64", "arm64": "ARM_64"}.get(
        platform.machine().lower(), platform.machine().upper())


def endpoint_formatter(settings: ServeSettings):  # type: ignore[no-untyped-def]
    if settings.domain:
        return lambda microvm_id: f"{microvm_id}.{settings.domain}:{settings.gateway_port}"
    return lambda microvm_id: f"{settings.gateway_host}:{settings.gateway_port}/microvms/{microvm_id}"


class EmberServer:
    """Everything ``ember serve`` runs, with an idempotent ``stop()``."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.store: Store | None = None
        self.host: Host | None = None
        self.images: ImageService | None = None
        self.microvms: MicrovmService | None = None
        self.credentials: RootCredentials | None = None
        self._runners: list[object] = []
        self.gateway: object | None = None
        self.gateway_port: int | None = None
        self._stopped = False

    async def start(self) -> None:
        s = self.settings
        home = s.home
        self.store = Store.open(s.database_url or os.environ.get("EMBER_DATABASE_URL")
                                or f"sqlite:///{home / 'ember.db'}")
        self.credentials = root_credentials(home)
        with self.store.write() as session:
            accounts.ensure_root_key(session, self.credentials.account_id, self.credentials.access_key_id,
                                     self.credentials.secret_access_key)
        secret = token_key(home)
        # VMMs outlive a crash of this process; the next start adopts them (ember.lifecycle.reconcile).
        self.host = Host(home=home, persistent_vmms=True)
        self.images = ImageService(self.store, self.host, images_dir=home / "images", build_egress=s.build_egress)
        failed = self.images.recover()
        self.microvms = MicrovmService(self.store, self.host, token_secret=secret, tick_s=s.tick_s)
        counts = await self.microvms.start()
        log.info("reconciled", extra={"action": "reconcile", "builds_failed": failed, **counts})
        ctx = ApiContext(store=self.store, images=self.images, microvms=self.microvms,
                         endpoint_for=endpoint_formatter(s), token_secret=secret, region=s.region,
                         quotas=s.quotas, min_idle_s=s.min_idle_s, architecture=host_architecture(),
                         map_arm64=s.map_arm64, artifacts_dir=home / ARTIFACTS_DIR)
        from aiohttp import web

        from ember.console.app import create_app  # the API with the web console served from it

        runner = web.AppRunner(create_app(ctx), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, s.api_host, s.api_port).start()
        self._runners.append(runner)
        await self._start_gateway(secret)

    async def _start_gateway(self, secret: bytes) -> None:
        try:
            from ember.gateway.server import Gateway
        except ImportError:
            log.warning("gateway not available", extra={"action": "gateway_missing"})
            return
        s = self.settings
        self.gateway = Gateway(self.microvms, tls_dir=s.home / TLS_DIR, plain_http=not s.gateway_tls,
                               domain=s.domain)
        self.gateway_port = await self.gateway.start(s.gateway_host, s.gateway_port)  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.gateway is not None:
            with contextlib.suppress(Exception):
                await self.gateway.stop()  # type: ignore[attr-defined]
        for runner in self._runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()  # type: ignore[attr-defined]
        if self.images is not None:
            await self.images.stop()
        if self.microvms is not None:
            await self.microvms.stop()
        if self.store is not None:
            self.store.close()


async def serve_forever(settings: ServeSettings, ready: asyncio.Event | None = None) -> None:
    server = EmberServer(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await server.stop()


def vmm_confinement() -> str:
    """How VMMs are confined on this host, in words (shown when the server starts)."""
    from ember.vmm.jail import confinement

    return confinement().describe()
