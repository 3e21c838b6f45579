"""Sealed accesses: a department's signed ``seal``, a regulator's ``extend``, anyone's checked
``unseal``, relayed to the ledger's companion (``ledger.sealed``); the listings read the
companion itself, so what the service answers is what the chain holds at its head.

Who sees what: a subject its own records (the notice that a sealed access exists is the
point); a regulator every record and the overdue ones; the sealing department its own
record. The opening is served only once revealed on chain, from the companion's log.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request, Response

from api import _paging, errors
from api._rawtx import RawTx, decode_raw_tx, expect_call
from api.auth import Member, Role
from api.client import NEXT_CURSOR_HEADER
from api.models import SealAction, SealOpeningPublic, SealPublic
from api.services import Services
from ledger.calls import Read
from ledger.errors import LedgerError
from ledger.sealed import (
    READ_BATCH,
    Opening,
    SealRecord,
    SealStatus,
    openings_filter,
    openings_from_logs,
    read_seal_call,
    seal_count_call,
    seal_count_of_call,
    seal_id_of,
    seal_of_at_call,
    sealed_abi,
    sealed_address,
)

T = TypeVar("T")
#: Records the overdue scan reads per request at most (it then hands out a cursor).
SCAN_MAX = 2_000


def _companion(services: Services) -> str:
    return sealed_address(services.deployment.ledger_address)


async def _read(services: Services, r: Read[T]) -> T:
    raw = await services.chain.rpc(
        "eth_call", [{"to": _companion(services), "data": "0x" + r.data.hex()}, "latest"]
    )
    return r.decode(bytes.fromhex(str(raw).removeprefix("0x")))


async def _records(services: Services, ids: range | list[int]) -> list[SealRecord]:
    # Reads issued together share one JSON-RPC batch (the chain gateway coalesces them).
    return list(await asyncio.gather(*(_read(services, read_seal_call(i)) for i in ids)))


async def _chain_now(services: Services) -> int:
    block = await services.chain.rpc("eth_getBlockByNumber", ["latest", False])
    return int(block["timestamp"], 16)


async def _openings(services: Services, records: list[SealRecord]) -> dict[int, Opening]:
    ids = [r.seal_id for r in records if r.status == SealStatus.UNSEALED]
    if not ids:
        return {}
    logs = await services.chain.rpc("eth_getLogs", [openings_filter(_ledger(services), ids)])
    return openings_from_logs(_ledger(services), logs or [])


def _ledger(services: Services) -> str:
    return services.deployment.ledger_address


async def _public(services: Services, records: list[SealRecord]) -> list[SealPublic]:
    now, openings = await asyncio.gather(_chain_now(services), _openings(services, records))
    out = []
    for r in records:
        opening = openings.get(r.seal_id)
        out.append(
            SealPublic(
                **r.to_json(),
                overdue=r.overdue(now),
                opening=None if opening is None else SealOpeningPublic(**opening.to_json()),
            )
        )
    return out


def _call(services: Services, member: Member, raw: str, fn: str) -> tuple[RawTx, tuple[Any, ...]]:
    """The member's own signed transaction, exactly ``fn`` on our companion, and its args."""
    spec = sealed_abi().fn(fn)
    tx = decode_raw_tx(raw)
    expect_call(
        tx,
        signer=member.address,
        ledger=_companion(services),
        chain_id=services.deployment.chain_id,
        selector=spec.selector,
        what=fn,
    )
    try:
        return tx, spec.decode_input(tx.data)
    except LedgerError as exc:
        raise errors.InvalidRequestError(f"raw_transaction: {exc}") from exc


async def _existing(services: Services, seal_id: int) -> SealRecord:
    record = await _read(services, read_seal_call(seal_id))
    if record.status == SealStatus.NONE:
        raise errors.SealNotFoundError(f"no sealed access record {seal_id}")
    return record


async def _relay(services: Services, tx: RawTx, kind: str, seal_key: str) -> list[dict[str, Any]]:
    receipt = await services.relay_member_tx(
        key=f"{kind}:{seal_key}:{tx.tx_hash}",
        kind=kind,
        payload={"seal": seal_key},
        tx=tx,
        on_confirmed=lambda _t, _b: None,
    )
    return receipt.logs


async def seal(services: Services, member: Member, body: SealAction) -> SealPublic:
    """A department records a sealed access; the contract checks department, asset and date."""
    tx, (asset_id, _commitment, _unseal_at) = _call(services, member, body.raw_transaction, "seal")
    logs = await _relay(services, tx, "seal", "0x" + bytes(asset_id).hex())
    seal_id = seal_id_of(_ledger(services), logs)
    if seal_id is None:  # a receipt without our log: the node or the chain is not ours
        raise errors.RelayFailedError(f"transaction {tx.tx_hash} recorded no sealed access")
    (public,) = await _public(services, [await _existing(services, seal_id)])
    return public


async def extend(services: Services, member: Member, seal_id: int, body: SealAction) -> SealPublic:
    """A regulator's later unseal date (the contract: second authority, reason, in time)."""
    return await _act_on(services, member, seal_id, body, "extend", "seal_extend")


async def unseal(services: Services, member: Member, seal_id: int, body: SealAction) -> SealPublic:
    """The opening, checked by the contract against the commitment (and the date)."""
    return await _act_on(services, member, seal_id, body, "unseal", "seal_reveal")


async def _act_on(
    services: Services, member: Member, seal_id: int, body: SealAction, fn: str, kind: str
) -> SealPublic:
    await _existing(services, seal_id)
    tx, args = _call(services, member, body.raw_transaction, fn)
    # The path names the record: a transaction about another one is not relayed under it.
    if int(args[0]) != seal_id:
        raise errors.InvalidRequestError(f"{fn} names seal {args[0]}, not {seal_id}")
    await _relay(services, tx, kind, str(seal_id))
    (public,) = await _public(services, [await _existing(services, seal_id)])
    return public


async def get_seal(services: Services, member: Member, seal_id: int) -> SealPublic:
    record = await _existing(services, seal_id)
    who = member.address.lower()
    if not member.has(Role.REGULATOR) and who not in (
        record.subject.lower(),
        record.department.lower(),
    ):
        raise errors.SealNotFoundError(f"no sealed access record {seal_id} for {member.address}")
    (public,) = await _public(services, [record])
    return public


async def list_seals(
    services: Services,
    member: Member,
    request: Request,
    response: Response,
    *,
    subject: str | None,
    limit: int,
    cursor: str | None,
) -> list[SealPublic]:
    """A subject's own records in order of sealing; a regulator's: everyone's (or a subject's)."""
    if member.has(Role.REGULATOR):
        scope = subject
    elif member.has(Role.SUBJECT):
        if subject is not None and subject.lower() != member.address.lower():
            raise errors.RoleRequiredError("a subject lists only its own sealed access records")
        scope = member.address
    else:
        raise errors.RoleRequiredError("only subjects and regulators list sealed access records")
    key = _paging.decode_cursor("sealed", cursor, [int])
    start = 0 if key is None else int(key[0])
    if scope is None:
        total = await _read(services, seal_count_call())
        ids = list(range(start + 1, min(total, start + limit + 1) + 1))
    else:
        total = await _read(services, seal_count_of_call(scope))
        stop = min(total, start + limit + 1)
        ids = list(
            await asyncio.gather(
                *(_read(services, seal_of_at_call(scope, i)) for i in range(start, stop))
            )
        )
    records = await _records(services, ids)
    # The cursor is the position in the list: the subject's list and the id range are append-only.
    positions = {r.seal_id: start + n + 1 for n, r in enumerate(records)}
    kept = _paging.page(
        request, response, "sealed", records, limit, lambda r: (positions[r.seal_id],)
    )
    return await _public(services, kept)


async def list_overdue(
    services: Services,
    member: Member,
    request: Request,
    response: Response,
    *,
    limit: int,
    cursor: str | None,
) -> list[SealPublic]:
    """Seals still sealed at or after their unseal date, at the chain's head; bounded scan."""
    key = _paging.decode_cursor("sealed_overdue", cursor, [int])
    first = 1 if key is None else int(key[0]) + 1
    total = await _read(services, seal_count_call())
    now = await _chain_now(services)
    found: list[SealRecord] = []
    next_id = first
    while next_id <= total and len(found) <= limit and next_id - first < SCAN_MAX:
        chunk = range(next_id, min(total, next_id + READ_BATCH - 1) + 1)
        found.extend(r for r in await _records(services, chunk) if r.overdue(now))
        next_id = chunk.stop
    kept = _paging.page(request, response, "sealed_overdue", found, limit, lambda r: (r.seal_id,))
    if len(found) <= limit and next_id <= total:
        # The scan bound came first: the next page continues after the last record read.
        _continue_at(request, response, next_id - 1)
    return await _public(services, kept)


def _continue_at(request: Request, response: Response, last_read: int) -> None:
    cursor = _paging.encode_cursor("sealed_overdue", (last_read,))
    response.headers[NEXT_CURSOR_HEADER] = cursor
    query = {k: v for k, v in request.query_params.items() if k != "cursor"} | {"cursor": cursor}
    response.headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
