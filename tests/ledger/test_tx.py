"""Nonces under concurrency, re-sends of dropped transactions, node accounts, timeouts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import World
from eth_account import Account

from ledger.abi import ledger_abi
from ledger.client import AsyncLedgerClient
from ledger.errors import ReceiptTimeoutError, RpcResponseError, contract_error
from ledger.models import GrantStatus
from ledger.rpc import AsyncRpcClient, RpcClient
from ledger.tx import AsyncTxManager, LocalKeySender, NodeAccountSender

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
