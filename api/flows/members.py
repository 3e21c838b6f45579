"""The member directory: roles and status from the chain, encryption keys served only while
the chain holds their hash; a member publishes its own key with a proof it holds it."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import Request, Response

from api import _paging, _store, errors
from api.auth import Member, MemberStatus
from api.models import MemberKeyPublish, MemberPublic
from api.services import Services
from ledger.abi import ledger_abi
from ledger.address import to_checksum_address
from ledger.calls import LedgerCalls
from ledger.keybinding import KeyBinding, KeyBindingError
from ledger.models import SignedKeyBinding
from vault.keyproof import key_proof_valid

_CALLS = LedgerCalls(ledger_abi())


async def directory(
    services: Services,
    request: Request,
    response: Response,
    *,
    limit: int,
    cursor: str | None,
) -> list[MemberPublic]:
    rows = await _paging.fetch(
        request,
        response,
        _store.MEMBER_KEYS,
        cursor,
        limit,
        lambda after, n: _store.list_member_keys(services.engine, after=after, limit=n),
    )
    out = []
    for row in rows:
        m = await services.chain.member(to_checksum_address(row["address"]))
        if m.status != MemberStatus.NONE:
            out.append(_public(m, row))
    return out


async def member(services: Services, address: str) -> MemberPublic:
    m = await services.chain.member(to_checksum_address(address))
    if m.status == MemberStatus.NONE:
        raise errors.NotFoundError(f"{address} is not a member")
    row = await to_thread.run_sync(_store.get_member_key, services.engine, address)
    return _public(m, row)


async def publish_key(services: Services, member: Member, body: MemberKeyPublish) -> MemberPublic:
    public_key = services.vault.decode_b64(body.public_key, "public_key")
    proof = services.vault.decode_b64(body.key_proof, "key_proof")
    digest = services.vault.key_digest(public_key)
    d = services.deployment
    # A proof that does not verify is refused before anything is relayed.
    if not key_proof_valid(
        public_key, proof, chain_id=d.chain_id, ledger=d.ledger_address, account=member.address
    ):
        raise errors.InvalidVaultDataError(
            "the key proof does not show that this member holds this key on this ledger"
        )
    if body.binding is not None:
        signed = SignedKeyBinding(
            member.address,
            digest,
            proof,
            body.binding.key_version,
            body.binding.deadline,
            bytes.fromhex(body.binding.signature.removeprefix("0x")),
        )
        await services.relay_custodian(
            key=f"key:{member.address.lower()}:{signed.key_version}",
            kind="bind_key",
            payload={"address": member.address, "key_version": signed.key_version},
            data=_CALLS.bind_encryption_key_by_sig(signed).data,
            on_confirmed=lambda _t, _b: None,
        )
    fresh = await services.chain.member(member.address)
    # The one key check (ledger.keybinding): the member's own signed binding + a valid proof.
    try:
        binding = KeyBinding.from_member(
            fresh, chain_id=d.chain_id, ledger=d.ledger_address, account=member.address
        )
        binding.verify(public_key, proof, key_proof_valid)
    except KeyBindingError as exc:
        if exc.reason == "proof_invalid":
            raise errors.InvalidVaultDataError(str(exc)) from None
        raise errors.KeyNotCurrentError(str(exc)) from None
    await to_thread.run_sync(
        _store.put_member_key,
        services.engine,
        {
            "address": member.address.lower(),
            "key_version": fresh.key_version,
            "public_key": body.public_key,
            "key_hash": "0x" + digest.hex(),
            "key_proof": body.key_proof,
            "updated_block": fresh.block,
        },
    )
    return _public(
        fresh, await to_thread.run_sync(_store.get_member_key, services.engine, member.address)
    )


def _public(m: Member, key_row: dict[str, Any] | None) -> MemberPublic:
    key = proof = None
    # Serve a key only while its hash is the one the chain holds for this member.
    if key_row is not None and key_row["key_hash"] == "0x" + m.enc_key_hash.hex():
        key = key_row["public_key"]
        proof = key_row.get("key_proof") or None
    return MemberPublic(
        address=m.address,
        roles=m.role_names(),
        kind=m.kind.name.lower(),
        status=m.status.name.lower(),
        key_version=m.key_version,
        enc_key_hash="0x" + m.enc_key_hash.hex(),
        encryption_key=key,
        key_proof=proof,
        block=m.block,
    )


async def _member_public(services: Services, address: str) -> MemberPublic:
    m = await services.chain.member(to_checksum_address(address))
    if m.status == MemberStatus.NONE:
        raise errors.NotFoundError(f"{address} is not a member")
    row = await to_thread.run_sync(_store.get_member_key, services.engine, address)
    return _public(m, row)
