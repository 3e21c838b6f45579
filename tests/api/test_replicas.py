"""Two API processes on one PostgreSQL and one chain, one of them SIGKILLed mid-run.

Real processes (``python -m api``), real anvil, real PostgreSQL, real HTTP. 1,000
signed grants are split across both replicas and sent concurrently; some are sent
to both at once; the replica holding the indexer lease is killed with SIGKILL while
the grants flow. The chain must end with every grant exactly once, the custodian's
nonces never collide, the survivor must take the lease over and the index must end
with exactly the grants of the chain.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from _api_seed import key_package, seed_asset
from _api_server import METRICS_HEADERS, world_settings
from _api_world import World
from _fixtures import ApiProcess, start_api_process
from _index_state import index_state
from prometheus_client.parser import text_string_to_metric_families

from api.client import AsyncDataSafeClient
from ledger.abi import ledger_abi

N_GRANTS = 1000
N_DUPLICATES = 20  # of those, sent to both replicas at the same time
KILL_AFTER = 300  # completed grants before the indexer-holding replica is killed
CONCURRENCY = 16  # in-flight requests per replica
TX_TIMEOUT = 5  # relays of the dead replica count as abandoned ~10 s after its death


class Replica:
    """One replica: ``python -m api`` (``_fixtures.start_api_process``) and its metrics."""

    def __init__(self, name: str, api: ApiProcess) -> None:
        self.name = name
        self.api = api
        self.proc = api.proc
        self.url = api.url

    def metrics(self) -> dict[str, float]:
        text = httpx.get(self.url + "/metrics", headers=METRICS_HEADERS, timeout=10).text
        return {
            s.name + ("" if not s.labels else str(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        }

    def stop(self) -> None:
        self.api.stop()


@pytest.fixture
def pg_url(pg_databases: Any) -> str:
    return str(pg_databases.create("replicas"))


@pytest.fixture
def replicas(world: World, pg_url: str, tmp_path: Path) -> Iterator[list[Replica]]:
    settings = world_settings(
        world,
        pg_url,
        tmp_path,
        run_indexer=True,
        indexer_interval_seconds=0.2,
        tx_timeout_seconds=TX_TIMEOUT,
    )
    started: list[Replica] = []
    try:
        # The first one migrates the schema; the second starts against a ready database.
        for name in ("replica-a", "replica-b"):
            api = start_api_process(settings, tmp_path / f"{name}.log")
            started.append(Replica(name, api))
        yield started
    finally:
        for replica in started:
            replica.stop()


def _leader(replicas: list[Replica], timeout: float = 15) -> Replica:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [r for r in replicas if r.proc.poll() is None]
        leaders = [r for r in alive if r.metrics()["datasafe_indexer_leader"] == 1]
        assert len(leaders) <= 1, "two replicas write the index at once"
        if leaders:
            return leaders[0]
        time.sleep(0.1)
    raise AssertionError("no replica took the indexer lease")


def _grant_bodies(world: World, pg_url: str) -> list[dict[str, Any]]:
    asset = seed_asset(world, pg_url)
    expiry = world.now() + 86_400
    bodies = []
    for _ in range(N_GRANTS):
        signed = world.sign_grant(
            world.citizen,
            asset_id=asset.asset_id,
            grantee=world.bank.address,
            fields_mask=0b11,
            expiry=expiry,
        )
        gid = signed.pop("grant_id")
        package = key_package(world, asset, gid, 0b11).to_bytes()
        bodies.append(signed | {"key_package": base64.b64encode(package).decode(), "_id": gid})
    return bodies


def _granted_on_chain(world: World) -> list[str]:
    topic = "0x" + ledger_abi().events_by_name["ConsentGranted"].topic0.hex()
    logs = world.w3.eth.get_logs(
        {
            "address": world.ledger_address,
            "fromBlock": world.deploy_block,
            "toBlock": "latest",
            "topics": [topic],
        }
    )
    return ["0x" + bytes(lg["topics"][1]).hex() for lg in logs]


async def _drive(
    world: World, replicas: list[Replica], leader: Replica, bodies: list[dict[str, Any]]
) -> tuple[dict[str, list[int]], list[dict[str, Any]], float]:
    """Send every grant (duplicates to both); SIGKILL ``leader`` after KILL_AFTER successes."""
    statuses: dict[str, list[int]] = {b["_id"]: [] for b in bodies}
    lost: list[dict[str, Any]] = []  # requests the killed replica never answered
    killed_at = 0.0
    done = 0
    limits = httpx.Limits(max_connections=CONCURRENCY)
    clients = [
        AsyncDataSafeClient(
            r.url,
            world.citizen.key,
            chain_id=world.chain_id,
            ledger_address=world.ledger_address,
            http=httpx.AsyncClient(base_url=r.url, timeout=60, limits=limits),
        )
        for r in replicas
    ]
    slots = [asyncio.Semaphore(CONCURRENCY) for _ in replicas]

    async def post(i: int, body: dict[str, Any]) -> None:
        nonlocal done, killed_at
        async with slots[i]:
            payload = {k: v for k, v in body.items() if k != "_id"}
            try:
                resp = await clients[i].request("POST", "/v1/grants", json_body=payload)
            except httpx.TransportError:
                assert replicas[i] is leader and killed_at, "a live replica dropped a request"
                lost.append(body)
                return
            statuses[body["_id"]].append(resp.status_code)
            assert resp.status_code in (201, 409), resp.text
            if resp.status_code == 201:
                done += 1
                if done == KILL_AFTER:
                    killed_at = time.monotonic()
                    leader.proc.send_signal(signal.SIGKILL)

    jobs = []
    for n, body in enumerate(bodies):
        jobs.append(post(n % 2, body))
        if n < N_DUPLICATES:
            jobs.append(post((n + 1) % 2, body))  # the same signed grant, to the other one
    try:
        await asyncio.gather(*jobs)
    finally:
        for c in clients:
            await c.aclose()
    return statuses, lost, killed_at


async def _retry_on(
    world: World, survivor: Replica, lost: list[dict[str, Any]], statuses: dict[str, list[int]]
) -> None:
    """What a client does after a connection reset: send the same signed grant elsewhere.

    The dead replica's claim stays pending until the survivor (lease holder) settles it
    as abandoned; then the retry either relays it or learns that it already was.
    """
    slots = asyncio.Semaphore(CONCURRENCY)
    async with AsyncDataSafeClient(
        survivor.url,
        world.citizen.key,
        chain_id=world.chain_id,
        ledger_address=world.ledger_address,
        http=httpx.AsyncClient(
            base_url=survivor.url, timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY)
        ),
    ) as client:

        async def retry(body: dict[str, Any]) -> None:
            payload = {k: v for k, v in body.items() if k != "_id"}
            deadline = time.monotonic() + 4 * TX_TIMEOUT + 20
            while True:
                async with slots:
                    resp = await client.request("POST", "/v1/grants", json_body=payload)
                assert resp.status_code in (201, 409), resp.text
                if resp.status_code == 201 or "already relayed" in resp.text:
                    statuses[body["_id"]].append(resp.status_code)
                    return
                assert time.monotonic() < deadline, f"{body['_id']} still pending: {resp.text}"
                await asyncio.sleep(0.5)

        await asyncio.gather(*(retry(body) for body in lost))


def test_two_replicas_relay_1000_grants_and_survive_a_sigkill(
    world: World, pg_url: str, replicas: list[Replica]
) -> None:
    bodies = _grant_bodies(world, pg_url)
    leader = _leader(replicas)
    survivor = next(r for r in replicas if r is not leader)
    started = time.monotonic()

    statuses, lost, killed_at = asyncio.run(_drive(world, replicas, leader, bodies))
    assert killed_at, "the leader was never killed"
    # The survivor takes the indexer lease over (a bounded wait, generous for a loaded machine:
    # the suite times nothing; how fast a failover is belongs to the benchmarks).
    assert _leader([survivor], timeout=30) is survivor
    asyncio.run(_retry_on(world, survivor, lost, statuses))
    elapsed = time.monotonic() - started

    # Every grant is on chain exactly once.
    ours = {b["_id"] for b in bodies}
    on_chain = [g for g in _granted_on_chain(world) if g in ours]
    assert len(on_chain) == N_GRANTS and set(on_chain) == ours
    # Of a signed grant sent to both replicas at once, exactly one relayed it.
    for body in bodies[:N_DUPLICATES]:
        got = statuses[body["_id"]]
        assert got.count(201) <= 1 and 409 in got, (body["_id"], got)
    assert sum(s.count(201) for s in statuses.values()) <= N_GRANTS

    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            # No nonce collision: every custodian nonce the chain used went to exactly one
            # journaled transaction (journaled before its broadcast, by whichever replica).
            custodian = world.custodian.address  # type: ignore[attr-defined]
            rows = conn.execute(
                sa.text("SELECT tx_hash, nonce FROM api_tx_journal WHERE sender = :s"),
                {"s": custodian.lower()},
            ).all()
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionReceipt", "params": [h]}
            for i, (h, _) in enumerate(rows)
        ]
        receipts = {r["id"]: r["result"] for r in httpx.post(world.rpc_url, json=batch).json()}
        mined_nonces = sorted(int(n) for i, (_, n) in enumerate(rows) if receipts[i] is not None)
        chain_nonce = world.w3.eth.get_transaction_count(custodian)
        assert mined_nonces == list(range(mined_nonces[0], chain_nonce))
        assert len(mined_nonces) >= N_GRANTS
        with engine.connect() as conn:
            # Every relayed grant's record and key package is stored, once.
            stored = conn.execute(sa.text("SELECT count(*) FROM api_grants")).scalar_one()
            packages = conn.execute(sa.text("SELECT count(*) FROM api_key_packages")).scalar_one()
            assert stored == N_GRANTS and packages == N_GRANTS
            assert not conn.execute(
                sa.text("SELECT id FROM api_relays WHERE status = 'pending'")
            ).all()
        # The survivor's index ends with exactly the chain's grants. Cursor and rows are
        # read in one statement (one snapshot): read in two, a range committed between them
        # paired the new cursor with the old rows (994 of 1,000 grants "at the head").
        head = world.w3.eth.block_number
        deadline = time.monotonic() + 30
        while True:
            with engine.connect() as conn:
                cursor, indexed = index_state(conn)
            if (cursor is not None and cursor >= head) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert cursor is not None and cursor >= head
        assert indexed == set(_granted_on_chain(world)) and len(indexed) == N_GRANTS
    finally:
        engine.dispose()

    m = survivor.metrics()
    assert m["datasafe_custodian_nonce_errors"] == 0
    assert m["datasafe_indexer_leader"] == 1
    assert m["datasafe_indexer_lag_blocks"] <= 1
    print(
        f"\n{N_GRANTS} grants, two replicas, {len(lost)} retried after the SIGKILL: {elapsed:.1f}s"
    )
