"""Benchmark: index 100,000 ledger events from genesis into SQLite and PostgreSQL.

Events are produced on a local anvil (started here, killed at the end) with the
contract's batch function ``recordAccessBatch`` (one ``Accessed`` event per
request, ``--per-tx`` requests per transaction), automine off and one
``evm_mine`` per ``--txs-per-block`` queued transactions. Access requests are
EIP-712 signed locally with coincurve.

Usage: .venv/bin/python scripts/bench_indexer.py [--events 100000] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from coincurve import PrivateKey
from eth_account import Account
from eth_utils import keccak
from web3 import Web3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger import db  # noqa: E402
from ledger.eip712 import pack_access_batch  # noqa: E402
from ledger.indexer import Indexer  # noqa: E402
from ledger.models import AccessRequest  # noqa: E402

NATIVE = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ANVIL = NATIVE if NATIVE.exists() else ROOT / "node_modules" / ".bin" / "anvil"
ACCESS_TYPEHASH = keccak(
    text="AccessRequest(bytes32 grantId,uint64 fieldsMask,uint256 nonce,uint64 deadline)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def artifact() -> dict[str, Any]:
    for p in (
        ROOT / "ledger/artifacts/DataSafeLedger.json",
        ROOT / "out/DataSafeLedger.sol/DataSafeLedger.json",
    ):
        if p.is_file():
            d = json.loads(p.read_text())
            bc = d["bytecode"]["object"] if isinstance(d["bytecode"], dict) else d["bytecode"]
            return {"abi": d["abi"], "bytecode": bc}
    raise SystemExit("DataSafeLedger artifact missing: run forge build")


class Rpc:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=300)
        self.n = 0

    def __call__(self, method: str, params: list[Any] | None = None) -> Any:
        self.n += 1
        r = self.http.post(
            self.url,
            json={"jsonrpc": "2.0", "id": self.n, "method": method, "params": params or []},
        ).json()
        if "error" in r:
            raise RuntimeError(f"{method}: {r['error']}")
        return r["result"]


def generate(url: str, events: int, per_tx: int, txs_per_block: int) -> tuple[str, int, float]:
    w3 = Web3(Web3.HTTPProvider(url))
    rpc = Rpc(url)
    art = artifact()
    gov, issuer, subject = w3.eth.accounts[:3]
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    rcpt = w3.eth.wait_for_transaction_receipt(factory.constructor(gov).transact({"from": gov}))
    c = w3.eth.contract(address=rcpt["contractAddress"], abi=art["abi"])
    deploy_block = rcpt["blockNumber"]
    bank = Account.from_key(keccak(text="bench-bank"))
    key = keccak(text="enc")

    def tx(fn: Any, sender: str) -> None:
        r = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
        assert r["status"] == 1

    tx(c.functions.admitMember(issuer, 2, 6, key), gov)
    tx(c.functions.admitMember(subject, 32, 1, key), gov)
    tx(c.functions.admitMember(bank.address, 4, 3, key), gov)
    schema = keccak(text="schema")
    tx(c.functions.registerSchema(schema, 8, keccak(text="f")), issuer)
    asset = keccak(text="asset")
    tx(c.functions.anchorAsset(asset, subject, schema, keccak(text="r"), keccak(text="d")), issuer)
    now = w3.eth.get_block("latest")["timestamp"]
    tx(c.functions.grant((asset, bank.address, 1, 0xFF, 0, now + 10**8, 0), 1), subject)
    grant_id = bytes(c.functions.grantIdOf(subject, 1).call())
    domain = bytes(c.functions.domainSeparator().call())
    signer = PrivateKey(bytes(bank.key))

    started = time.perf_counter()
    rpc("evm_setAutomine", [False])
    nonce = 0
    queued = 0
    deadline = 2**40
    pending: list[str] = []
    remaining = events - 7  # the setup above emitted 7 events
    while remaining > 0:
        n = min(per_tx, remaining)
        reqs, sigs = [], []
        for _ in range(n):
            struct = keccak(
                ACCESS_TYPEHASH
                + grant_id
                + (1).to_bytes(32, "big")
                + nonce.to_bytes(32, "big")
                + deadline.to_bytes(32, "big")
            )
            sig = signer.sign_recoverable(keccak(b"\x19\x01" + domain + struct), hasher=None)
            sigs.append(sig[:64] + bytes([sig[64] + 27]))
            reqs.append((grant_id, 1, nonce, deadline))
            nonce += 1
        packed = pack_access_batch([AccessRequest(*r) for r in reqs], sigs)
        data = c.encode_abi("recordAccessBatch", args=[packed])
        pending.append(
            rpc(
                "eth_sendTransaction",
                [
                    {
                        "from": gov,
                        "to": c.address,
                        "data": data,
                        "gas": hex(per_tx * 60_000 + 100_000),
                    }
                ],
            )
        )
        remaining -= n
        queued += 1
        if queued % txs_per_block == 0:
            rpc("evm_mine")
    rpc("evm_mine")
    rpc("evm_setAutomine", [True])
    for h in pending[:: max(1, len(pending) // 10)] + pending[-1:]:
        r = rpc("eth_getTransactionReceipt", [h])
        assert r is not None and r["status"] == "0x1", r
    return c.address, deploy_block, time.perf_counter() - started


def count_events(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return sum(
            conn.execute(sa.text(f"select count(*) from {t}")).scalar_one()
            for t in (
                "member_events",
                "schemas",
                "asset_events",
                "grant_events",
                "accesses",
                "access_refusals",
            )
        )


def bench(url: str, address: str, start: int, db_url: str, batch_size: int) -> tuple[int, float]:
    engine = db.make_engine(db_url)
    db.create_tables(engine)
    indexer = Indexer(
        rpc_url=url, ledger_address=address, engine=engine, start_block=start, batch_size=batch_size
    )
    t0 = time.perf_counter()
    result = indexer.sync_once()
    elapsed = time.perf_counter() - t0
    indexer.close()
    assert count_events(engine) == result.events, "row count differs from events"
    engine.dispose()
    return result.events, elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--per-tx", type=int, default=500)
    ap.add_argument("--txs-per-block", type=int, default=10)
    ap.add_argument(
        "--batch-size", type=int, default=5, help="blocks per eth_getLogs / DB transaction"
    )
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    anvil = subprocess.Popen(
        [
            str(ANVIL),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--silent",
            "--disable-block-gas-limit",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pg_name = f"bench_indexer_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    try:
        for _ in range(200):
            try:
                httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        address, start, gen_s = generate(url, args.events, args.per_tx, args.txs_per_block)
        head = int(Rpc(url)("eth_blockNumber"), 16)
        print(f"generated {args.events} events in {head - start + 1} blocks in {gen_s:.1f}s")
        with tempfile.TemporaryDirectory() as tmp:
            n, s = bench(url, address, start, f"sqlite:///{tmp}/bench.db", args.batch_size)
            print(f"sqlite:     {n} events in {s:.2f}s = {n / s:,.0f} events/s")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{pg_name}"'))
        pg_url = (
            sa.make_url(args.pg_url).set(database=pg_name).render_as_string(hide_password=False)
        )
        n, s = bench(url, address, start, pg_url, args.batch_size)
        print(f"postgresql: {n} events in {s:.2f}s = {n / s:,.0f} events/s")
    finally:
        anvil.terminate()
        anvil.wait(10)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
