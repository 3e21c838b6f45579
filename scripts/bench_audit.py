"""Benchmark: audit verify throughput, rows re-derived per second from the chain.

Produces ``--events`` ledger events on a local anvil (started here, stopped at the end)
with ``scripts/bench_indexer.py``'s generator (``recordAccessBatch``, one ``Accessed`` per
request), indexes them into SQLite with the indexer, then times, in the same run:

* the indexer's sync of the same blocks (events/s, the reference);
* ``ledger.audit.chain_rows``: every trace row re-derived from ``eth_getLogs`` (rows/s);
* ``ledger.audit.verify_index``: re-derive + read the index + compare (rows/s).

Usage: .venv/bin/python scripts/bench_audit.py [--events 20000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_indexer import ANVIL, Rpc, free_port, generate  # noqa: E402

from ledger import audit, db  # noqa: E402
from ledger.indexer import Indexer  # noqa: E402
from ledger.manifest import Manifest  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--per-tx", type=int, default=500)
    ap.add_argument("--txs-per-block", type=int, default=10)
    args = ap.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    anvil = subprocess.Popen(
        [*cmd, "--disable-block-gas-limit"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        address, start, _ = generate(url, args.events, args.per_tx, args.txs_per_block)
        rpc = Rpc(url)
        head = int(rpc("eth_blockNumber"), 16)
        manifest = Manifest(
            chainId=int(rpc("eth_chainId"), 16),
            ledger=address,
            deployBlock=start,
            deployTx="0x" + "00" * 32,
            codeHash="0x" + "00" * 32,
            governor=address,
            compiler="bench",
            artifactSourceHash="bench",
            deployedAt=0,
        )
        with tempfile.TemporaryDirectory() as tmp:
            engine = db.make_engine(f"sqlite:///{tmp}/audit.db")
            indexer = Indexer(rpc_url=url, ledger_address=address, engine=engine, start_block=start)
            t0 = time.perf_counter()
            synced = indexer.sync_once()
            index_s = time.perf_counter() - t0
            indexer.close()

            t0 = time.perf_counter()
            rows = audit.chain_rows(url, address, start, head, deploy_block=start)
            derive_s = time.perf_counter() - t0

            t0 = time.perf_counter()
            report = audit.verify_index(url, manifest, engine)
            verify_s = time.perf_counter() - t0
            engine.dispose()
        assert report.ok, "the freshly built index must verify clean"
        assert report.chain_rows == len(rows)
        print(f"{synced.events:,} events in blocks {start}..{head}; {len(rows):,} trace rows")
        print()
        print("| step | rows | seconds | rows/s | vs indexer |")
        print("|---|---:|---:|---:|---:|")
        index_rate = synced.events / index_s
        ref = f"{synced.events:,} | {index_s:.2f} | {index_rate:,.0f}"
        print(f"| indexer sync (reference) | {ref} | 1.00 |")
        for name, n, s in (
            ("re-derive from eth_getLogs (`chain_rows`)", len(rows), derive_s),
            ("audit verify: re-derive + read index + compare", report.chain_rows, verify_s),
        ):
            print(f"| {name} | {n:,} | {s:.2f} | {n / s:,.0f} | {n / s / index_rate:.2f} |")
    finally:
        anvil.terminate()
        anvil.wait(10)


if __name__ == "__main__":
    main()
