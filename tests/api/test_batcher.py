"""Batched access records: one transaction for many pulls, each waiter gets its own outcome."""

from __future__ import annotations

import asyncio
import secrets

import aiohttp
import pytest
from _api_seed import seed_asset
from _api_world import World

from api import errors
from api.batcher import AccessBatcher, AccessRequest
from api.chain import ChainGateway
from api.relay import Relayer


def direct_grant(world: World, asset_id: bytes, *, max_uses: int = 0) -> bytes:
    nonce = secrets.randbits(64)
    terms = (asset_id, world.bank.address, 1, 0b11, 0, world.now() + 86_400, max_uses)
    world.transact(world.citizen, "grant", terms, nonce)
    return bytes(world.ledger.functions.grantIdOf(world.citizen.address, nonce).call())


def request(world: World, grant_id: bytes, mask: int = 1) -> AccessRequest:
    signed = world.sign_access(world.bank, "0x" + grant_id.hex(), mask)
    return AccessRequest(
        grant_id=grant_id,
        fields_mask=mask,
        nonce=int(signed["nonce"]),
        deadline=int(signed["deadline"]),
        signature=bytes.fromhex(signed["signature"][2:]),
        grantee=world.bank.address,
    )


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/seed.db"


async def test_concurrent_records_share_transactions(world: World, sqlite_url: str) -> None:
    asset = seed_asset(world, sqlite_url)
    open_grant = direct_grant(world, asset.asset_id)
    once = direct_grant(world, asset.asset_id, max_uses=1)
    revoked = direct_grant(world, asset.asset_id)
    world.transact(world.citizen, "revoke", revoked)
    async with aiohttp.ClientSession() as session:
        chain = ChainGateway(world.rpc_url, world.ledger_address, session)
        relayer = Relayer(
            chain,
            chain_id=world.chain_id,
            confirmations=0,
            timeout=30,
            custodian_key=world.custodian.key_bytes,  # type: ignore[attr-defined]
        )
        batcher = AccessBatcher(relayer, window_ms=200, max_batch=64)
        batcher.start()
        try:
            requests = [request(world, open_grant) for _ in range(20)]
            requests += [request(world, once), request(world, once), request(world, revoked)]
            outcomes = await asyncio.gather(
                *(batcher.record(r) for r in requests), return_exceptions=True
            )
        finally:
            await batcher.stop()
    recorded = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(recorded) == 21, [
        (i, getattr(o, "use", o)) for i, o in enumerate(outcomes) if i >= 20
    ]
    assert sorted(type(e).__name__ for e in refused) == ["GrantRevokedError", "UsesExhaustedError"]
    assert isinstance(outcomes[-1], errors.GrantRevokedError)
    assert batcher.batches < len(requests)
    uses = sorted(o.use for o in recorded[:20])  # type: ignore[union-attr]
    assert uses == list(range(1, 21))
    assert world.ledger.functions.getGrant(open_grant).call()[7] == 20
    tx_hashes = {o.tx_hash for o in recorded}  # type: ignore[union-attr]
    assert len(tx_hashes) == batcher.batches


async def test_chain_down_means_no_record(world: World) -> None:
    async with aiohttp.ClientSession() as session:
        chain = ChainGateway("http://127.0.0.1:9", world.ledger_address, session)
        relayer = Relayer(
            chain,
            chain_id=world.chain_id,
            confirmations=0,
            timeout=5,
            custodian_key=world.custodian.key_bytes,  # type: ignore[attr-defined]
        )
        batcher = AccessBatcher(relayer, window_ms=1, max_batch=8)
        batcher.start()
        try:
            with pytest.raises(errors.ChainUnavailableError):
                await batcher.record(request(world, b"\x01" * 32))
        finally:
            await batcher.stop()
