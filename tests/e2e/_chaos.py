"""Power cuts at random moments: the embedded node SIGKILLed (node, anvil, API together)
while members write, then restarted, again and again.

Shared by ``tests/e2e/test_powercut.py`` (bounded, in CI) and ``scripts/chaos.py`` (more
rounds). After every restart: the node starts, every transaction any client got a receipt
for (a member's own transfer, a relayed grant, a pull's access record) is on chain; at the
end, the index equals the chain (``ledger.audit.verify_rows`` over the whole range).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _e2e_node import Node, Story, wait_dead, wait_indexed
from eth_account import Account

import api.client
from ledger.audit import index_rows, verify_rows
from ledger.chain import DEV_PRIVATE_KEYS
from ledger.rpc import RpcClient
from ledger.trace import TraceFilter

#: A member sending its own transactions straight to the node's RPC (no service involved).
WALLET_KEY = DEV_PRIVATE_KEYS[5]

#: The processes a power cut kills (keys of ``node.json``).
PROCESSES = ("pid", "anvil_pid", "api_pid")
_ROTATIONS = [PROCESSES[i:] + PROCESSES[:i] for i in range(len(PROCESSES))]
#: Every order they can die in; in this order each process dies first once in the first
#: half of a plan (early cuts) and once in the second (late cuts).
KILL_ORDERS: list[tuple[str, ...]] = _ROTATIONS + [tuple(reversed(r)) for r in _ROTATIONS]
#: Earliest and latest cut after the workload starts (seconds).
EARLIEST, LATEST = 0.1, 3.0


def kill_plan(rounds: int) -> list[tuple[float, tuple[str, ...]]]:
    """(seconds into the workload, kill order) for ``rounds`` cuts that cover every kill order
    and spread evenly from the earliest moment to the latest; ``len(KILL_ORDERS)`` rounds
    cover each order once."""
    step = (LATEST - EARLIEST) / max(rounds - 1, 1)
    return [(EARLIEST + i * step, KILL_ORDERS[i % len(KILL_ORDERS)]) for i in range(rounds)]


@dataclass
class Told:
    """What clients were told: tx hashes with a receipt, per kind."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    hashes: dict[str, str] = field(default_factory=dict)

    def add(self, tx_hash: str, kind: str) -> None:
        with self.lock:
            self.hashes[tx_hash.lower()] = kind


def _record_responses(told: Told) -> None:
    """Every API answer that cites a transaction is a client told it is mined."""
    original = api.client.DataSafeClient.post

    def post(self: Any, path: str, body: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(self, path, body, *args, **kwargs)
        if isinstance(out, dict):
            if out.get("tx_hash"):
                told.add(str(out["tx_hash"]), path)
            access = out.get("access")
            if isinstance(access, dict) and access.get("tx_hash"):
                told.add(str(access["tx_hash"]), "access")
        return out

    api.client.DataSafeClient.post = post  # type: ignore[method-assign]


class Chaos:
    def __init__(self, data_dir: Path, seed: int) -> None:
        self.node = Node(data_dir)
        self.story = Story()
        self.rng = random.Random(seed)
        self.told = Told()
        self.errors: list[str] = []
        self.start_seconds: list[float] = []
        _record_responses(self.told)

    # ---- the workload -----------------------------------------------------------------

    def setup(self) -> None:
        self._start()
        info, manifest = self.node.info, self.node.manifest
        self.story.admit_members(info["rpc_url"], manifest)
        self.story.publish_keys(info["api_url"])
        self.story.register_schema(info["api_url"], info["rpc_url"], manifest)
        self.story.issue(info["api_url"], info["rpc_url"], manifest)
        self.story.grant(info["api_url"], manifest, max_uses=60_000)
        self.story.pull(info["api_url"], manifest)

    def _grants_and_pulls(self, stop: threading.Event) -> None:
        url, manifest = self.node.info["api_url"], self.node.manifest
        while not stop.is_set():
            try:
                if self.rng.random() < 0.3:
                    self.story.grant(url, manifest, max_uses=60_000)
                self.story.pull(url, manifest)
            except Exception:
                return

    def _transfers(self, stop: threading.Event) -> None:
        rpc_url = self.node.info["rpc_url"]
        me = Account.from_key(WALLET_KEY)
        while not stop.is_set():
            try:
                with RpcClient(rpc_url, timeout=5, retries=0) as rpc:
                    nonce = int(rpc.call("eth_getTransactionCount", [me.address, "pending"]), 16)
                    block = rpc.call("eth_getBlockByNumber", ["latest", False])
                    tip = 10**9  # a fixed tip: bidding on eth_gasPrice would ratchet it up
                    tx = {
                        "to": Account.create().address,
                        "value": 1,
                        "gas": 21_000,
                        "maxFeePerGas": 2 * int(block["baseFeePerGas"], 16) + tip,
                        "maxPriorityFeePerGas": tip,
                        "type": 2,
                        "nonce": nonce,
                        "chainId": self.node.manifest.chain_id,
                    }
                    raw = Account.sign_transaction(tx, WALLET_KEY).raw_transaction
                    h = rpc.call("eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
                    receipt = None
                    while receipt is None and not stop.is_set():
                        receipt = rpc.call("eth_getTransactionReceipt", [h])
                    if receipt is not None:
                        self.told.add(str(h), "transfer")
            except Exception:
                return

    # ---- a round: run, cut the power, restart, check ---------------------------------

    def _start(self, *args: str) -> str:
        t = time.monotonic()
        out = self.node.start(*args)
        self.start_seconds.append(time.monotonic() - t)
        return out

    def power_cut(self, after: float, order: tuple[str, ...] | None = None) -> None:
        """SIGKILL node, anvil and API ``after`` seconds into the workload, in ``order``
        (default: a random one)."""
        stop = threading.Event()
        workers = [
            threading.Thread(target=self._grants_and_pulls, args=(stop,), daemon=True),
            threading.Thread(target=self._transfers, args=(stop,), daemon=True),
        ]
        for w in workers:
            w.start()
        time.sleep(after)
        info = self.node.info
        if order is None:
            order = tuple(self.rng.sample(PROCESSES, len(PROCESSES)))
        pids = [info[name] for name in order]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        stop.set()
        self.node.finish()
        for pid in pids:
            wait_dead(pid)
        for w in workers:
            w.join(10)

    def check_told(self) -> int:
        """Every transaction a client got a receipt for is on chain; returns how many."""
        with self.told.lock:
            hashes = dict(self.told.hashes)
        with RpcClient(self.node.info["rpc_url"]) as rpc:
            for h, kind in hashes.items():
                receipt = rpc.call("eth_getTransactionReceipt", [h])
                if receipt is None:
                    self.errors.append(f"{kind} {h}: a client got its receipt, the chain lost it")
        return len(hashes)

    def round(self, after: float, order: tuple[str, ...] | None = None) -> str:
        self.power_cut(after, order)
        out = self._start()
        self.check_told()
        return out

    def check_index(self) -> None:
        """The index equals the chain over the whole range (``audit verify``)."""
        wait_indexed(self.node)
        manifest = self.node.manifest
        engine = sa.create_engine(f"sqlite:///{self.node.data_dir / 'datasafe.db'}")
        try:
            rows = index_rows(engine, TraceFilter())
        finally:
            engine.dispose()
        with RpcClient(self.node.info["rpc_url"]) as rpc:
            head = int(rpc.call("eth_blockNumber"), 16)
        report = verify_rows(
            self.node.info["rpc_url"],
            manifest,
            rows,
            from_block=manifest.deploy_block,
            to_block=head,
        )
        if not report.ok:
            self.errors.append(f"audit verify: {report.to_json()}")
