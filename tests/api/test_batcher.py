"""Batched access records: one transaction for many pulls, each waiter gets its own outcome.

Also the relayer under them: a withheld batch is replaced, gas comes from a cached estimate.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from _api_seed import seed_asset
from _api_world import World

from api import db as api_db
from api import errors
from api.batcher import AccessBatcher, AccessRequest
from api.chain import ChainGateway
from api.journal import TxJournal
from api.relay import Relayer
from ledger.rpc import RpcClient
from ledger.trust import read_deployment, verify_access_record


def direct_grant(world: World, asset_id: bytes, *, max_uses: int = 0) -> bytes:
    nonce = secrets.randbits(64)
    terms = (asset_id, world.bank.address, 1, 0b11, 0, world.now() + 86_400, max_uses, 0)
    world.transact(world.citizen, "grant", terms, nonce)
    return bytes(world.ledger.functions.grantIdOf(world.citizen.address, nonce).call())


def custodian_relayer(
    world: World, session: aiohttp.ClientSession, timeout: float, **extra: Any
) -> Relayer:
    """The service's relayer for ``world``'s custodian, with no confirmations to wait for."""
    chain = ChainGateway(world.rpc_url, world.ledger_address, session)
    return Relayer(
        chain,
        chain_id=world.chain_id,
        confirmations=0,
        timeout=timeout,
        custodian_key=world.custodian.key_bytes,  # type: ignore[attr-defined]
        **extra,
    )


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
        relayer = custodian_relayer(world, session, 30)
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
    # An unlimited grant keeps no counter on chain (world.uses checks it stays 0): the use
    # numbers are its events' positions.
    assert world.uses(open_grant) == 20
    assert world.uses(once) == 1
    tx_hashes = {o.tx_hash for o in recorded}  # type: ignore[union-attr]
    assert len(tx_hashes) == batcher.batches


async def test_under_load_a_batch_waits_for_announced_pulls_and_a_lone_pull_for_nobody(
    world: World, sqlite_url: str
) -> None:
    """A pull announced (``expecting``) but still in its pre-checks holds the batch being
    gathered (up to the busy window): both records share one transaction. A lone pull is not
    held for the busy window (a minute here)."""
    asset = seed_asset(world, sqlite_url)
    grant = direct_grant(world, asset.asset_id)
    async with aiohttp.ClientSession() as session:
        relayer = custodian_relayer(world, session, 30)
        lone_batcher = AccessBatcher(relayer, window_ms=0, max_batch=64, busy_window_ms=60_000)
        lone_batcher.start()
        try:
            with lone_batcher.expecting() as record:
                lone = await asyncio.wait_for(record(request(world, grant)), 30)
        finally:
            await lone_batcher.stop()
        assert lone.batch_size == 1
        batcher = AccessBatcher(relayer, window_ms=0, max_batch=64, busy_window_ms=60_000)
        batcher.start()
        try:
            with batcher.expecting() as record_a, batcher.expecting() as record_b:
                first = asyncio.ensure_future(record_a(request(world, grant)))
                await asyncio.sleep(0.5)  # b is still "in its pre-checks"
                second = await asyncio.wait_for(record_b(request(world, grant)), 30)
                a = await asyncio.wait_for(first, 30)
        finally:
            await batcher.stop()
    assert a.tx_hash == second.tx_hash and a.batch_size == second.batch_size == 2
    assert {a.use, second.use} == {2, 3}


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


def _rpc(world: World, method: str, *params: Any) -> Any:
    return world.w3.provider.make_request(method, list(params)).get("result")  # type: ignore[arg-type]


async def _until(check: Callable[[], Any]) -> Any:
    """Poll ``check`` until it answers something truthy (a guard against hanging, not a speed
    check: the bound is far above anything these steps take)."""
    for _ in range(3000):
        if found := check():
            return found
        await asyncio.sleep(0.02)
    raise AssertionError("the awaited state never came")


def _custodian_rows(engine: sa.engine.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(api_db.tx_journal)).mappings()]


async def test_a_withheld_batch_is_replaced_and_every_pull_behind_it_gets_its_record(
    world: World, db_url: str
) -> None:
    """The node loses the first access batch (anvil drops it from the pool) and a second
    batch queues behind its nonce: the relayer replaces the stuck one, both get mined, every
    waiter gets a record the client's own check finds on chain, and the journal keeps
    exactly the mined versions."""
    asset = seed_asset(world, db_url)
    grant = direct_grant(world, asset.asset_id)
    custodian = world.custodian  # type: ignore[attr-defined]
    engine = api_db.make_engine(db_url)
    journal = TxJournal(engine)
    async with aiohttp.ClientSession() as session:
        relayer = custodian_relayer(
            world, session, 60, journal=journal, replace_after=0.3, max_replacements=3
        )
        batcher = AccessBatcher(relayer, window_ms=50, max_batch=64)
        batcher.start()
        _rpc(world, "evm_setAutomine", False)
        try:
            first = [request(world, grant) for _ in range(4)]
            waves = [asyncio.ensure_future(batcher.record(r)) for r in first]
            rows = await _until(lambda: _custodian_rows(engine))
            withheld = rows[0]["tx_hash"]
            await _until(lambda: _rpc(world, "eth_getTransactionByHash", withheld))
            _rpc(world, "anvil_dropTransaction", withheld)
            behind = [request(world, grant) for _ in range(4)]
            waves += [asyncio.ensure_future(batcher.record(r)) for r in behind]
            # The second batch (next nonce) is journaled, the first one replaced.
            await _until(lambda: len({r["nonce"] for r in _custodian_rows(engine)}) == 2)
            await _until(lambda: relayer.replaced >= 1)
            _rpc(world, "evm_setAutomine", True)
            _rpc(world, "evm_mine")
            records = await asyncio.gather(*waves)
        finally:
            _rpc(world, "evm_setAutomine", True)
            await batcher.stop()
    assert relayer.replaced >= 1
    assert _rpc(world, "eth_getTransactionReceipt", withheld) is None
    assert withheld not in {r.tx_hash for r in records}
    assert len({r.tx_hash for r in records[:4]}) == 1
    with RpcClient(world.rpc_url) as rpc:
        pin = read_deployment(rpc, world.ledger_address)
        for req, record in zip(first + behind, records, strict=True):
            checked = verify_access_record(
                rpc,
                pin,
                tx_hash=record.tx_hash,
                grant_id=req.grant_id,
                grantee=req.grantee,
                nonce=req.nonce,
                fields_mask=req.fields_mask,
                claimed_use=record.use,
            )
            assert checked.block_number == record.block_number
    assert world.uses(grant) == 8
    # The journal holds one mined version per nonce: the versions the waiters were given.
    rows = _custodian_rows(engine)
    assert all(r["block"] is not None and r["ok"] for r in rows)
    assert {r["tx_hash"] for r in rows} == {r.tx_hash for r in records}
    assert len({r["nonce"] for r in rows}) == len(rows) == 2
    with engine.connect() as conn:
        stored = conn.execute(sa.select(api_db.nonce_locks.c.next_nonce)).scalar_one()
    assert stored == world.w3.eth.get_transaction_count(custodian.address)
    engine.dispose()


def _gas_limit(world: World, tx_hash: str) -> int:
    return int(world.w3.eth.get_transaction(tx_hash)["gas"])  # type: ignore[arg-type]


async def test_a_batch_takes_the_estimate_cached_for_its_size_and_survives_a_wrong_one(
    world: World, sqlite_url: str
) -> None:
    asset = seed_asset(world, sqlite_url)
    grant = direct_grant(world, asset.asset_id)
    custodian = world.custodian  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as session:
        relayer = custodian_relayer(world, session, 30)
        assert relayer.tx is not None
        estimates = relayer.tx.shape_estimates
        shape = ("recordAccessBatch", 1)
        batcher = AccessBatcher(relayer, window_ms=0, max_batch=1)
        batcher.start()
        try:
            first = await batcher.record(request(world, grant))
            cached = estimates[shape]
            # The next batch of one reuses it: a generous entry shows in the limit it is sent with.
            estimates[shape] = 400_000
            second = await batcher.record(request(world, grant))
            assert _gas_limit(world, second.tx_hash) == int(400_000 * 1.5) + 10_000
            # A wrong entry: the batch runs out of gas on chain, is estimated again and resent.
            estimates[shape] = 18_000
            sent_before = world.w3.eth.get_transaction_count(custodian.address)
            third = await batcher.record(request(world, grant))
        finally:
            await batcher.stop()
    assert first.use == 1 and second.use == 2 and third.use == 3
    assert world.w3.eth.get_transaction_count(custodian.address) == sent_before + 2
    assert estimates[shape] > 18_000
    assert _gas_limit(world, third.tx_hash) == int(estimates[shape] * 1.5) + 10_000
    assert _gas_limit(world, first.tx_hash) == int(cached * 1.5) + 10_000
    assert world.uses(grant) == 3
