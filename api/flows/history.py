"""A subject's own history ("who read my data"): accesses to its assets, changes to its
grants, from the event index like the regulator's trace (same rows, same proof) but always
scoped to the signed-in subject; as one page, or as server-sent events as they happen."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from anyio import to_thread
from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from api import _claim_webhooks
from api._streams import SlotStreamingResponse, StreamSlots
from api.auth import Member
from api.flows.trace import FieldNames, TraceRowPublic, public, trace_problem
from api.services import Services
from ledger import trace
from ledger.lifecycle import recall_rank
from ledger.trace import TraceFilter

#: Seconds between index polls of an open stream, and between keep-alive comments.
STREAM_POLL_SECONDS = 0.5
STREAM_KEEPALIVE_SECONDS = 15.0


class HistoryPage(BaseModel):
    items: list[TraceRowPublic]
    cursor: str | None = Field(
        description="Pass as `since` next time: the position after the last row returned "
        "(the `since` given, or null, when nothing new)"
    )
    has_more: bool = Field(description="More rows are ready now (ask again with `cursor`)")
    indexed_to: int | None = Field(description="Last block the index covers")


async def history(services: Services, member: Member, since: str | None, limit: int) -> HistoryPage:
    return await to_thread.run_sync(_history, services.engine, member.address.lower(), since, limit)


async def events(
    services: Services,
    member: Member,
    request: Request,
    *,
    since: str | None,
    last_event_id: str | None,
    accept: str | None,
    max_seconds: float | None,
) -> StreamingResponse | HistoryPage:
    """One page like :func:`history`, or (``Accept: text/event-stream``) a stream from it."""
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

    return SlotStreamingResponse(
        _stream(request, engine, address, first, start, max_seconds),
        slots=slots,
        member=address,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _key(item: TraceRowPublic) -> trace.SortKey:
    """A row's trace key (its rank as :class:`ledger.trace.TraceRow` has it)."""
    rank = recall_rank(item.grant_id) if item.kind == "recall" else int(item.kind == "expired")
    return (item.at, item.block_number, item.log_index, rank)


def _claims_after(
    engine: Engine, address: str, after: trace.SortKey | None, limit: int
) -> list[tuple[trace.SortKey, str, dict[str, Any]]]:
    """Her claims' events after ``after``, up to the indexed head's time: (key, name, data)."""
    with engine.connect() as conn:
        now = trace.head_time(conn)
        if now is None:
            return []
        rows = _claim_webhooks.subject_rows_after(conn, address, after, now, limit)
    out = []
    for r in rows:
        name = _claim_webhooks.TYPES[r["event"]].replace(".", "_")
        key = (int(r["block_timestamp"]), int(r["block_number"]), int(r["log_index"]), 0)
        out.append((key, name, _claim_webhooks.event_data(r) | {"kind": name}))
    return out


async def _stream(
    request: Request,
    engine: Engine,
    address: str,
    first: HistoryPage,
    start: str | None,
    max_seconds: float,
) -> AsyncIterator[bytes]:
    """Server-sent events: the rows of ``first`` and her claims' events (filed, fulfilled,
    refused) merged in trace-key order, then every new one as the index gets it. One cursor
    (the trace's, of the last event sent) resumes both."""
    flt = TraceFilter(subject=address)
    page = first
    after = trace.decode_cursor(start, flt, "asc") if start else None
    opened = time.monotonic()
    quiet_since = time.monotonic()
    while True:
        claims = await to_thread.run_sync(_claims_after, engine, address, after, 100)
        merged = [(_key(i), i.kind, i.model_dump()) for i in page.items] + claims
        merged.sort(key=lambda m: m[0])
        # Past the last row of a full batch the other source may hold earlier rows: stop there.
        bounds = [_key(page.items[-1])] if page.has_more and page.items else []
        bounds += [claims[-1][0]] if len(claims) == 100 else []
        last = min(bounds) if bounds else None
        for key, name, data in merged:
            if last is not None and key > last:
                break
            after = key
            cursor = trace.encode_cursor(key, flt, "asc")
            body = json.dumps(data, separators=(",", ":"))
            yield f"id: {cursor}\nevent: {name}\ndata: {body}\n\n".encode()
            quiet_since = time.monotonic()
        since = trace.encode_cursor(after, flt, "asc") if after else None
        if last is not None:
            page = await to_thread.run_sync(_history, engine, address, since, 100)
            continue
        if time.monotonic() - opened >= max_seconds:
            return
        if await request.is_disconnected():
            return
        if time.monotonic() - quiet_since >= STREAM_KEEPALIVE_SECONDS:
            yield b": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(STREAM_POLL_SECONDS)
        page = await to_thread.run_sync(_history, engine, address, since, 100)


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
