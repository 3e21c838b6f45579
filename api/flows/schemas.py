"""Schemas: an issuer registers the ordered field list of a data type, relaying its own
``registerSchema`` transaction, or recording one already on chain; only a list whose hash the
chain holds is stored."""

from __future__ import annotations

from anyio import to_thread
from eth_abi.abi import encode
from eth_hash.auto import keccak
from fastapi import Request, Response

from api import _paging, _store, errors
from api.auth import Member
from api.flows._shared import ledger_call
from api.models import SchemaCreate, SchemaPublic
from api.services import Services
from ledger.abi import ledger_abi


async def register(services: Services, member: Member, body: SchemaCreate) -> SchemaPublic:
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


async def list_schemas(
    services: Services, request: Request, response: Response, *, limit: int, cursor: str | None
) -> list[SchemaPublic]:
    rows = await _paging.fetch(
        request,
        response,
        _store.SCHEMAS,
        cursor,
        limit,
        lambda after, n: _store.list_schemas(services.engine, after=after, limit=n),
    )
    return [_public(r) for r in rows]


async def get_schema(services: Services, schema_id: str) -> SchemaPublic:
    row = await to_thread.run_sync(_store.get_schema, services.engine, schema_id)
    if row is None:
        raise errors.NotFoundError(f"no schema {schema_id}")
    return _public(row)


def fields_hash(fields: list[str]) -> bytes:
    """The on-chain ``fieldsHash``: keccak256(abi.encode(string[] fields)), order included."""
    return keccak(encode(["string[]"], [fields]))


def _public(row: dict[str, object]) -> SchemaPublic:
    return SchemaPublic.model_validate(row)
