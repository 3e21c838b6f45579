"""Steps several flows repeat: checking a relayed ledger call, looking up a held asset or a
grant, acting for an owner, a listing's scope, an asset's field names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from anyio import to_thread

from api import _store, errors
from api._rawtx import RawTx, decode_raw_tx, expect_call
from api.auth import Member, MemberStatus, Role
from api.chain import GrantView
from api.models import GrantTerms
from api.services import Services
from ledger.abi import FunctionSpec
from ledger.errors import LedgerError


def b32(hex_str: str) -> bytes:
    """A validated ``0x`` + 64 hex path/body value as bytes."""
    return bytes.fromhex(hex_str[2:])


def hex32(value: bytes) -> str:
    return "0x" + value.hex()


def ledger_call(
    services: Services, member: Member, raw_transaction: str, fn: FunctionSpec
) -> tuple[RawTx, tuple[Any, ...]]:
    """Decode a member's signed transaction, insist it is ``fn`` on our ledger, return its args.

    Relaying anything else (another contract, chain, signer or function) would let a caller
    spend the service's trust on a transaction it did not describe.
    """
    tx = decode_raw_tx(raw_transaction)
    expect_call(
        tx,
        signer=member.address,
        ledger=services.deployment.ledger_address,
        chain_id=services.deployment.chain_id,
        selector=fn.selector,
        what=fn.name,
    )
    try:
        return tx, fn.decode_input(tx.data)
    except LedgerError as exc:
        raise errors.InvalidRequestError(f"raw_transaction: {exc}") from exc


def listing_scope(
    member: Member, scopes: Sequence[tuple[Role, str | None]], refusal: str
) -> dict[str, str]:
    """Store filter for a listing: the first of ``scopes`` whose role the member holds.

    ``(Role.SUBJECT, "owner")`` means a subject lists the rows it owns; a ``None`` column
    means the role sees every row. No matching role: :class:`RoleRequiredError`.
    """
    for role, column in scopes:
        if member.has(role):
            return {} if column is None else {column: member.address}
    raise errors.RoleRequiredError(refusal)


async def held_asset(services: Services, asset_id: str) -> dict[str, Any]:
    """This service's row of an asset; ``asset_not_found`` when its vault does not hold it."""
    row = await to_thread.run_sync(_store.get_asset, services.engine, asset_id)
    if row is None:
        raise errors.AssetNotFoundError(f"asset {asset_id} is not held by this vault")
    return row


async def existing_grant(services: Services, grant_id: str) -> GrantView:
    """A grant as the chain holds it at the request's block; ``grant_not_found`` if none."""
    view = await services.reads.grant(b32(grant_id))
    if not view.exists:
        raise errors.GrantNotFoundError(f"no grant {grant_id}")
    return view


async def may_act_for(services: Services, owner: str, who: str) -> bool:
    """The owner itself, or an agent the owner appointed on chain (read at the latest block)."""
    if owner.lower() == who.lower():
        return True
    # An agent acts only for an active owner: suspending an enterprise stops its agents here,
    # whatever the contract's isAgent answers (issue 12, item 8).
    if (await services.chain.member(owner)).status != MemberStatus.ACTIVE:
        return False
    return await services.reads.is_agent(owner, who)


async def fields_for_asset(
    services: Services, asset_row: dict[str, Any] | None
) -> list[str] | None:
    """The field names of an asset's schema, as this service registered them (None: unknown)."""
    if asset_row is None:
        return None
    schema = await to_thread.run_sync(_store.get_schema, services.engine, asset_row["schema_id"])
    return list(schema["fields"]) if schema else None


def terms_of(view: GrantView) -> GrantTerms:
    """A grant's terms as the chain holds them, in the public shape."""
    return GrantTerms(
        asset_id="0x" + view.grant.asset_id.hex(),
        grantee=view.grant.grantee,
        purpose=view.grant.purpose,
        fields_mask=view.grant.fields_mask,
        not_before=view.grant.not_before,
        expiry=view.grant.expiry,
        max_uses=view.grant.max_uses,
        retention=view.grant.retention,
    )
