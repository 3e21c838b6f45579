"""The regulator's trace: every access and every consent change, from the event index.

One row shape (``ledger.trace.TraceRow``) for both: accesses (kind ``access``) and consents
(kinds ``granted``, ``revoked``, ``paused``, ``resumed``, ``expired``). Both take the same
filters, sort by ``(at, block, log index)``, page with an opaque keyset cursor, and export
every matching row streamed as CSV or JSON. Every row cites the transaction, block and log
that prove it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from anyio import to_thread
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from api import _store, errors
from api.services import Services
from api.terms import field_names
from ledger import trace
from ledger.trace import TraceFilter, TraceRow

EXPORT_CHUNK_ROWS = 2000

TraceKind = Literal[
    "granted",
    "revoked",
    "paused",
    "resumed",
    "expired",
    "access",
    "recall",
    "recall_acknowledged",
    "deletion_acknowledged",
]
#: ``/v1/trace/consents`` answers the consent kinds unless asked for the lifecycle ones.
ConsentKind = Literal[
    "granted",
    "revoked",
    "paused",
    "resumed",
    "expired",
    "recall",
    "recall_acknowledged",
    "deletion_acknowledged",
]
Format = Literal["page", "json", "csv"]


async def accesses(
    services: Services,
    flt: TraceFilter,
    *,
    cursor: str | None,
    order: str,
    limit: int,
    format: str,
) -> Any:
    """Every recorded access matching ``flt``: one page, or every row streamed."""
    scoped = flt.with_kinds({"access"})
    return await respond(
        services, scoped, cursor=cursor, order=order, limit=limit, fmt=format, filename="accesses"
    )


async def consents(
    services: Services,
    flt: TraceFilter,
    kind: Sequence[str] | None,
    *,
    cursor: str | None,
    order: str,
    limit: int,
    format: str,
) -> Any:
    """Every consent change matching ``flt`` (all kinds, or those named): a page, or a stream."""
    kinds = frozenset(kind) if kind else frozenset(trace.CONSENT_KINDS)
    scoped = flt.with_kinds(kinds)
    return await respond(
        services, scoped, cursor=cursor, order=order, limit=limit, fmt=format, filename="consents"
    )


class TraceRowPublic(BaseModel):
    """One access or consent change with its on-chain proof (tx hash, block, log index)."""

    kind: TraceKind
    grant_id: str
    subject: str = Field(description="Owner of the asset (the person or company)")
    institution: str = Field(description="Grantee of the grant")
    asset_id: str
    issuer: str | None = Field(description="Department that issued the asset")
    schema_id: str | None
    purpose: int
    fields_mask: int = Field(description="access: fields read; consent: fields granted")
    fields: list[str] | None = Field(description="Field names of the mask, if the schema is known")
    actor: str = Field(description="grantor / revoker / pauser; the custodian for an access")
    not_before: int
    expiry: int
    max_uses: int
    use: int | None = Field(description="access: the grant's use number")
    nonce: str
    at: int = Field(description="Block time (unix s); for `expired`, the grant's expiry")
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str


class TracePage(BaseModel):
    items: list[TraceRowPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end")
    indexed_to: int | None = Field(description="Last block the index covers")


def trace_problem(exc: trace.TraceError) -> errors.ApiError:
    if isinstance(exc, trace.InvalidCursorError):
        return errors.InvalidCursorError(str(exc))
    if isinstance(exc, trace.IndexNotReadyError):
        return errors.NotReadyError(str(exc))
    return errors.DatabaseUnavailableError(str(exc))


class FieldNames:
    """Schema field names by schema id (the chain keeps only their hash), cached per request."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: dict[str, list[str] | None] = {}

    def of(self, row: TraceRow) -> list[str] | None:
        if row.schema_id is None:
            return None
        if row.schema_id not in self._cache:
            schema = _store.get_schema(self._engine, row.schema_id)
            self._cache[row.schema_id] = list(schema["fields"]) if schema else None
        fields = self._cache[row.schema_id]
        return field_names(row.fields_mask, fields) if fields is not None else None


def public(row: TraceRow, names: FieldNames) -> TraceRowPublic:
    return TraceRowPublic(**row.to_json(), fields=names.of(row))


def page(engine: Engine, flt: TraceFilter, cursor: str | None, order: Any, limit: int) -> TracePage:
    names = FieldNames(engine)
    try:
        with engine.connect() as conn:
            got = trace.query_page(conn, flt, cursor=cursor, order=order, limit=limit)
        items = [public(r, names) for r in got.rows]
    except trace.TraceError as exc:
        raise trace_problem(exc) from exc
    return TracePage(items=items, next_cursor=got.next_cursor, indexed_to=got.indexed_to)


def _precheck(engine: Engine, flt: TraceFilter, cursor: str | None, order: Any) -> None:
    """Fail with a problem before the stream starts (afterwards only truncation is possible)."""
    try:
        if cursor:
            trace.decode_cursor(cursor, flt, order)
        with engine.connect() as conn:
            trace.query_page(conn, flt, cursor=cursor, order=order, limit=1)
    except trace.TraceError as exc:
        raise trace_problem(exc) from exc


def _csv_line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def export_lines(
    engine: Engine, flt: TraceFilter, cursor: str | None, order: Any, fmt: str
) -> Iterator[bytes]:
    """Every matching row, read page by page (keyset) and sent as it is read."""
    names = FieldNames(engine)
    columns = [*trace.CSV_COLUMNS, "fields"]
    with engine.connect() as conn:
        if fmt == "csv":
            yield _csv_line(columns).encode()
        else:
            yield b"["
        first = True
        chunk: list[str] = []
        for row in trace.iter_rows(conn, flt, cursor=cursor, order=order, chunk=EXPORT_CHUNK_ROWS):
            data = public(row, names).model_dump()
            if fmt == "csv":
                fields = data["fields"]
                data["fields"] = ";".join(fields) if fields is not None else ""
                chunk.append(_csv_line([data[c] for c in columns]))
            else:
                chunk.append(("" if first else ",") + json.dumps(data, separators=(",", ":")))
                first = False
            if len(chunk) >= 500:
                yield "".join(chunk).encode()
                chunk = []
        if chunk:
            yield "".join(chunk).encode()
        if fmt != "csv":
            yield b"]\n"


async def respond(
    services: Any,
    flt: TraceFilter,
    *,
    cursor: str | None,
    order: str,
    limit: int,
    fmt: str,
    filename: str,
) -> Any:
    engine = services.engine
    if fmt == "page":
        return await to_thread.run_sync(page, engine, flt, cursor, order, limit)
    await to_thread.run_sync(_precheck, engine, flt, cursor, order)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return StreamingResponse(
        export_lines(engine, flt, cursor, order, fmt),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'},
    )
