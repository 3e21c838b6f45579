"""A subject's own history ("who read my data"): accesses to its assets, changes to its grants.

Served from the event index like the regulator's trace (same rows, same proof), but always
scoped to the signed-in subject. ``since`` is the cursor the previous answer returned; the
answer always returns a cursor (the last row seen), so a wallet can poll for what is new.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Request
from fastapi.responses import StreamingResponse

from api import errors
from api.deps import ServicesDep, Subject
from api.flows import history as history_flow
from api.flows.history import HistoryPage
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/me", tags=["history"])


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
    return await history_flow.history(services, member, since, limit)


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
    return await history_flow.events(
        services,
        member,
        request,
        since=since,
        last_event_id=last_event_id,
        accept=accept,
        max_seconds=max_seconds,
    )
