#!/usr/bin/env python3
"""Cost of the embedded chain's journaling front (node/chainfront.py) vs anvil directly.

Same anvil, same run: reads (``eth_blockNumber``, ``eth_call``-sized ``eth_getBalance``) and
signed transfers (``eth_sendRawTransaction``, automine), sequential and from several
concurrent senders, straight to anvil and through the front (journal fsync'd on the same disk
as the data dir). Prints the per-call times and the front/direct ratios.

    .venv/bin/python scripts/bench_chainfront.py --reads 2000 --sends 300 --senders 8
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from eth_account import Account

from ledger.chain import DEV_PRIVATE_KEYS, EmbeddedChain, free_port
from node.chainfront import ChainFront
from node.txlog import TxLog


def _call(http: httpx.Client, url: str, method: str, params: list[object]) -> object:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = http.post(url, json=body).json()
    assert "result" in reply, reply
    return reply["result"]


def reads(url: str, n: int) -> float:
    with httpx.Client() as http:
        t = time.perf_counter()
        for _ in range(n):
            _call(http, url, "eth_blockNumber", [])
        return (time.perf_counter() - t) / n


def _raws(key: str, first: int, n: int) -> list[str]:
    out = []
    for nonce in range(first, first + n):
        tx = {
            "to": "0x000000000000000000000000000000000000dEaD",
            "value": 1,
            "gas": 21_000,
            "gasPrice": 10**10,
            "nonce": nonce,
            "chainId": 31337,
        }
        out.append("0x" + bytes(Account.sign_transaction(tx, key).raw_transaction).hex())
    return out


def sends(url: str, keys: list[str], per_key: int) -> float:
    """Seconds per transaction, ``len(keys)`` senders in parallel, each waiting for its reply."""
    with httpx.Client() as http:
        firsts = [
            int(
                _call(
                    http, url, "eth_getTransactionCount", [Account.from_key(k).address, "pending"]
                ),
                16,
            )  # type: ignore[arg-type]
            for k in keys
        ]
    batches = [_raws(k, f, per_key) for k, f in zip(keys, firsts, strict=True)]

    def run(raws: list[str]) -> None:
        with httpx.Client() as http:
            for raw in raws:
                _call(http, url, "eth_sendRawTransaction", [raw])

    t = time.perf_counter()
    with ThreadPoolExecutor(len(keys)) as pool:
        list(pool.map(run, batches))
    return (time.perf_counter() - t) / (per_key * len(keys))


def serve(upstream: str, journal_path: str, port: int) -> None:
    """The front in its own process, as in ``datasafe-node up`` (no GIL shared with clients)."""
    journal = TxLog.open(Path(journal_path))
    ChainFront(journal, upstream, port).start()
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes our stdin


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reads", type=int, default=2000)
    p.add_argument("--sends", type=int, default=300, help="per sender")
    p.add_argument("--senders", type=int, default=8)
    p.add_argument(
        "--serve", nargs=3, metavar=("UPSTREAM", "JOURNAL", "PORT"), help=argparse.SUPPRESS
    )
    a = p.parse_args()
    if a.serve:
        serve(a.serve[0], a.serve[1], int(a.serve[2]))
        return
    keys = [*DEV_PRIVATE_KEYS[1:]][: a.senders]
    with tempfile.TemporaryDirectory() as d, EmbeddedChain() as chain:
        journal_path = Path(d) / "tx-journal.log"
        port = free_port()
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", chain.url, str(journal_path), str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        front_url = f"http://127.0.0.1:{port}"
        try:
            rows = []
            for name, run in (
                ("eth_blockNumber", lambda u: reads(u, a.reads)),
                ("sendRawTransaction, 1 sender", lambda u: sends(u, keys[:1], a.sends)),
                (
                    f"sendRawTransaction, {len(keys)} senders",
                    lambda u: sends(u, keys, a.sends // len(keys) or 1),
                ),
            ):
                rows.append((name, run(chain.url), run(front_url)))
            print(f"{'call':34} {'anvil ms':>9} {'front ms':>9} {'ratio':>6}")
            for name, d_s, f_s in rows:
                print(f"{name:34} {d_s * 1e3:9.3f} {f_s * 1e3:9.3f} {f_s / d_s:6.2f}")
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(10)
        journal = TxLog.open(journal_path)
        print(f"journal: {len(journal.entries)} transactions, {journal_path.stat().st_size} B")
        journal.close()


if __name__ == "__main__":
    main()
