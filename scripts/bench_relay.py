#!/usr/bin/env python3
"""Relayed signed grants per second on one embedded anvil (not a test).

Citizens sign ``GrantConsent`` messages (EIP-712, coincurve); relayers (CUSTODIAN
members, one key each) pack ``--batch`` signed grants into one ``grantBySigBatch``
transaction, sign transactions locally with consecutive nonces, send them in
JSON-RPC batches and wait for the receipts. Reported separately:

* client cost: EIP-712 signing of grants, calldata encoding, transaction signing
  (measured alone, no node involved);
* end-to-end: grants in confirmed (mined, status 1) blocks per second of wall time,
  including the node.

With ``--via-api`` the transactions go through the service's relayer instead
(``api.relay.Relayer``: journal and shared nonce slot in a database, one transaction
per ``send_and_wait``, ``--concurrency`` of them at once), and the database work per
transaction is counted (statements, commits, pool checkouts).

    .venv/bin/python scripts/bench_relay.py --grants 20000 --relayers 1
    .venv/bin/python scripts/bench_relay.py --grants 20000 --relayers 4
    .venv/bin/python scripts/bench_relay.py --grants 3000 --batch 10 --via-api --database sqlite
    .venv/bin/python scripts/bench_relay.py --grants 3000 --batch 10 --via-api --database postgresql

``--json FILE`` also writes the end-to-end figures as JSON (``scripts/bench_all.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account

from ledger import eip712
from ledger.abi import ledger_abi
from ledger.calls import LedgerCalls
from ledger.chain import DEV_PRIVATE_KEYS, EmbeddedChain
from ledger.client import AsyncLedgerClient
from ledger.manifest import adeploy_ledger
from ledger.models import GrantTerms, MemberKind, Role, SignedGrant
from ledger.rpc import AsyncRpcClient
from ledger.tx import AsyncTxManager, LocalKeySender, PendingTx

SCHEMA = b"\x5c" * 32
ASSET = b"\xa5" * 32
FAR = 4_000_000_000


def sign_grants(n: int, subject_key: str, bank: str, domain: eip712.Domain) -> list[SignedGrant]:
    terms = GrantTerms(ASSET, bank, 1, 0b11, 0, FAR, 0)
    return [eip712.sign_grant(subject_key, domain, terms, nonce, FAR) for nonce in range(n)]


async def setup(url: str, relayer_keys: list[str]) -> tuple[str, eip712.Domain, str, str]:
    gov_key, issuer_key, subject_key, bank_key = DEV_PRIVATE_KEYS[:4]
    rpc = AsyncRpcClient(url)
    abi = ledger_abi()
    manifest = await adeploy_ledger(AsyncTxManager(rpc, LocalKeySender.from_key(gov_key), abi=abi))

    def client(key: str) -> AsyncLedgerClient:
        tx = AsyncTxManager(rpc, LocalKeySender.from_key(key), abi=abi)
        return AsyncLedgerClient(rpc, manifest.ledger_address, tx=tx)

    gov, issuer = client(gov_key), client(issuer_key)
    addr = lambda k: Account.from_key(k).address  # noqa: E731
    c = gov.calls
    await gov.send(c.admit_member(addr(issuer_key), Role.ISSUER, MemberKind.DEPARTMENT))
    await gov.send(c.admit_member(addr(bank_key), Role.CONSUMER, MemberKind.BANK))
    await gov.send(c.admit_subject(addr(subject_key), MemberKind.INDIVIDUAL))
    for key in relayer_keys:
        if addr(key) != manifest.governor:
            await gov.send(c.admit_member(addr(key), Role.CUSTODIAN, MemberKind.OPERATOR))
    await issuer.send(issuer.calls.register_schema(SCHEMA, 3, b"\5" * 32))
    await issuer.send(
        issuer.calls.anchor_asset(ASSET, addr(subject_key), SCHEMA, b"\6" * 32, b"\7" * 32)
    )
    await rpc.close()
    return (
        manifest.ledger_address,
        await _domain(url, manifest.ledger_address),
        subject_key,
        addr(bank_key),
    )


async def _domain(url: str, ledger: str) -> eip712.Domain:
    async with AsyncRpcClient(url) as rpc:
        return eip712.Domain(int(await rpc.call("eth_chainId"), 16), ledger)


async def relay(
    url: str, ledger: str, key: str, grants: list[SignedGrant], batch: int, window: int
) -> tuple[int, int, list[int]]:
    """Relay ``grants``; returns (grants confirmed, transactions, block numbers)."""
    rpc = AsyncRpcClient(url, timeout=120)
    tx = AsyncTxManager(rpc, LocalKeySender.from_key(key), receipt_timeout=600, poll_interval=0.02)
    calls = LedgerCalls()
    chunks = [grants[i : i + batch] for i in range(0, len(grants), batch)]
    first = calls.grant_by_sig_batch(chunks[0])
    gas = int(await tx.estimate_gas(ledger, first.data) * 1.1)
    confirmed, txs, blocks = 0, 0, []
    in_flight: list[tuple[PendingTx, int]] = []
    for i in range(0, len(chunks), window):
        group = chunks[i : i + window]
        pendings = await tx.submit_many(
            [(ledger, calls.grant_by_sig_batch(g).data, gas) for g in group]
        )
        in_flight += list(zip(pendings, [len(g) for g in group], strict=True))
        if len(in_flight) >= 2 * window:
            done, in_flight = in_flight[:window], in_flight[window:]
            receipts = await tx.wait_many([p for p, _ in done])
            confirmed += sum(n for (_, n), r in zip(done, receipts, strict=True) if r.status == 1)
            txs += len(done)
            blocks += [r.block_number for r in receipts]
    receipts = await tx.wait_many([p for p, _ in in_flight])
    confirmed += sum(n for (_, n), r in zip(in_flight, receipts, strict=True) if r.status == 1)
    txs += len(in_flight)
    blocks += [r.block_number for r in receipts]
    await rpc.close()
    return confirmed, txs, blocks


async def relay_via_api(
    url: str,
    ledger: str,
    key: str,
    grants: list[SignedGrant],
    batch: int,
    concurrency: int,
    db_url: str,
) -> tuple[int, int, Counter[str], Counter[str]]:
    """Relay ``grants`` through the service's relayer.

    Returns (grants confirmed, transactions, database counts, seconds in send / wait).
    """
    from api import db as api_db
    from api.chain import ChainGateway
    from api.journal import TxJournal
    from api.relay import Relayer

    engine = api_db.make_engine(db_url)  # migrated by the caller
    counts: Counter[str] = Counter()
    sa.event.listen(engine, "before_cursor_execute", lambda *_: counts.update(["statements"]))
    sa.event.listen(engine, "commit", lambda *_: counts.update(["commits"]))
    sa.event.listen(engine.pool, "checkout", lambda *_: counts.update(["checkouts"]))
    traces = _trace_round_trips(engine)
    calls = LedgerCalls()
    todo = [
        calls.grant_by_sig_batch(grants[i : i + batch]).data for i in range(0, len(grants), batch)
    ]
    sizes = [min(batch, len(grants) - i) for i in range(0, len(grants), batch)]
    confirmed = 0
    spent: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session:
        chain = ChainGateway(url, ledger, session)
        relayer = Relayer(
            chain,
            chain_id=31337,
            confirmations=0,
            timeout=600,
            custodian_key=bytes.fromhex(key.removeprefix("0x")),
            journal=TxJournal(engine),
        )
        gas = int(await relayer.estimate(todo[0]) * 1.1)
        jobs = list(zip(todo, sizes, strict=True))
        counts.clear()
        start = {p: p.stat().st_size for p in traces.iterdir()} if traces else {}

        async def worker() -> None:
            nonlocal confirmed
            while jobs:
                data, n = jobs.pop()
                t0 = time.perf_counter()
                tx_hash = await relayer.send(data, gas=gas)
                t1 = time.perf_counter()
                receipt = await relayer.wait(tx_hash)
                spent["send"] += t1 - t0
                spent["wait"] += time.perf_counter() - t1
                confirmed += n if receipt.success else 0

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if traces is not None:
        ctypes.CDLL(None).fflush(None)  # libpq's trace streams are buffered by the C library
        counts["round trips"] = sum(_requests(p, start.get(p, 0)) for p in traces.iterdir())
    engine.dispose()
    return confirmed, len(todo), counts, spent


def _trace_round_trips(engine: sa.Engine) -> Path | None:
    """On PostgreSQL, a libpq protocol trace per connection (files in the returned folder)."""
    if engine.dialect.name != "postgresql":
        return None
    folder = Path(tempfile.mkdtemp())
    files: list[Any] = []

    @sa.event.listens_for(engine, "connect")
    def _trace(dbapi_conn: Any, _record: Any) -> None:
        out = open(folder / f"{len(files)}.trace", "w")  # noqa: SIM115 (lives with the connection)
        files.append(out)
        dbapi_conn.pgconn.trace(out.fileno())
        dbapi_conn.pgconn.set_trace_flags(1 | 2)  # no timestamps, stable output

    return folder


def _requests(trace: Path, offset: int) -> int:
    """Round trips in a libpq trace from ``offset``: simple queries and extended-protocol syncs."""
    with trace.open() as f:
        f.seek(offset)
        return sum(
            1
            for line in f
            if line.startswith("F\t") and line.split("\t")[2].strip() in ("Query", "Sync")
        )


def _database_url(kind: str, pg_url: str) -> tuple[str, sa.Engine | None, str]:
    """A fresh database of ``kind``: (url, admin engine to drop it with, its name)."""
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/relay.db", None, ""
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"relay_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False), admin, name


def run_via_api(
    args: argparse.Namespace, chain_url: str, ledger: str, key: str, grants: list[SignedGrant]
) -> int:
    from api import db as api_db

    db_url, admin, name = _database_url(args.database, args.pg_url)
    try:
        api_db.migrate(api_db.make_engine(db_url))
        t = time.perf_counter()
        confirmed, txs, counts, spent = asyncio.run(
            relay_via_api(chain_url, ledger, key, grants, args.batch, args.concurrency, db_url)
        )
        wall = time.perf_counter() - t
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    per_tx = ", ".join(f"{k} {v / txs:.1f}" for k, v in sorted(counts.items()))
    per_tx += ", ms in send (lock queue + hold) {:.1f}, in wait {:.1f}".format(
        *(spent[k] / txs * 1000 for k in ("send", "wait"))
    )
    print(
        f"via api relayer, {args.database}, concurrency {args.concurrency}, batch {args.batch}: "
        f"{confirmed} grants in {txs} tx, {wall:.1f}s -> {txs / wall:,.1f} tx/s, "
        f"{confirmed / wall:,.0f} grants/s; database per tx: {per_tx}"
    )
    return 0 if confirmed == len(grants) else 1


def client_costs(grants: list[SignedGrant], batch: int, domain: eip712.Domain, bank: str) -> None:
    n = min(2000, len(grants))
    t = time.perf_counter()
    sign_grants(n, DEV_PRIVATE_KEYS[2], bank, domain)
    sign_rate = n / (time.perf_counter() - t)
    calls = LedgerCalls()
    chunks = [grants[i : i + batch] for i in range(0, n, batch)]
    t = time.perf_counter()
    datas = [calls.grant_by_sig_batch(c).data for c in chunks]
    enc_rate = n / (time.perf_counter() - t)
    acct = Account.from_key(DEV_PRIVATE_KEYS[0])
    t = time.perf_counter()
    for i, data in enumerate(datas):
        acct.sign_transaction(
            {
                "chainId": 31337,
                "nonce": i,
                "gas": 10**7,
                "maxFeePerGas": 10**9,
                "maxPriorityFeePerGas": 1,
                "to": domain.verifying_contract,
                "value": 0,
                "data": data,
                "type": 2,
            }
        )
    tx_rate = len(datas) / (time.perf_counter() - t)
    print(
        f"client: EIP-712 sign {sign_rate:,.0f} grants/s; encode {enc_rate:,.0f} grants/s; "
        f"sign tx {tx_rate:,.0f} tx/s (= {tx_rate * batch:,.0f} grants/s at batch {batch})"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grants", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=50, help="grants per transaction")
    p.add_argument("--relayers", type=int, default=1)
    p.add_argument("--window", type=int, default=20, help="transactions per JSON-RPC send batch")
    p.add_argument("--block-time", type=float, default=0, help="0 = automine")
    p.add_argument("--gas-limit", type=int, default=1_000_000_000)
    p.add_argument("--start-height", type=int, default=0, help="mine empty blocks first")
    p.add_argument("--via-api", action="store_true", help="through the service's relayer")
    p.add_argument("--concurrency", type=int, default=8, help="--via-api: sends at once")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    p.add_argument("--json", type=Path, help="also write the end-to-end figures here as JSON")
    args = p.parse_args()
    relayer_keys = list(DEV_PRIVATE_KEYS[4 : 4 + args.relayers])
    extra = ("--gas-limit", str(args.gas_limit), "--silent")
    with EmbeddedChain(block_time=args.block_time, extra_args=extra) as chain:
        ledger, domain, subject_key, bank = asyncio.run(setup(chain.url, relayer_keys))
        if args.start_height:
            from ledger.rpc import RpcClient

            with RpcClient(chain.url, timeout=600) as rpc:
                t = time.perf_counter()
                rpc.call("anvil_mine", [hex(args.start_height)])
                print(f"mined {args.start_height} empty blocks in {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()
        grants = sign_grants(args.grants, subject_key, bank, domain)
        sign_s = time.perf_counter() - t
        print(
            f"pre-signed {len(grants)} grants in {sign_s:.1f}s ({len(grants) / sign_s:,.0f}/s, "
            "citizens' side, excluded below)"
        )
        if args.via_api:
            return run_via_api(args, chain.url, ledger, relayer_keys[0], grants)
        client_costs(grants, args.batch, domain, bank)
        share = -(-len(grants) // args.relayers)
        parts = [grants[i * share : (i + 1) * share] for i in range(args.relayers)]

        async def run_all() -> list[tuple[int, int, list[int]]]:
            return await asyncio.gather(
                *(
                    relay(chain.url, ledger, k, part, args.batch, args.window)
                    for k, part in zip(relayer_keys, parts, strict=True)
                )
            )

        t = time.perf_counter()
        results = asyncio.run(run_all())
        wall = time.perf_counter() - t
    confirmed = sum(r[0] for r in results)
    txs = sum(r[1] for r in results)
    blocks = sorted({b for r in results for b in r[2]})
    print(
        f"relayers={args.relayers} batch={args.batch} block_time={args.block_time or 'automine'}: "
        f"{confirmed} grants in {txs} tx, {len(blocks)} blocks "
        f"(heights {blocks[0]}..{blocks[-1]}), "
        f"{wall:.1f}s -> {confirmed / wall:,.0f} grants/s confirmed, {txs / wall:,.0f} tx/s"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "grants": len(grants),
                    "relayers": args.relayers,
                    "confirmed": confirmed,
                    "grants_per_s": confirmed / wall,
                    "tx_per_s": txs / wall,
                }
            )
        )
    return 0 if confirmed == len(grants) else 1


if __name__ == "__main__":
    sys.exit(main())
