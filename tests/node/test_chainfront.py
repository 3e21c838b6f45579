"""The journaling front on a real anvil: batches, unlocked accounts, and the replay after
anvil lost everything it mined (same hashes, same blocks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from ledger.chain import DEV_PRIVATE_KEYS, EmbeddedChain
from node.chainfront import ChainFront
from node.replay import replay
from node.txlog import TxLog


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(url, json=body).json()


def _raw(nonce: int) -> str:
    tx = {
        "to": Account.create().address,
        "value": 1,
        "gas": 21_000,
        "gasPrice": 10**10,
        "nonce": nonce,
        "chainId": 31337,
    }
    return "0x" + bytes(Account.sign_transaction(tx, DEV_PRIVATE_KEYS[5]).raw_transaction).hex()


def test_batch_and_unlocked_sends_are_journaled_and_replayed_identically(tmp_path: Path) -> None:
    chain = EmbeddedChain(state_dir=tmp_path, state_interval=3600).start()
    journal = TxLog.open(tmp_path / "tx-journal.log")
    front = ChainFront(journal, chain.url, 0).start()
    try:
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [_raw(i)]}
            for i in range(2)
        ] + [{"jsonrpc": "2.0", "id": 9, "method": "eth_blockNumber", "params": []}]
        replies = httpx.post(front.url, json=batch).json()
        assert [r["id"] for r in replies] == [0, 1, 9] and all("result" in r for r in replies)
        unlocked = _rpc(
            front.url,
            "eth_sendTransaction",
            [
                {
                    "from": Account.from_key(DEV_PRIVATE_KEYS[6]).address,
                    "to": Account.create().address,
                    "value": "0x1",
                }
            ],
        )
        hashes = [replies[0]["result"], replies[1]["result"], unlocked["result"]]
        assert [t.tx_hash for t in journal.entries] == hashes
        assert all(t.accepted and t.ok and t.block_time for t in journal.entries)
        blocks = [
            _rpc(front.url, "eth_getBlockByNumber", [hex(n), False])["result"] for n in range(4)
        ]
    finally:
        front.stop()
        chain.kill()  # no state written: anvil lost all three
        journal.close()

    chain = EmbeddedChain(state_dir=tmp_path, state_interval=3600).start()
    try:
        journal = TxLog.open(tmp_path / "tx-journal.log")
        report = replay(journal, chain.url)
        assert report.replayed == hashes and not report.lost and report.on_chain == 0
        again = [
            _rpc(chain.url, "eth_getBlockByNumber", [hex(n), False])["result"] for n in range(4)
        ]
        assert [b["hash"] for b in again] == [b["hash"] for b in blocks]
        # a second replay finds everything on chain
        assert replay(journal, chain.url).on_chain == 3
        journal.close()
    finally:
        chain.stop()
