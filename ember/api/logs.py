"""Ember's log routes (extensions, not in the service model): a MicroVM's app log and a build's log.

``GET /2025-09-09/microvms/{microvmIdentifier}/logs`` and
``GET /2025-09-09/microvm-images/{imageIdentifier}/versions/{imageVersion}/builds/{buildId}/logs`` answer
``application/x-ndjson``: one JSON object per line, ``{"seq", "at", "stream", "line"}`` (``at`` in epoch seconds).
``?since=<seq>`` starts after line ``seq`` (lines count from 1). ``?follow=true`` keeps the response open and
sends new lines as they are stored, until the MicroVM is TERMINATED or the build has finished (or the server
stops); without it the response ends after the lines stored so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

from aiohttp import web
from pydantic import Field
from sqlalchemy.orm import Session

from ember.api._http import Call
from ember.api.images import image_name
from ember.api.microvms import microvm_id
from ember.contract._base import ApiModel, Timestamp
from ember.contract.enums import BuildState, MicrovmState
from ember.contract.shapes import Identifier, NonBlankString
from ember.store import builds, images, logs, microvms, versions

FOLLOW_POLL_S = 0.5
"""How often a follower looks for new lines."""
BATCH_LINES = 1000
"""Lines read from the store per query."""
NDJSON = "application/x-ndjson"
CLOSING = web.AppKey("ember_closing", asyncio.Event)
"""Set when the server shuts down, so open ``follow`` streams end instead of holding the shutdown."""

Since = Annotated[int, Field(ge=0, description="Return the lines after this sequence number (lines count from 1).")]


class MicrovmLogsRequest(ApiModel):
    """GET /2025-09-09/microvms/{microvmIdentifier}/logs?since&follow (Ember extension)."""

    microvmIdentifier: Identifier
    since: Since = 0
    follow: bool = False


class BuildLogsRequest(ApiModel):
    """GET …/versions/{imageVersion}/builds/{buildId}/logs?since&follow (Ember extension)."""

    imageIdentifier: Identifier
    imageVersion: NonBlankString
    buildId: NonBlankString
    since: Since = 0
    follow: bool = False


class LogLineItem(ApiModel):
    """One line of the NDJSON stream."""

    seq: int
    at: Timestamp
    stream: str
    line: str


async def _stream(call: Call, owner_kind: str, owner_id: str, since: int, follow: bool, is_done) -> web.StreamResponse:  # type: ignore[no-untyped-def]
    """Write the owner's lines after ``since`` as NDJSON; with ``follow``, until ``is_done(session)``."""

    def batch(session: Session, after: int) -> tuple[list[LogLineItem], bool]:
        done = is_done(session)
        rows = logs.read_logs(session, owner_kind, owner_id, after_seq=after, limit=BATCH_LINES)
        return [LogLineItem(seq=r.seq, at=r.at, stream=r.stream, line=r.line) for r in rows], done

    response = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-store"})
    await response.prepare(call.request)
    closing = call.request.app[CLOSING]
    after = since
    try:
        while True:
            lines, done = await call.ctx.store.aread(batch, after)
            if lines:
                await response.write("".join(json.dumps(item.to_wire()) + "\n" for item in lines).encode())
                after = lines[-1].seq
            if len(lines) == BATCH_LINES:
                continue
            if not follow or done or closing.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), FOLLOW_POLL_S)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away: nothing left to answer
    return response


async def microvm_logs(call: Call) -> web.StreamResponse:
    """The MicroVM's app log (stdout and stderr), as NDJSON."""
    req = call.parse(MicrovmLogsRequest)
    vm_id = microvm_id(call, req.microvmIdentifier)

    def terminated(session: Session) -> bool:
        return microvms.get_microvm(session, call.account_id, vm_id).state is MicrovmState.TERMINATED

    await call.read(terminated)  # ResourceNotFoundException before the stream starts
    return await _stream(call, logs.OWNER_MICROVM, vm_id, req.since, req.follow, terminated)


async def build_logs(call: Call) -> web.StreamResponse:
    """The build's log (each step's output), as NDJSON."""
    req = call.parse(BuildLogsRequest)
    name = image_name(call, req.imageIdentifier)

    def finished(session: Session) -> bool:
        image = images.get_image(session, call.account_id, name, include_deleted=True)
        version = versions.get_version(session, image, req.imageVersion, include_deleted=True)
        return builds.get_build(session, version, req.buildId).state in (BuildState.SUCCESSFUL, BuildState.FAILED)

    await call.read(finished)
    return await _stream(call, logs.OWNER_BUILD, req.buildId, req.since, req.follow, finished)
