"""Nonces under concurrency, re-sends of dropped transactions, node accounts, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _ledger_world import World
from eth_account import Account

from ledger.abi import ledger_abi
from ledger.client import AsyncLedgerClient
from ledger.errors import (
    ConfigurationError,
    ReceiptTimeoutError,
    RpcNonceError,
    RpcResponseError,
    contract_error,
)
from ledger.models import GrantStatus
from ledger.rpc import AsyncRpcClient, RpcClient
from ledger.tx import (
    AsyncTxManager,
    LocalKeySender,
    NodeAccountSender,
    PendingTx,
    SignedTx,
    TxHooks,
)

ROOT = Path(__file__).resolve().parents[2]


def _client(world: World, key: str, **tx_opts: Any) -> AsyncLedgerClient:
    rpc = AsyncRpcClient(world.url)
    tx = AsyncTxManager(rpc, LocalKeySender.from_key(key), abi=ledger_abi(), **tx_opts)
    return AsyncLedgerClient(rpc, world.manifest.ledger_address, tx=tx)


async def test_many_concurrent_senders_one_key(world: World) -> None:
    client = _client(world, world.subject_key)
    try:
        n = 60
        receipts = await asyncio.gather(
            *(client.send(client.calls.grant(world.terms(), nonce)) for nonce in range(n))
        )
        assert all(r.status == 1 for r in receipts)
        txs = await client.rpc.batch([("eth_getTransactionByHash", [r.tx_hash]) for r in receipts])
        nonces = sorted(int(t["nonce"], 16) for t in txs)
        assert nonces == list(range(nonces[0], nonces[0] + n))
        grant_ids = {r.events_named("ConsentGranted")[0].args["grantId"] for r in receipts}
        assert len(grant_ids) == n
    finally:
        await client.close()


async def test_nonce_resync_after_external_send(world: World) -> None:
    client = _client(world, world.subject_key)
    try:
        await client.send(client.calls.grant(world.terms(), 1))
        # Another tool uses the same key behind the manager's back.
        external = _client(world, world.subject_key)
        await external.send(external.calls.grant(world.terms(), 2))
        await external.close()
        receipt = await client.send(client.calls.grant(world.terms(), 3))
        assert receipt.status == 1
    finally:
        await client.close()


async def test_revert_on_estimate_takes_no_nonce(world: World) -> None:
    client = _client(world, world.subject_key)
    try:
        await client.send(client.calls.grant(world.terms(), 1))
        assert client.tx is not None
        before = await client.tx.nonces.current()
        with pytest.raises(contract_error("ConsentGrantExists")):
            await client.send(client.calls.grant(world.terms(), 1))
        assert await client.tx.nonces.current() == before
    finally:
        await client.close()


async def test_node_unlocked_account_sender(world: World) -> None:
    rpc = AsyncRpcClient(world.url)
    subject = Account.from_key(world.subject_key).address
    tx = AsyncTxManager(rpc, NodeAccountSender(subject), abi=ledger_abi())
    client = AsyncLedgerClient(rpc, world.manifest.ledger_address, tx=tx)
    try:
        receipts = await asyncio.gather(
            *(client.send(client.calls.grant(world.terms(), n)) for n in range(10))
        )
        assert len({r.tx_hash for r in receipts}) == 10
    finally:
        await client.close()


async def test_dropped_transaction_is_resent(world: World) -> None:
    client = _client(world, world.subject_key, resend_after=0.2, poll_interval=0.02)
    rpc = client.rpc
    try:
        await rpc.call("evm_setAutomine", [False])
        pending = await client.submit(client.calls.grant(world.terms(), 77), gas=500_000)
        await rpc.call("anvil_dropTransaction", [pending.tx_hash])
        assert await rpc.call("eth_getTransactionByHash", [pending.tx_hash]) is None

        async def miner() -> None:
            while True:
                await asyncio.sleep(0.1)
                await rpc.call("evm_mine")

        task = asyncio.create_task(miner())
        try:
            assert client.tx is not None
            receipt = await client.tx.wait(pending)
        finally:
            task.cancel()
        assert receipt.status == 1
        assert pending.resends >= 1
        grant = await client.get_grant(receipt.events_named("ConsentGranted")[0].args["grantId"])
        assert grant.status is GrantStatus.ACTIVE
    finally:
        await rpc.call("evm_setAutomine", [True])
        await client.close()


async def test_receipt_timeout(world: World) -> None:
    client = _client(world, world.subject_key, receipt_timeout=0.3, poll_interval=0.02)
    try:
        await client.rpc.call("evm_setAutomine", [False])
        with pytest.raises(ReceiptTimeoutError):
            await client.send(client.calls.grant(world.terms(), 5), gas=500_000)
    finally:
        await client.rpc.call("evm_setAutomine", [True])
        await client.close()


async def test_confirmations_wait_for_depth(world: World) -> None:
    client = _client(world, world.subject_key, confirmations=3, poll_interval=0.02)
    try:

        async def miner() -> None:
            while True:
                await asyncio.sleep(0.05)
                await client.rpc.call("evm_mine")

        task = asyncio.create_task(miner())
        try:
            receipt = await client.send(client.calls.grant(world.terms(), 9))
        finally:
            task.cancel()
        head = int(await client.rpc.call("eth_blockNumber"), 16)
        assert head - receipt.block_number + 1 >= 3
    finally:
        await client.close()


_WORKER = """
import asyncio, sys
from ledger.abi import ledger_abi
from ledger.client import AsyncLedgerClient
from ledger.models import GrantTerms
from ledger.rpc import AsyncRpcClient
from ledger.tx import AsyncTxManager, LocalKeySender

url, ledger, key, asset, grantee, count = sys.argv[1:7]

async def main() -> None:
    rpc = AsyncRpcClient(url)
    tx = AsyncTxManager(rpc, LocalKeySender.from_key(key), abi=ledger_abi())
    client = AsyncLedgerClient(rpc, ledger, tx=tx)
    terms = GrantTerms(bytes.fromhex(asset), grantee, 1, 1, 0, 4_000_000_000, 0)
    # A cheap view-free write any member may do: bind the caller's own key hash, many times.
    rs = await asyncio.gather(*(client.send(client.calls.bind_encryption_key(
        (i + 1).to_bytes(32, "big"), b"p")) for i in range(int(count))))
    print(len({r.tx_hash for r in rs}))
    await client.close()

asyncio.run(main())
"""


def test_two_processes_with_separate_keys(world: World) -> None:
    bank_key = world.bank_key
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                world.url,
                world.manifest.ledger_address,
                key,
                "00" * 32,
                world.bank,
                "25",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for key in (world.issuer_key, bank_key)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "25"
    for key in (world.issuer_key, bank_key):
        member = world.gov.get_member(Account.from_key(key).address)
        assert member.key_version == 25  # admission binds no key (version 0)


def test_send_error_that_is_not_a_nonce_error_is_raised(world: World) -> None:
    poor = "0x" + "11" * 32  # an account with no ether
    with RpcClient(world.url) as rpc:
        assert rpc.call("eth_getBalance", [Account.from_key(poor).address, "latest"]) == "0x0"

    async def run() -> None:
        client = _client(world, poor)
        try:
            with pytest.raises(RpcResponseError):
                await client.send(client.calls.bind_encryption_key(b"\1" * 32, b"p"), gas=100_000)
        finally:
            await client.close()

    asyncio.run(run())


async def test_stuck_transaction_is_replaced_with_same_nonce_higher_fees(world: World) -> None:
    client = _client(world, world.subject_key, poll_interval=0.02)
    rpc = client.rpc
    assert client.tx is not None
    try:
        await rpc.call("evm_setAutomine", [False])
        stuck = await client.submit(client.calls.grant(world.terms(), 91), gas=500_000)
        replacement = await client.tx.replace(stuck)
        assert replacement.nonce == stuck.nonce and replacement.tx_hash != stuck.tx_hash
        assert replacement.tx["maxFeePerGas"] > stuck.tx["maxFeePerGas"]
        assert replacement.tx["maxPriorityFeePerGas"] > stuck.tx["maxPriorityFeePerGas"]
        await rpc.call("evm_mine")
        receipt = await client.tx.wait(replacement)
        assert receipt.success and receipt.events_named("ConsentGranted")
        assert await rpc.call("eth_getTransactionReceipt", [stuck.tx_hash]) is None
        with pytest.raises(ConfigurationError):
            await client.tx.replace(replacement, fee_bump=1.05)
    finally:
        await rpc.call("evm_setAutomine", [True])
        await client.close()


async def test_wait_replaces_a_stuck_transaction_and_takes_whichever_version_is_mined(
    world: World,
) -> None:
    """``replace_after``: the wait replaces the stuck transaction itself; when the original
    is mined after all (here: the replacement is lost and the original comes back), the
    wait returns the original's receipt."""
    client = _client(
        world, world.subject_key, poll_interval=0.02, replace_after=0.1, max_replacements=1
    )
    rpc = client.rpc
    tx = client.tx
    assert tx is not None
    try:
        await rpc.call("evm_setAutomine", [False])
        pending = await client.submit(client.calls.grant(world.terms(), 93), gas=500_000)
        original, original_raw = pending.tx_hash, pending.raw
        assert original_raw is not None
        waiting = asyncio.create_task(tx.wait(pending))
        for _ in range(1000):
            if tx.replaced:
                break
            await asyncio.sleep(0.02)
        assert tx.replaced == 1 and pending.superseded == [original]
        assert pending.tx_hash != original
        await rpc.call("anvil_dropTransaction", [pending.tx_hash])
        await rpc.call("eth_sendRawTransaction", ["0x" + original_raw.hex()])
        await rpc.call("evm_mine")
        receipt = await waiting
        assert receipt.tx_hash == original and receipt.success
        assert await rpc.call("eth_getTransactionReceipt", [pending.tx_hash]) is None
        assert tx.replaced == 1  # capped: no more replacements
    finally:
        await rpc.call("evm_setAutomine", [True])
        await client.close()


async def test_hooks_journal_before_the_bytes_leave_and_see_refusals(world: World) -> None:
    """``before_broadcast`` runs while the node does not know the transaction yet; a hook
    that fails stops the broadcast; ``refused`` sees what the node turned down."""
    seen: list[tuple[str, bool]] = []
    refused: list[str] = []
    rpc = AsyncRpcClient(world.url)

    async def before(signed: SignedTx) -> None:
        known = await rpc.call("eth_getTransactionByHash", [signed.tx_hash]) is not None
        seen.append((signed.tx_hash, known))
        if signed.nonce < 0:  # pragma: no cover - never: nonces are non-negative
            raise AssertionError

    async def on_refused(signed: SignedTx, exc: RpcResponseError) -> None:
        refused.append(signed.tx_hash)

    hooks = TxHooks(before_broadcast=before, refused=on_refused)
    tx = AsyncTxManager(
        rpc, LocalKeySender.from_key(world.subject_key), abi=ledger_abi(), hooks=hooks
    )
    client = AsyncLedgerClient(rpc, world.manifest.ledger_address, tx=tx)
    try:
        receipt = await client.send(client.calls.grant(world.terms(), 92))
        assert seen == [(receipt.tx_hash, False)] and tx.sent == 1

        async def failing(signed: SignedTx) -> None:
            raise RuntimeError("journal down")

        tx.hooks = TxHooks(before_broadcast=failing)
        pending_before = await tx.nonces.chain_pending()
        with pytest.raises(RuntimeError, match="journal down"):
            await client.submit(client.calls.grant(world.terms(), 93), gas=500_000)
        assert await tx.nonces.chain_pending() == pending_before  # nothing was sent
    finally:
        await client.close()

    poor = AsyncTxManager(
        AsyncRpcClient(world.url), LocalKeySender.from_key("0x" + "12" * 32), hooks=hooks
    )
    try:
        with pytest.raises(RpcResponseError):
            await poor.submit(world.manifest.ledger_address, b"\0" * 4, gas=100_000)
        assert len(refused) == 1
    finally:
        await poor.rpc.close()


async def test_raw_broadcast_of_a_transaction_signed_elsewhere(world: World) -> None:
    journal: list[str] = []

    async def before(signed: SignedTx) -> None:
        journal.append(signed.kind)

    rpc = AsyncRpcClient(world.url)
    member = LocalKeySender.from_key(world.subject_key)
    relay = AsyncTxManager(rpc, NodeAccountSender(member.address), hooks=TxHooks(before))
    try:
        nonce = await relay.nonces.chain_pending()
        data = _client(world, world.subject_key).calls.grant(world.terms(), 94).data
        raw_tx = {
            "chainId": await relay.chain_id(),
            "nonce": nonce,
            "to": world.manifest.ledger_address,
            "value": 0,
            "gas": 500_000,
            "data": "0x" + data.hex(),
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
            "type": 2,
        }
        tx_hash, raw = member.sign(raw_tx)
        assert raw is not None
        signed = SignedTx(tx_hash, member.address, nonce, raw, "member")
        assert await relay.broadcast_raw(signed) == tx_hash
        # Mined already (automine). anvil answers "already imported" (it holds these bytes:
        # no failure) or "nonce too low" (a typed nonce error), depending on what it kept.
        with contextlib.suppress(RpcNonceError):
            assert await relay.broadcast_raw(signed) == tx_hash
        assert journal == ["member", "member"]
        other = dict(raw_tx, value=1)  # another transaction on the used nonce is refused
        _, other_raw = member.sign(other)
        assert other_raw is not None
        with pytest.raises(RpcNonceError):
            await relay.broadcast_raw(
                SignedTx("0x" + "00" * 32, member.address, nonce, other_raw, "member")
            )
        receipt = await relay.wait(PendingTx(tx_hash, nonce, raw_tx, raw))
        assert receipt.success
    finally:
        await rpc.close()


class _Slot:
    """A shared nonce store standing in for the service's database row (one process here)."""

    def __init__(self) -> None:
        self.stored = 0
        self.lock = asyncio.Lock()
        self.acquired = 0

    async def acquire(self, address: str) -> int:
        await self.lock.acquire()
        self.acquired += 1
        return self.stored

    async def release(self, address: str, next_nonce: int | None) -> None:
        if next_nonce is not None:
            self.stored = next_nonce
        self.lock.release()


async def test_shared_nonces_are_resynced_from_the_chain_then_kept_in_the_slot(
    world: World,
) -> None:
    slot = _Slot()
    client = _client(world, world.subject_key, shared_nonces=slot)
    assert client.tx is not None
    try:
        receipts = await asyncio.gather(
            *(client.send(client.calls.grant(world.terms(), 200 + i)) for i in range(5))
        )
        assert all(r.success for r in receipts)
        assert slot.stored == await client.tx.nonces.chain_pending()
        assert slot.acquired == 5
        # Another replica advanced the shared slot: the manager takes the stored value.
        external = _client(world, world.subject_key)
        await external.send(external.calls.grant(world.terms(), 300))
        await external.close()
        slot.stored += 1
        assert (await client.send(client.calls.grant(world.terms(), 301))).success
        assert client.tx.nonce_errors == 0  # the slot, not a refusal, gave the nonce
    finally:
        await client.close()
