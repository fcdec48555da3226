"""``Client`` and ``AsyncClient``: one connection to an Ember server's API and, through it, to MicroVM endpoints.

::

    from ember.sdk import Client

    with Client() as ember:                          # http://127.0.0.1:9180, local credentials
        ember.images.build("ci", "./code-interpreter", hooks=["ready", "run"], wait=True)
        vm = ember.microvms.run("ci", idle=300, wait=True)
        print(vm.request("POST", "/execute", json={"code": "print(6 * 7)"}).json())
        vm.terminate()

Settings not given as arguments come from the environment (``ember.sdk.config`` lists them). A client
holds two HTTP connection pools: one to the API (SigV4-signed calls) and one, created on first use, to
the gateway (endpoint requests, trusting the gateway's CA). Close the client, or use it as a context
manager, to release them.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from ._http import DEFAULT_TIMEOUT_S, AsyncTransport, SyncTransport
from .config import (
    ember_home,
    gateway_scheme,
    local_ca_bundle,
    resolve_credentials,
    resolve_endpoint,
    resolve_region,
)
from .images import AsyncImages, Images
from .microvms import AsyncMicrovms, Microvms
from .tokens import DEFAULT_TOKEN_MINUTES, RetryPolicy, TokenCache

DATA_TIMEOUT_S = 120.0
"""Timeout of one endpoint request: generous, since a request held through a resume waits for it."""

Verify = bool | str | Path | ssl.SSLContext | None


class _ClientBase:
    """Settings shared by the sync and async clients (see ``Client``)."""

    def __init__(self, endpoint: str | None, region: str | None, access_key_id: str | None,
                 secret_access_key: str | None, session_token: str | None, *, verify: Verify,
                 gateway_scheme_: str | None, home: Path | None, token_minutes: int, retry: RetryPolicy | None) -> None:
        self.endpoint = resolve_endpoint(endpoint)
        self.region = resolve_region(region)
        self.home = Path(home) if home is not None else ember_home()
        self.credentials = resolve_credentials(access_key_id, secret_access_key, session_token, home=self.home)
        self.gateway_scheme = gateway_scheme(gateway_scheme_)
        self.token_minutes = token_minutes
        self.retry = retry or RetryPolicy()
        self.tokens = TokenCache()
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None

    def gateway_ssl(self) -> ssl.SSLContext:
        """The TLS context for MicroVM endpoints: the given CA, ``$EMBER_CA_BUNDLE``, or the local server's CA."""
        if self._ssl is None:
            verify = self._verify
            if isinstance(verify, ssl.SSLContext):
                self._ssl = verify
            elif verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                self._ssl = context
            else:
                ca = Path(verify) if isinstance(verify, str | Path) else local_ca_bundle(self.home)
                self._ssl = ssl.create_default_context(cafile=str(ca)) if ca else ssl.create_default_context()
        return self._ssl

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.endpoint} region={self.region} key={self.credentials.access_key_id}>"


class Client(_ClientBase):
    """A synchronous Ember client: ``images``, ``microvms``, and ``Microvm`` handles for endpoints.

    ``endpoint`` is the API URL, ``region`` the region to sign for, the key pair the credentials;
    ``verify`` is how endpoint TLS is checked (a CA path, an ``SSLContext``, ``False`` for none; default:
    the local server's CA); ``gateway_scheme`` is ``https`` unless the server runs with ``--no-tls``.
    """

    def __init__(self, endpoint: str | None = None, region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, session_token: str | None = None, *,
                 verify: Verify = None, gateway_scheme: str | None = None, home: Path | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S,
                 token_minutes: int = DEFAULT_TOKEN_MINUTES, retry: RetryPolicy | None = None,
                 http: httpx.Client | None = None) -> None:
        super().__init__(endpoint, region, access_key_id, secret_access_key, session_token, verify=verify,
                         gateway_scheme_=gateway_scheme, home=home,
                         token_minutes=token_minutes, retry=retry)
        self.transport = SyncTransport(self.endpoint, self.region, self.credentials, timeout=timeout, http=http)
        self._data_http: httpx.Client | None = None
        self.images = Images(self)
        self.microvms = Microvms(self)

    @property
    def data_http(self) -> httpx.Client:
        """The connection pool for MicroVM endpoints (created on first use)."""
        if self._data_http is None:
            verify: Any = self.gateway_ssl() if self.gateway_scheme == "https" else True
            self._data_http = httpx.Client(verify=verify, timeout=DATA_TIMEOUT_S)
        return self._data_http

    def close(self) -> None:
        """Close both connection pools."""
        self.transport.close()
        if self._data_http is not None:
            self._data_http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_ClientBase):
    """The asyncio twin of ``Client``: the same arguments, and every call is awaited."""

    def __init__(self, endpoint: str | None = None, region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, session_token: str | None = None, *,
                 verify: Verify = None, gateway_scheme: str | None = None, home: Path | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S,
                 token_minutes: int = DEFAULT_TOKEN_MINUTES, retry: RetryPolicy | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        super().__init__(endpoint, region, access_key_id, secret_access_key, session_token, verify=verify,
                         gateway_scheme_=gateway_scheme, home=home,
                         token_minutes=token_minutes, retry=retry)
        self.transport = AsyncTransport(self.endpoint, self.region, self.credentials, timeout=timeout, http=http)
        self._data_http: httpx.AsyncClient | None = None
        self.images = AsyncImages(self)
        self.microvms = AsyncMicrovms(self)

    @property
    def data_http(self) -> httpx.AsyncClient:
        """The connection pool for MicroVM endpoints (created on first use)."""
        if self._data_http is None:
            verify: Any = self.gateway_ssl() if self.gateway_scheme == "https" else True
            self._data_http = httpx.AsyncClient(verify=verify, timeout=DATA_TIMEOUT_S)
        return self._data_http

    async def aclose(self) -> None:
        """Close both connection pools."""
        await self.transport.aclose()
        if self._data_http is not None:
            await self._data_http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
