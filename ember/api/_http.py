"""What a handler receives (``Call``) and how a request becomes a contract model: path + query + body, one parse."""

from __future__ import annotations

import asyncio
import json
import re
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from ember.api.context import ApiContext
from ember.contract.errors import ApiError, ValidationException
from ember.contract.validation import parse_request
from ember.store import paging

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted: the biggest legal request (50 env vars of 4 KiB, a 16 KiB payload) is far less."""


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the account and the access key that proved it (SigV4, or a console session's key)."""

    account_id: str
    access_key_id: str


CALLER = web.RequestKey("ember_caller", Caller)
"""Set on a request by ``ember.api.app.authenticate`` once it has accepted the caller."""


@dataclass
class Call:
    """One authenticated API call: the server context, the caller's account and the request's members."""

    ctx: ApiContext
    account_id: str
    request: web.Request
    members: dict[str, Any] = field(default_factory=dict)
    """Path, query and body members merged (path wins, then query), named as the request model names them."""
    body: dict[str, Any] = field(default_factory=dict)
    """The JSON body alone (to tell what the client actually sent)."""
    access_key_id: str | None = None
    """The access key the caller authenticated with (the SigV4 key, or the one its console session signed in with)."""

    def parse(self, model: type[ModelT], *, error_cls: type[ApiError] = ValidationException) -> ModelT:
        """``members`` validated into ``model``; ValidationException (or ``error_cls``) naming field and bound."""
        return parse_request(model, self.members, error_cls=error_cls)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(session, *args)`` in one short write transaction, off the event loop."""
        return await self.ctx.store.awrite(fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(session, *args)`` in one read transaction, off the event loop."""
        return await self.ctx.store.aread(fn, *args)


Handler = Callable[[Call], Awaitable[BaseModel | web.StreamResponse | None]]
"""A handler returns the response model (serialised with ``to_wire``), None for an empty response, or a response
it streamed itself."""


async def read_json_body(request: web.Request) -> tuple[bytes, dict[str, Any]]:
    """The raw body and its JSON object (``{}`` when empty); ValidationException for anything else."""
    raw = await request.read()
    if not raw.strip():
        return raw, {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationException.for_field("request body", f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValidationException.for_field("request body", f"expected a JSON object, got {type(data).__name__}")
    return raw, data


def query_members(
    request: web.Request, query: Mapping[str, str], lists: frozenset[str], model: type[BaseModel]
) -> dict[str, Any]:
    """The declared query parameters (wire name → member name); list members keep every value.

    Integer members written in decimal become ints, so messages show ``51``, not ``'51'``.
    """
    out: dict[str, Any] = {}
    for wire, member in query.items():
        values = request.query.getall(wire, [])
        if not values:
            continue
        value: Any = list(values) if member in lists else values[-1]
        if isinstance(value, str) and _INT_RE.fullmatch(value) and _is_int_member(model, member):
            value = int(value)
        out[member] = value
    return out


_INT_RE = re.compile(r"-?[0-9]{1,18}")


def _is_int_member(model: type[BaseModel], member: str) -> bool:
    field = model.model_fields.get(member)
    if field is None:
        return False
    options = typing.get_args(field.annotation) or (field.annotation,)
    return any((typing.get_origin(o) is typing.Annotated and typing.get_args(o)[0] is int) or o is int for o in options)


def page_token(token: str | None, id_type: type) -> str | None:
    """``token`` if it is a ``nextToken`` of a list whose rows have ids of ``id_type`` (int or str).

    A token of another list would otherwise reach the database as a mistyped key (an error on PostgreSQL).
    """
    if token:
        _, row_id = paging.decode_token(token)
        if not isinstance(row_id, id_type):
            raise ValidationException.for_field("nextToken", "is not a token returned by this list operation")
    return token


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread (file removal and other blocking work)."""
    return await asyncio.to_thread(fn, *args)
