"""HTTP requests to an app inside a guest, carried over an agent stream.

The platform calls lifecycle hooks and readiness probes this way: the TCP
connection starts inside the guest (to 127.0.0.1), so the app sees a local
caller (``Host: localhost``, no ``x-amzn-requestid``) and no NIC is involved.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import h11

from ember.errors import AgentError, AgentTimeout

from .agent_client import AgentClient

HOOK_PREFIX = "/aws/lambda-microvms/runtime/v1/"
# A hook's answer is small JSON; anything bigger is cut off rather than buffered.
MAX_RESPONSE_BYTES = 1 << 20


@dataclass(frozen=True)
class GuestResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def guest_request(agent: AgentClient, port: int, method: str, path: str, *, body: bytes = b"",
                        headers: dict[str, str] | None = None, timeout: float = 10.0) -> GuestResponse:
    """One HTTP/1.1 request to ``127.0.0.1:port`` in the guest.

    Raises AgentOpError (code ECONNREFUSED...) when nothing listens, AgentTimeout
    when no complete answer arrives within ``timeout`` seconds.
    """
    try:
        return await asyncio.wait_for(_request(agent, port, method, path, body, headers or {}), timeout)
    except TimeoutError:
        raise AgentTimeout(f"{method} {path} on guest port {port}: no answer in {timeout} s") from None


async def _request(agent: AgentClient, port: int, method: str, path: str, body: bytes,
                   headers: dict[str, str]) -> GuestResponse:
    stream = await agent.open_stream(port)
    try:
        conn = h11.Connection(our_role=h11.CLIENT)
        hdrs = [("Host", "localhost"), ("Content-Length", str(len(body))), ("Connection", "close"),
                *headers.items()]
        if body and not any(k.lower() == "content-type" for k in headers):
            hdrs.append(("Content-Type", "application/json"))
        out = conn.send(h11.Request(method=method, target=path, headers=hdrs))
        out += conn.send(h11.Data(data=body)) if body else b""
        out += conn.send(h11.EndOfMessage())
        await stream.write(out)
        response: h11.Response | None = None
        chunks = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.read()
                conn.receive_data(data)  # b"" signals EOF to h11
                continue
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                if len(chunks) < MAX_RESPONSE_BYTES:
                    chunks += event.data[: MAX_RESPONSE_BYTES - len(chunks)]
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        if response is None:
            raise AgentError(f"{method} {path} on guest port {port}: connection closed without a response")
        return GuestResponse(response.status_code,
                             {k.decode().lower(): v.decode(errors="replace") for k, v in response.headers},
                             bytes(chunks))
    except h11.RemoteProtocolError as exc:
        raise AgentError(f"{method} {path} on guest port {port}: not HTTP: {exc}") from None
    finally:
        await stream.close()


async def call_hook(agent: AgentClient, port: int, hook: str, *, body: bytes = b"", method: str = "POST",
                    timeout: float = 10.0) -> GuestResponse:
    """Call lifecycle hook ``hook`` (ready, validate, run, resume, suspend, terminate)."""
    return await guest_request(agent, port, method, HOOK_PREFIX + hook, body=body, timeout=timeout)
