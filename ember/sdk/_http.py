"""Calls to the control-plane API: one ``Operation`` per call, sent signed by a sync or an async transport.

An ``Operation`` is plain data (method, path, query, body, response model); the resource classes build
them and a transport sends them, so the sync and async clients share everything but the ``await``.
Responses are parsed into the contract's pydantic models (``ember.contract``), leniently: members a newer
server added are dropped rather than failing the call. Errors become ``ember.sdk.errors`` types.

Retries: a throttled call (429) is sent again after its ``Retry-After`` (or a jittered backoff), and a
call that could not connect is retried when it is safe to repeat (GET, or any idempotent operation);
every other failure is raised at once. ``upload`` sends a code artifact (``_artifacts``): the zip streamed from
its file, retried like an idempotent call (the server keeps a zip by its SHA-256).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from ember import __version__

from ._artifacts import (
    ARTIFACTS_PATH,
    UploadedArtifact,
    UploadProgress,
    file_sha256,
    read_chunks,
    upload_headers,
    uploaded,
)
from ._signing import build_url, sign
from .config import Credentials
from .errors import ApiError, ConnectionFailed, SdkError, error_from_response

M = TypeVar("M", bound=BaseModel)

DEFAULT_TIMEOUT_S = 30.0
"""Connect/read/write timeout of one API call."""
MAX_ATTEMPTS = 4
"""Tries per call when it is throttled or cannot connect (the first try included)."""
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0
MAX_RETRY_AFTER_S = 30.0
"""A server asking for a longer wait than this gets the error instead of a sleeping client."""
RETRY_CODES = frozenset({"ThrottlingException", "TooManyRequestsException"})
USER_AGENT = f"ember-sdk/{__version__}"


@dataclass(frozen=True)
class Operation(Generic[M]):
    """One API call: ``path`` is already encoded (``_signing.build_path``); ``model`` parses the response."""

    name: str
    method: str
    path: str
    model: type[M] | None = None
    query: Mapping[str, object] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    idempotent: bool = False


UPLOAD_OP: Operation[Any] = Operation("UploadCodeArtifact", "POST", ARTIFACTS_PATH, idempotent=True)
"""``POST /ember/artifacts`` as an operation, for the retry rules."""


def parse_model(model: type[M], data: Any) -> M:
    """``model`` validated from ``data``, dropping members the model does not know (a newer server's)."""
    for _ in range(8):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            extra = [e["loc"] for e in exc.errors() if e["type"] == "extra_forbidden"]
            if not extra or len(extra) != len(exc.errors()):
                raise SdkError(f"unexpected response from the API: {exc}") from None
            for loc in extra:
                data = _drop(data, loc)
    return model.model_validate(data)


def _drop(data: Any, loc: tuple[Any, ...]) -> Any:
    if not loc:
        return data
    if len(loc) == 1:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k != loc[0]}
        return data
    head, rest = loc[0], loc[1:]
    if isinstance(data, dict) and head in data:
        return {**data, head: _drop(data[head], rest)}
    if isinstance(data, list) and isinstance(head, int) and 0 <= head < len(data):
        return [_drop(item, rest) if i == head else item for i, item in enumerate(data)]
    return data


def backoff(attempt: int, error: ApiError | None = None) -> float | None:
    """Seconds to wait before try ``attempt + 1`` (None: give up); ``Retry-After`` wins when it was sent."""
    if attempt >= MAX_ATTEMPTS:
        return None
    if error is not None and error.retry_after is not None:
        return error.retry_after if error.retry_after <= MAX_RETRY_AFTER_S else None
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))


class _Base:
    def __init__(self, endpoint: str, region: str, credentials: Credentials) -> None:
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials

    def prepare(self, op: Operation[Any], query: Mapping[str, object] | None = None) -> tuple[str, dict[str, str],
                                                                                              bytes | None]:
        """The URL, signed headers and body of ``op`` (``query`` replaces the operation's query)."""
        url = build_url(self.endpoint, op.path, op.query if query is None else query)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        content = None
        if op.body is not None:
            content = json.dumps(op.body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        return url, sign(op.method, url, headers, content, self.credentials, self.region), content

    def prepare_upload(self, path: Path) -> tuple[str, dict[str, str], int]:
        """The URL and signed headers of an upload of the zip at ``path``, and its size.

        The signature covers an empty payload; the signed ``X-Ember-Content-SHA256`` header binds the body.
        """
        url = build_url(self.endpoint, ARTIFACTS_PATH)
        headers = {**upload_headers(file_sha256(path)), "User-Agent": USER_AGENT}
        signed = sign("POST", url, headers, None, self.credentials, self.region)
        size = path.stat().st_size
        signed["Content-Length"] = str(size)
        return url, signed, size

    @staticmethod
    def decode_upload(response: httpx.Response) -> UploadedArtifact:
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.headers, response.content)
        try:
            return uploaded(response.json())
        except ValueError:
            raise SdkError(f"POST {ARTIFACTS_PATH}: the API answered {response.status_code} with a body that is not "
                           "JSON") from None

    @staticmethod
    def decode(op: Operation[M], response: httpx.Response) -> M | None:
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.headers, response.content)
        if op.model is None:
            return None
        try:
            data = response.json() if response.content else {}
        except ValueError:
            raise SdkError(f"{op.name}: the API answered {response.status_code} with a body that is not JSON") from None
        return parse_model(op.model, data)

    @staticmethod
    def retry_delay(op: Operation[Any], attempt: int, exc: Exception) -> float | None:
        if isinstance(exc, ApiError):
            return backoff(attempt, exc) if exc.code in RETRY_CODES else None
        if isinstance(exc, httpx.ConnectError) or (isinstance(exc, httpx.TransportError)
                                                   and (op.method == "GET" or op.idempotent)):
            return backoff(attempt)
        return None

    def delay_or_raise(self, op: Operation[Any], attempt: int, exc: ApiError | httpx.HTTPError, url: str) -> float:
        """How long to wait before trying ``op`` again; raises the error the caller sees when it is final."""
        delay = self.retry_delay(op, attempt, exc)
        if delay is not None:
            return delay
        if isinstance(exc, httpx.HTTPError):
            raise self.connection_failed(exc, url) from None
        raise exc

    def connection_failed(self, exc: httpx.HTTPError, url: str) -> ConnectionFailed:
        if isinstance(exc, httpx.ConnectError):
            return ConnectionFailed(f"cannot reach the Ember API at {self.endpoint} ({exc}); is `ember serve` "
                                    f"running? (--endpoint / EMBER_ENDPOINT)", url=url)
        return ConnectionFailed(f"{type(exc).__name__} talking to the Ember API at {self.endpoint}: {exc}", url=url)


def _stream_timeout(follow: bool, timeout: float) -> httpx.Timeout:
    return httpx.Timeout(timeout, read=None) if follow else httpx.Timeout(timeout)


class SyncTransport(_Base):
    """Sends operations with an ``httpx.Client``."""

    def __init__(self, endpoint: str, region: str, credentials: Credentials, *, timeout: float = DEFAULT_TIMEOUT_S,
                 http: httpx.Client | None = None) -> None:
        super().__init__(endpoint, region, credentials)
        self.timeout = timeout
        self.http = http or httpx.Client(timeout=timeout)

    def call(self, op: Operation[M]) -> M | None:
        """Send ``op`` (retrying throttling and failed connections) and parse its response."""
        attempt = 1
        while True:
            url, headers, content = self.prepare(op)
            try:
                response = self.http.request(op.method, url, headers=headers, content=content)
                return self.decode(op, response)
            except (ApiError, httpx.HTTPError) as exc:
                delay = self.delay_or_raise(op, attempt, exc, url)
            time.sleep(delay)
            attempt += 1

    def upload(self, path: Path, on_progress: UploadProgress | None = None) -> UploadedArtifact:
        """Upload the zip at ``path`` (``POST /ember/artifacts``), streamed from the file; its URI and digest."""
        attempt = 1
        while True:
            url, headers, size = self.prepare_upload(path)
            try:
                response = self.http.request("POST", url, headers=headers,
                                             content=read_chunks(path, size, on_progress))
                return self.decode_upload(response)
            except (ApiError, httpx.HTTPError) as exc:
                delay = self.delay_or_raise(UPLOAD_OP, attempt, exc, url)
            time.sleep(delay)
            attempt += 1

    def lines(self, op: Operation[Any], *, follow: bool) -> Iterator[bytes]:
        """The response body of ``op`` line by line (NDJSON), as it arrives."""
        url, headers, content = self.prepare(op)
        try:
            with self.http.stream(op.method, url, headers=headers, content=content,
                                  timeout=_stream_timeout(follow, self.timeout)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response.status_code, response.headers, response.content)
                for line in response.iter_lines():
                    if line.strip():
                        yield line.encode()
        except httpx.HTTPError as exc:
            raise self.connection_failed(exc, url) from None

    def close(self) -> None:
        self.http.close()


class AsyncTransport(_Base):
    """Sends operations with an ``httpx.AsyncClient``."""

    def __init__(self, endpoint: str, region: str, credentials: Credentials, *, timeout: float = DEFAULT_TIMEOUT_S,
                 http: httpx.AsyncClient | None = None) -> None:
        super().__init__(endpoint, region, credentials)
        self.timeout = timeout
        self.http = http or httpx.AsyncClient(timeout=timeout)

    async def call(self, op: Operation[M]) -> M | None:
        """Send ``op`` (retrying throttling and failed connections) and parse its response."""
        attempt = 1
        while True:
            url, headers, content = self.prepare(op)
            try:
                response = await self.http.request(op.method, url, headers=headers, content=content)
                return self.decode(op, response)
            except (ApiError, httpx.HTTPError) as exc:
                delay = self.delay_or_raise(op, attempt, exc, url)
            await asyncio.sleep(delay)
            attempt += 1

    async def upload(self, path: Path, on_progress: UploadProgress | None = None) -> UploadedArtifact:
        """Upload the zip at ``path`` (``POST /ember/artifacts``), streamed from the file; its URI and digest."""
        attempt = 1
        while True:
            url, headers, size = await asyncio.to_thread(self.prepare_upload, path)
            try:
                response = await self.http.request("POST", url, headers=headers,
                                                   content=_aiter(read_chunks(path, size, on_progress)))
                return self.decode_upload(response)
            except (ApiError, httpx.HTTPError) as exc:
                delay = self.delay_or_raise(UPLOAD_OP, attempt, exc, url)
            await asyncio.sleep(delay)
            attempt += 1

    async def lines(self, op: Operation[Any], *, follow: bool) -> AsyncIterator[bytes]:
        """The response body of ``op`` line by line (NDJSON), as it arrives."""
        url, headers, content = self.prepare(op)
        try:
            async with self.http.stream(op.method, url, headers=headers, content=content,
                                        timeout=_stream_timeout(follow, self.timeout)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_from_response(response.status_code, response.headers, response.content)
                async for line in response.aiter_lines():
                    if line.strip():
                        yield line.encode()
        except httpx.HTTPError as exc:
            raise self.connection_failed(exc, url) from None

    async def aclose(self) -> None:
        await self.http.aclose()


async def _aiter(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` for an async client, each file read off the event loop."""
    while True:
        chunk = await asyncio.to_thread(next, chunks, None)
        if chunk is None:
            return
        yield chunk
