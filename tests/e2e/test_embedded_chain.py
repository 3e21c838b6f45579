"""The embedded chain survives many restarts as the *same* chain, on the wall clock."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from ledger.chain import EmbeddedChain


def _rpc(url: str, method: str, params: list[object]) -> dict[str, str]:
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    result: dict[str, str] = reply.json()["result"]
    return result


def test_genesis_is_stable_across_restarts_and_time_is_real(tmp_path: Path) -> None:
    # anvil 1.7 re-creates block 0 on each --state load; without the pinned timestamp its
    # hash changed after a few restarts and the indexer saw "another chain".
    genesis = set()
    for i in range(5):
        with EmbeddedChain(state_dir=tmp_path, state_interval=3600) as chain:
            httpx.post(chain.url, json={"jsonrpc": "2.0", "id": 1, "method": "evm_mine"})
            genesis.add(_rpc(chain.url, "eth_getBlockByNumber", ["0x0", False])["hash"])
            latest = _rpc(chain.url, "eth_getBlockByNumber", ["latest", False])
            assert int(latest["number"], 16) == i + 1
            assert abs(int(latest["timestamp"], 16) - time.time()) < 5
        if i == 1:
            time.sleep(1.5)  # a restart later must not move the chain's clock back
    assert len(genesis) == 1
    assert (tmp_path / "genesis-timestamp").read_text().strip().isdigit()
