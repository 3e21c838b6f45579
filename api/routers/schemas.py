"""Data schemas: issuers register the ordered field list of a data type."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from eth_abi.abi import encode
from eth_hash.auto import keccak
from fastapi import APIRouter, Path, Request, Response, status

from api import _paging, _store, errors
from api.deps import CurrentMember, Issuer, ServicesDep
from api.flows._shared import ledger_call
from api.models import SchemaCreate, SchemaPublic
from ledger.abi import ledger_abi

router = APIRouter(prefix="/schemas", tags=["schemas"])

SchemaId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]


def fields_hash(fields: list[str]) -> bytes:
    """The on-chain ``fieldsHash``: keccak256(abi.encode(string[] fields)), order included."""
    return keccak(encode(["string[]"], [fields]))


def _public(row: dict[str, object]) -> SchemaPublic:
    return SchemaPublic.model_validate(row)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SchemaPublic,
    summary="Register a schema's field list (relaying the issuer's registerSchema transaction)",
    responses=errors.problem_responses(
        errors.RoleRequiredError,
        errors.InvalidRequestError,
        errors.NotIssuerError,
        errors.ContractRejectedError,
        errors.ConflictError,
    ),
)
async def register_schema(
    body: SchemaCreate, member: Issuer, services: ServicesDep
) -> SchemaPublic:
    if len(set(body.fields)) != len(body.fields):
        raise errors.InvalidRequestError("field names must be unique")
    digest = fields_hash(body.fields)
    sid = bytes.fromhex(body.schema_id[2:])
    row = {
        "schema_id": body.schema_id.lower(),
        "issuer": member.address.lower(),
        "name": body.name,
        "fields": body.fields,
        "fields_hash": "0x" + digest.hex(),
    }
    if body.raw_transaction is not None:
        tx, args = ledger_call(
            services, member, body.raw_transaction, ledger_abi().fn("registerSchema")
        )
        if args != (sid, len(body.fields), digest):
            raise errors.InvalidRequestError(
                "registerSchema arguments do not match schema_id, the field count and fieldsHash"
            )

        def store(tx_hash: str, block: int) -> None:
            _store.put_schema(services.engine, row | {"tx_hash": tx_hash, "block": block})

        await services.relay_member_tx(
            key=f"schema:{row['schema_id']}",
            kind="schema",
            payload={"row": row},
            tx=tx,
            on_confirmed=store,
        )
    else:
        on_chain = await services.reads.schema(sid)
        if not on_chain.exists:
            raise errors.InvalidRequestError(
                "schema not registered on chain: send raw_transaction or register it first"
            )
        if on_chain.issuer.lower() != member.address.lower():
            raise errors.NotIssuerError(f"schema {body.schema_id} belongs to {on_chain.issuer}")
        if on_chain.field_count != len(body.fields) or on_chain.fields_hash != digest:
            raise errors.InvalidRequestError("fields do not match the schema's hash on chain")
        block = await services.chain.clock.latest()
        await to_thread.run_sync(
            _store.put_schema, services.engine, row | {"tx_hash": None, "block": block}
        )
    stored = await to_thread.run_sync(_store.get_schema, services.engine, body.schema_id)
    assert stored is not None
    return _public(stored)


@router.get(
    "",
    response_model=list[SchemaPublic],
    summary="Registered schemas (any member), one page at a time",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(errors.InvalidCursorError),
    },
)
async def list_schemas(
    request: Request,
    response: Response,
    member: CurrentMember,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[SchemaPublic]:
    after = _paging.decode_cursor("schemas", cursor, (int, str))
    rows = await to_thread.run_sync(
        lambda: _store.list_schemas(services.engine, after=after, limit=limit + 1)
    )
    rows = _paging.page(
        request, response, "schemas", rows, limit, lambda r: (r["block"], r["schema_id"])
    )
    return [_public(r) for r in rows]


@router.get(
    "/{schema_id}",
    response_model=SchemaPublic,
    summary="One schema's field list (any member)",
    responses=errors.problem_responses(errors.NotFoundError),
)
async def get_schema(
    schema_id: SchemaId, member: CurrentMember, services: ServicesDep
) -> SchemaPublic:
    row = await to_thread.run_sync(_store.get_schema, services.engine, schema_id)
    if row is None:
        raise errors.NotFoundError(f"no schema {schema_id}")
    return _public(row)
