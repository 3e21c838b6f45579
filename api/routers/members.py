"""The member directory (roles from the chain, encryption keys checked against the chain)."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Path, Request, Response

from api import _paging, _store, errors
from api.auth import Member, MemberStatus
from api.deps import CurrentMember, ServicesDep
from api.models import MemberKeyPublish, MemberPublic
from api.routers._shared import ledger_call
from api.services import Services
from ledger.abi import ledger_abi

router = APIRouter(prefix="/members", tags=["members"])

AddressPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]


def _public(m: Member, key_row: dict[str, Any] | None) -> MemberPublic:
    key = None
    # Serve a key only while its hash is the one the chain holds for this member.
    if key_row is not None and key_row["key_hash"] == "0x" + m.enc_key_hash.hex():
        key = key_row["public_key"]
    return MemberPublic(
        address=m.address,
        roles=m.role_names(),
        kind=m.kind.name.lower(),
        status=m.status.name.lower(),
        key_version=m.key_version,
        enc_key_hash="0x" + m.enc_key_hash.hex(),
        encryption_key=key,
        block=m.block,
    )


async def _member_public(services: Services, address: str) -> MemberPublic:
    m = await services.chain.member(to_checksum_address(address))
    if m.status == MemberStatus.NONE:
        raise errors.NotFoundError(f"{address} is not a member")
    row = await to_thread.run_sync(_store.get_member_key, services.engine, address)
    return _public(m, row)


@router.get(
    "",
    response_model=list[MemberPublic],
    summary="Members who published a key (any member), by address, one page at a time",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(errors.InvalidCursorError),
    },
)
async def directory(
    request: Request,
    response: Response,
    member: CurrentMember,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[MemberPublic]:
    after = _paging.decode_cursor("members", cursor, (str,))
    rows = await to_thread.run_sync(
        lambda: _store.list_member_keys(services.engine, after=after, limit=limit + 1)
    )
    rows = _paging.page(request, response, "members", rows, limit, lambda r: (r["address"],))
    out = []
    for row in rows:
        m = await services.chain.member(to_checksum_address(row["address"]))
        if m.status != MemberStatus.NONE:
            out.append(_public(m, row))
    return out


@router.get("/me", response_model=MemberPublic, summary="The caller as the chain has it")
async def me(member: CurrentMember, services: ServicesDep) -> MemberPublic:
    return await _member_public(services, member.address)


@router.get(
    "/{address}",
    response_model=MemberPublic,
    summary="One member with its current encryption key (any member)",
    responses=errors.problem_responses(errors.NotFoundError),
)
async def get_member(
    address: AddressPath, member: CurrentMember, services: ServicesDep
) -> MemberPublic:
    return await _member_public(services, address)


@router.put(
    "/me/key",
    response_model=MemberPublic,
    summary="Publish the caller's encryption key (optionally relaying its rotateEncryptionKey tx)",
    responses=errors.problem_responses(
        errors.InvalidRequestError,
        errors.InvalidVaultDataError,
        errors.KeyNotCurrentError,
        errors.ContractRejectedError,
    ),
)
async def publish_key(
    body: MemberKeyPublish, member: CurrentMember, services: ServicesDep
) -> MemberPublic:
    public_key = services.vault.decode_b64(body.public_key, "public_key")
    digest = services.vault.key_digest(public_key)
    if body.raw_transaction is not None:
        tx, (key_hash,) = ledger_call(
            services, member, body.raw_transaction, ledger_abi().fn("rotateEncryptionKey")
        )
        if key_hash != digest:
            raise errors.InvalidRequestError(
                "rotateEncryptionKey is not for this public key's hash"
            )
        await services.relay_member_tx(
            key=f"key:{member.address.lower()}:{digest.hex()}",
            kind="rotate_key",
            payload={"address": member.address},
            tx=tx,
            on_confirmed=lambda _t, _b: None,
        )
    fresh = await services.chain.member(member.address)
    if fresh.enc_key_hash != digest:
        raise errors.KeyNotCurrentError(
            f"the chain holds key hash 0x{fresh.enc_key_hash.hex()} (version {fresh.key_version}) "
            f"for {member.address}, not 0x{digest.hex()}"
        )
    await to_thread.run_sync(
        _store.put_member_key,
        services.engine,
        {
            "address": member.address.lower(),
            "key_version": fresh.key_version,
            "public_key": body.public_key,
            "key_hash": "0x" + digest.hex(),
            "updated_block": fresh.block,
        },
    )
    return _public(
        fresh, await to_thread.run_sync(_store.get_member_key, services.engine, member.address)
    )
