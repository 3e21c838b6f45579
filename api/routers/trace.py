"""The regulator's trace: every access and every consent change, from the event index.

Two routes, one row shape (``ledger.trace.TraceRow``): ``/v1/trace/accesses`` (kind
``access``) and ``/v1/trace/consents`` (kinds ``granted``, ``revoked``, ``paused``,
``resumed``, ``expired``; narrow with ``kind=``). Both take the same filters, sort by
``(at, block, log index)``, page with an opaque keyset cursor, and export every matching
row streamed as CSV or JSON (``format=csv|json``). Every row cites the transaction, block
and log that prove it; ``GET /v1/audit/verify`` re-derives the rows from the chain. The
rules live in :mod:`api.flows.trace`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Query

from api import errors
from api.deps import Regulator, ServicesDep
from api.flows import trace as trace_flow
from api.flows.trace import ConsentKind, Format, TracePage, TraceRowPublic
from api.routers._resource import ResourceRouter
from ledger.trace import TraceFilter

router = ResourceRouter(prefix="/trace", tags=["trace"])

_ADDRESS = r"^0x[0-9a-fA-F]{40}$"
_BYTES32 = r"^0x[0-9a-fA-F]{64}$"


def common_filter(
    subject: Annotated[str | None, Query(pattern=_ADDRESS, description="Asset owner")] = None,
    institution: Annotated[str | None, Query(pattern=_ADDRESS, description="Grantee")] = None,
    asset_id: Annotated[str | None, Query(pattern=_BYTES32)] = None,
    issuer: Annotated[str | None, Query(pattern=_ADDRESS, description="Asset issuer")] = None,
    purpose: Annotated[int | None, Query(ge=0, le=2**32 - 1)] = None,
    grant_id: Annotated[str | None, Query(pattern=_BYTES32)] = None,
    from_time: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="unix s, incl.")] = None,
    to_time: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="unix s, incl.")] = None,
    from_block: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    to_block: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> TraceFilter:
    return TraceFilter(
        subject=subject,
        institution=institution,
        asset_id=asset_id,
        issuer=issuer,
        purpose=purpose,
        grant_id=grant_id,
        from_time=from_time,
        to_time=to_time,
        from_block=from_block,
        to_block=to_block,
    )


CommonFilter = Annotated[TraceFilter, Depends(common_filter)]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of a page")]
OrderQ = Annotated[Literal["asc", "desc"], Query(description="Chronological or newest first")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (format=page)")]
FormatQ = Annotated[
    Format, Query(description="`page`: one JSON page; `json`/`csv`: every row, streamed")
]

_PROBLEMS = errors.problem_responses(
    errors.RoleRequiredError,
    errors.InvalidCursorError,
    errors.NotReadyError,
    errors.DatabaseUnavailableError,
)
_EXPORT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A page (format=page), or every row streamed (format=json|csv)",
        # One status, two JSON shapes chosen by `format`: documented as either.
        "model": TracePage | list[TraceRowPublic],
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/accesses",
    response_model=None,
    summary="Every recorded access, filtered, sorted, paged or exported (regulator)",
    responses={**_PROBLEMS, **_EXPORT},
)
async def trace_accesses(
    _member: Regulator,
    services: ServicesDep,
    flt: CommonFilter,
    cursor: Cursor = None,
    order: OrderQ = "asc",
    limit: Limit = 100,
    format: FormatQ = "page",
) -> Any:
    return await trace_flow.accesses(
        services, flt, cursor=cursor, order=order, limit=limit, format=format
    )


@router.get(
    "/consents",
    response_model=None,
    summary="Every grant, revocation, pause, resume and expiry, filtered, sorted, paged or "
    "exported (regulator)",
    responses={**_PROBLEMS, **_EXPORT},
)
async def trace_consents(
    _member: Regulator,
    services: ServicesDep,
    flt: CommonFilter,
    kind: Annotated[list[ConsentKind] | None, Query(description="Repeat to combine")] = None,
    cursor: Cursor = None,
    order: OrderQ = "asc",
    limit: Limit = 100,
    format: FormatQ = "page",
) -> Any:
    return await trace_flow.consents(
        services, flt, kind, cursor=cursor, order=order, limit=limit, format=format
    )
