"""A subject's own history ("who read my data"): accesses to its assets, changes to its grants.

Served from the event index like the regulator's trace (same rows, same proof), but always
scoped to the signed-in subject. ``since`` is the cursor the previous answer returned; the
answer always returns a cursor (the last row seen), so a wallet can poll for what is new.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from api import errors
from api._streams import SlotStreamingResponse, StreamSlots
from api.deps import ServicesDep, Subject
from api.routers.trace import FieldNames, TraceRowPublic, public, trace_problem
from ledger import trace
from ledger.trace import TraceFilter

router = APIRouter(prefix="/me", tags=["history"])


class HistoryPage(BaseModel):
    items: list[TraceRowPublic]
    cursor: str | None = Field(
        description="Pass as `since` next time: the position after the last row returned "
        "(the `since` given, or null, when nothing new)"
    )
    has_more: bool = Field(description="More rows are ready now (ask again with `cursor`)")
    indexed_to: int | None = Field(description="Last block the index covers")


def _history(engine: Engine, address: str, since: str | None, limit: int) -> HistoryPage:
    flt = TraceFilter(subject=address)
    names = FieldNames(engine)
    try:
        with engine.connect() as conn:
            got = trace.query_page(conn, flt, cursor=since, order="asc", limit=limit)
        items = [public(r, names) for r in got.rows]
    except trace.TraceError as exc:
        raise trace_problem(exc) from exc
    cursor = trace.encode_cursor(got.rows[-1].key, flt, "asc") if got.rows else since
    return HistoryPage(
        items=items,
        cursor=cursor,
        has_more=got.next_cursor is not None,
        indexed_to=got.indexed_to,
    )


@router.get(
    "/history",
    response_model=HistoryPage,
    summary="Who read my data, and every change to my grants, since a cursor (subject)",
    responses=errors.problem_responses(
        errors.RoleRequiredError,
        errors.InvalidCursorError,
        errors.NotReadyError,
        errors.DatabaseUnavailableError,
    ),
)
async def my_history(
    member: Subject,
    services: ServicesDep,
    since: Annotated[
        str | None, Query(max_length=512, description="`cursor` of last answer")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HistoryPage:
    return await to_thread.run_sync(_history, services.engine, member.address.lower(), since, limit)


#: Seconds between index polls of an open stream, and between keep-alive comments.
STREAM_POLL_SECONDS = 0.5
STREAM_KEEPALIVE_SECONDS = 15.0


@router.get(
    "/events",
    response_model=HistoryPage,
    summary="My history as it happens: server-sent events with `Accept: text/event-stream`, "
    "else one JSON page like /me/history (subject)",
    responses={
        200: {
            "description": "`Accept: text/event-stream`: a stream; each event has `id` = cursor "
            "(send it back as `Last-Event-ID`), `event` = kind, `data` = a row (JSON). "
            "Otherwise a HistoryPage.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **errors.problem_responses(
            errors.RoleRequiredError,
            errors.InvalidCursorError,
            errors.NotReadyError,
            errors.TooManyStreamsError,
        ),
    },
)
async def my_events(
    request: Request,
    member: Subject,
    services: ServicesDep,
    since: Annotated[str | None, Query(max_length=512, description="last `cursor`")] = None,
    last_event_id: Annotated[str | None, Header(max_length=512)] = None,
    accept: Annotated[str | None, Header(max_length=1000)] = None,
    max_seconds: Annotated[
        float | None, Query(gt=0, le=86_400, description="Close the stream after this long")
    ] = None,
) -> StreamingResponse | HistoryPage:
    engine = services.engine
    address = member.address.lower()
    start = last_event_id or since
    # Validate before the stream starts: afterwards only the connection can fail.
    first = await to_thread.run_sync(_history, engine, address, start, 100)
    if "text/event-stream" not in (accept or ""):
        return first
    # Every stream holds a slot (per member and per process) and closes by the operator's
    # maximum duration at the latest; the client resumes with Last-Event-ID.
    slots: StreamSlots = request.app.state.streams
    slots.take(address)
    limit = services.settings.max_stream_seconds
    max_seconds = limit if max_seconds is None else min(max_seconds, limit)

    async def stream() -> AsyncIterator[bytes]:
        page = first
        cursor = start
        opened = time.monotonic()
        quiet_since = time.monotonic()
        while True:
            for item in page.items:
                cursor = trace.encode_cursor(
                    (
                        item.at,
                        item.block_number,
                        item.log_index,
                        1 if item.kind == "expired" else 0,
                    ),
                    TraceFilter(subject=address),
                    "asc",
                )
                data = json.dumps(item.model_dump(), separators=(",", ":"))
                yield f"id: {cursor}\nevent: {item.kind}\ndata: {data}\n\n".encode()
                quiet_since = time.monotonic()
            if page.has_more:
                page = await to_thread.run_sync(_history, engine, address, cursor, 100)
                continue
            if time.monotonic() - opened >= max_seconds:
                return
            if await request.is_disconnected():
                return
            if time.monotonic() - quiet_since >= STREAM_KEEPALIVE_SECONDS:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(STREAM_POLL_SECONDS)
            page = await to_thread.run_sync(_history, engine, address, cursor, 100)

    return SlotStreamingResponse(
        stream(),
        slots=slots,
        member=address,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
