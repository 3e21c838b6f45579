"""Benchmark the API: ``verify`` against a bare FastAPI + aiohttp ``eth_call`` of ``check``,
and batched pulls answering vault disclosures.

    .venv/bin/python scripts/bench_api.py [--requests 3000] [--concurrency 32] \
        [--pulls 1000] [--granted 10] [--api-tree DIR] [--json PATH] \
        [--replicas 2 --database postgresql]

Starts its own anvil on a free loopback port, deploys the ledger, creates a grant,
runs each server in its own process (one uvicorn worker each), and drives both
with the same aiohttp load generator in this process. Prints Markdown tables; with
``--json`` also writes the figures as JSON (``scripts/bench_all.py`` reads them).

Besides requests per second, each server's CPU time per request is read from
/proc (user + system, all its threads): on a loaded machine throughput follows
whoever else runs, while CPU per request is the server's own cost. ``--api-tree``
serves the API from another checkout (e.g. a worktree of main) with this driver,
for before/after figures from one script.

``--replicas N`` (N >= 2, with ``--database postgresql``) measures pulls only, against N
API processes serving the same ledger: one PostgreSQL database (created on
``DATASAFE_TEST_PG_URL``'s server, default 127.0.0.1:5432 trust auth, and dropped
afterwards), one anvil, one custodian key (the replicas share its nonces through the
advisory nonce lock and compete for the indexer lease, docs/operations.md "Several API
replicas"). The pulling clients are split evenly across the replicas; the figures are the
aggregate, with each replica's CPU per pull it served. ``--database postgresql`` with one
replica runs the usual one-process benchmark on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "api"))  # the test-suite's deployment helper


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the bare baseline -----------------------------------------------------------------------


def bare_app(rpc_url: str, ledger: str) -> Any:
    """One route: decode the query, one raw JSON-RPC eth_call of check over aiohttp, answer."""
    import contextlib

    from eth_abi.abi import decode, encode
    from eth_hash.auto import keccak
    from fastapi import FastAPI

    selector = keccak(b"check(bytes32,address,uint64)")[:4]
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        state["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        yield
        await state["session"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/check/{grant_id}")
    async def check(grant_id: str, grantee: str, fields_mask: int) -> dict[str, Any]:
        data = selector + encode(
            ["bytes32", "address", "uint64"], [bytes.fromhex(grant_id[2:]), grantee, fields_mask]
        )
        payload = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_call",
            "params": [{"to": ledger, "data": "0x" + data.hex()}, "latest"],
        }
        async with state["session"].post(rpc_url, json=payload) as resp:
            body = await resp.json(content_type=None)
        allowed, reason = decode(["bool", "uint8"], bytes.fromhex(body["result"][2:]))
        return {"allowed": allowed, "reason_code": reason}

    return app


def serve_bare(port: int, rpc_url: str, ledger: str) -> None:
    import uvicorn

    uvicorn.run(bare_app(rpc_url, ledger), host="127.0.0.1", port=port, log_level="warning")


# ---- helpers -----------------------------------------------------------------------------------


def wait_http(url: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def drive(
    requests: list[tuple[str, dict[str, str]]] | list[tuple[str, dict[str, str], bytes]],
    base: str,
    concurrency: int,
    bodies: list[bytes] | None = None,
    done_at: list[float] | None = None,
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    error_codes: dict[str, int] = {}
    queue = list(reversed(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while queue:
                item = queue.pop()
                path, headers = item[0], item[1]
                t0 = time.perf_counter()
                if len(item) == 3:
                    call = session.post(path, headers=headers, data=item[2])  # type: ignore[misc]
                else:
                    call = session.get(path, headers=headers)
                async with call as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        errors += 1
                        if errors == 1:
                            print("first error:", resp.status, body[:300])
                        try:
                            code = str(json.loads(body).get("code"))
                        except ValueError:
                            code = "?"
                        error_codes[f"{resp.status} {code}"] = (
                            error_codes.get(f"{resp.status} {code}", 0) + 1
                        )
                    elif bodies is not None:
                        bodies.append(body)
                latencies.append(time.perf_counter() - t0)
                if done_at is not None:
                    done_at.append(time.perf_counter())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if error_codes:
        print("errors by problem:", error_codes)
    return len(requests) / elapsed, latencies, errors


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads (Linux /proc; else 0)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(match: str) -> float:
    """CPU seconds of the live processes whose command line contains ``match`` (e.g. the
    PostgreSQL backends serving one database, which carry its name in their title)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if match.encode() in cmdline:
                total += cpu_seconds(int(proc.name))
    return total


def run_measured(
    requests: list[Any], base: str, concurrency: int, pid: int, **kw: Any
) -> tuple[float, list[float], int, float]:
    """``drive`` plus the server's CPU milliseconds per request over the run."""
    rps, lat, errs, cpu = run_split(requests, [base], concurrency, [pid], **kw)
    return rps, lat, errs, cpu[0]


def run_split(
    requests: list[Any], bases: list[str], concurrency: int, pids: list[int], **kw: Any
) -> tuple[float, list[float], int, list[float]]:
    """``run_measured`` over several servers at once: request ``i`` goes to server
    ``i % len(bases)``, each server gets its share of the ``concurrency`` clients; the rate
    is the aggregate (all requests over the slowest server's time), CPU per request is each
    server's over the requests it served."""
    parts = [requests[k :: len(bases)] for k in range(len(bases))]
    before = [cpu_seconds(pid) for pid in pids]

    async def together() -> list[tuple[float, list[float], int]]:
        share = max(1, concurrency // len(bases))
        return await asyncio.gather(
            *(drive(part, base, share, **kw) for part, base in zip(parts, bases, strict=True))
        )

    results = asyncio.run(together())
    cpu_ms = [
        (cpu_seconds(pid) - b) * 1000 / max(1, len(part))
        for pid, b, part in zip(pids, before, parts, strict=True)
    ]
    seconds = max(
        (len(part) / r[0] for part, r in zip(parts, results, strict=True) if r[0]), default=0.0
    )
    return (
        len(requests) / seconds if seconds else 0.0,
        [x for r in results for x in r[1]],
        sum(r[2] for r in results),
        cpu_ms,
    )


def bench_pull(
    world: Any,
    bases: list[str],
    n: int,
    concurrency: int,
    granted: int,
    pids: list[int],
    database: str = "sqlite",
    others: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Pulls of a 10-field 64 KB vault-sealed asset, access records batched.

    Each answer is a vault disclosure of the ``granted`` first fields (ciphertexts, Merkle
    proofs, key package, anchor), released only after its access record is confirmed.
    A sample of answers is opened with the bank's key against the chain's root afterwards
    (outside the timing) so the benchmark cannot pass on wrong answers. With several
    ``bases`` (replicas) the set-up goes through the first and the pulls are split.
    """
    import base64

    from eth_abi.abi import encode
    from eth_hash.auto import keccak

    from api.client import DataSafeClient
    from api.envelope import sign_request
    from ledger.uses import accessed_filter
    from vault.packages import Disclosure, build_key_package, open_disclosure
    from vault.sealing import seal_asset

    fields = [f"field{i}" for i in range(10)]
    values = [os.urandom(64 * 1024 // 10) for _ in fields]
    sid = keccak(b"pull bench schema")
    aid = keccak(b"pull bench asset")
    sealed = seal_asset(
        list(zip(fields, values, strict=True)),
        asset_id=aid,
        version=1,
        owner_key=world.enc_key(world.citizen).public_key,
    )
    sealed_bytes = sealed.to_bytes()
    base = bases[0]
    with DataSafeClient(base, world.issuer.key) as c:
        raw = world.raw_tx(
            world.issuer, "registerSchema", sid, 10, keccak(encode(["string[]"], [fields]))
        )
        c.post(
            "/v1/schemas",
            {
                "schema_id": "0x" + sid.hex(),
                "name": "bench",
                "fields": fields,
                "raw_transaction": raw,
            },
        )
        raw = world.raw_tx(
            world.issuer,
            "anchorAsset",
            aid,
            world.citizen.address,
            sid,
            sealed.root,
            sealed.ciphertext_digest,
        )
        c.post(
            "/v1/assets",
            {"sealed": base64.b64encode(sealed_bytes).decode(), "raw_transaction": raw},
        )
    mask = (1 << granted) - 1
    signed = world.sign_grant(
        world.citizen, asset_id=aid, grantee=world.bank.address, fields_mask=mask
    )
    gid = signed.pop("grant_id")
    package = build_key_package(
        sealed,
        world.enc_key(world.citizen),
        grant_id=bytes.fromhex(gid[2:]),
        fields=fields[:granted],
        grantee_key=world.enc_key(world.bank).public_key,
    )
    with DataSafeClient(base, world.citizen.key) as c:
        c.post(
            "/v1/grants",
            signed | {"key_package": base64.b64encode(package.to_bytes()).decode()},
        )
    reqs = []
    for i in range(n):
        body = json.dumps(
            world.sign_access(world.bank, gid, mask, nonce=i), separators=(",", ":")
        ).encode()
        env_ = sign_request(
            world.bank.key_bytes,
            chain_id=world.chain_id,
            ledger_address=world.ledger_address,
            method="POST",
            path="/v1/access",
            body=body,
        )
        reqs.append(("/v1/access", env_.to_headers() | {"content-type": "application/json"}, body))
    bodies: list[bytes] = []
    done_at: list[float] = []
    others = others or {}  # name -> CPU seconds so far of another process taking part
    others_before = {name: read() for name, read in others.items()}
    rps, lat, errs, cpus = run_split(reqs, bases, concurrency, pids, bodies=bodies, done_at=done_at)
    cpu_ms = sum(cpus) / len(cpus)
    others_ms = {name: (read() - others_before[name]) * 1000 / n for name, read in others.items()}
    answers = [json.loads(b) for b in bodies]
    txs = {a["access"]["tx_hash"] for a in answers}
    # sustained: the slowest and fastest 1,000-pull window
    window = min(1000, max(1, n // 4))
    done_at.sort()
    rates = [
        window / (done_at[i + window - 1] - done_at[i])
        for i in range(0, len(done_at) - window + 1, window)
        if done_at[i + window - 1] > done_at[i]
    ]
    # correctness (untimed): every answer names its use; a sample opens against the chain root
    root = bytes(world.ledger.functions.getAsset(aid).call()[5])
    assert sorted(a["use"] for a in answers) == list(range(1, len(answers) + 1))
    for a in answers[:: max(1, len(answers) // 50)]:
        got = open_disclosure(
            Disclosure.from_bytes(base64.b64decode(a["disclosure"])),
            world.enc_key(world.bank),
            grant_id=bytes.fromhex(gid[2:]),
            expected_root=root,
        )
        assert got == dict(zip(fields[:granted], values[:granted], strict=True))
    # An unlimited grant has no use counter on chain: its uses are its Accessed events.
    w3 = world.ledger.w3
    span = accessed_filter(world.ledger.address, [bytes.fromhex(gid[2:])], 0, w3.eth.block_number)
    uses = len(w3.eth.get_logs(span))
    assert uses == len(answers), (uses, len(answers))
    size = len(base64.b64decode(answers[0]["disclosure"])) if answers else 0
    where = f" across {len(bases)} API replicas on {database} (aggregate)" if len(bases) > 1 else ""
    print(
        f"\npull: {n} pulls of a 10-field {len(sealed_bytes) / 1024:.0f} KiB sealed asset, "
        f"{granted} field(s) granted, concurrency {concurrency}{where}; "
        f"disclosure {size / 1024:.1f} KiB\n"
    )
    per = " (each replica)" if len(bases) > 1 else ""
    print(
        "| pulls/s | slowest / fastest window pulls/s | p50 ms | p99 ms | errors "
        f"| access transactions | pulls per tx | uses on chain | API CPU ms per pull{per} |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {rps:,.0f} | {min(rates, default=0):,.0f} / {max(rates, default=0):,.0f} "
        f"({window}-pull windows) | {pct(lat, 0.5):.2f} | {pct(lat, 0.99):.2f} | {errs} "
        f"| {len(txs)} | {len(bodies) / max(1, len(txs)):.1f} | {uses} "
        f"| {' / '.join(f'{c:.2f}' for c in cpus)} |"
    )
    print(f"\npulls/s per {window}-pull window, in order: " + ", ".join(f"{r:.0f}" for r in rates))
    if database != "sqlite":
        print(
            "CPU ms per pull elsewhere: " + ", ".join(f"{k} {v:.2f}" for k, v in others_ms.items())
        )
    return {
        "pulls": n,
        "pulls_per_s": rps,
        "window": window,
        "window_min_per_s": min(rates, default=0.0),
        "window_max_per_s": max(rates, default=0.0),
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
        "errors": errs,
        "access_transactions": len(txs),
        "uses_on_chain": uses,
        "cpu_ms_per_pull": cpu_ms,
        "cpu_ms_per_pull_each": cpus,
        "others_cpu_ms_per_pull": others_ms,
        "replicas": len(bases),
        "database": database,
    }


def _merge(
    parts: list[tuple[float, list[float], int, float]],
) -> tuple[float, list[float], int, float]:
    """Runs of one server as one: requests over summed time, CPU per request weighted."""
    counts = [max(1, len(p[1])) for p in parts]
    seconds = sum(cnt / p[0] for cnt, p in zip(counts, parts, strict=True) if p[0])
    total = sum(counts)
    return (
        total / seconds if seconds else 0.0,
        [x for p in parts for x in p[1]],
        sum(p[2] for p in parts),
        sum(p[3] * cnt for cnt, p in zip(counts, parts, strict=True)) / total,
    )


def pg_database(action: str, name: str = "") -> str:
    """Create a throwaway PostgreSQL database (its URL) or drop ``name``, as the tests do."""
    import sqlalchemy as sa

    admin = sa.make_url(
        os.environ.get("DATASAFE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    )
    name = name or f"bench_api_{secrets.token_hex(6)}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if action == "create":
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            else:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
    return admin.set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pulls", type=int, default=1000)
    parser.add_argument("--granted", type=int, default=10, choices=range(1, 11))
    parser.add_argument("--serve-bare", nargs=3, metavar=("PORT", "RPC", "LEDGER"))
    parser.add_argument(
        "--api-tree", type=Path, default=REPO, help="serve the API from this checkout"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--replicas", type=int, default=1, help="API processes (pulls only if >1)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    if args.replicas < 1 or (args.replicas > 1 and args.database != "postgresql"):
        parser.error("--replicas N > 1 needs --database postgresql (SQLite: one process)")
    if args.serve_bare:
        serve_bare(int(args.serve_bare[0]), args.serve_bare[1], args.serve_bare[2])
        return

    from _api_world import DEV_KEYS, Actor, World

    from api.envelope import sign_request
    from ledger.chain import find_anvil

    anvil_exe = str(find_anvil())
    anvil_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    pg_url = pg_database("create") if args.database == "postgresql" else ""
    try:
        procs.append(
            subprocess.Popen(
                [anvil_exe, "--host", "127.0.0.1", "--port", str(anvil_port), "--silent"],
                stdout=subprocess.DEVNULL,
            )
        )
        rpc = f"http://127.0.0.1:{anvil_port}"
        wait_http(rpc)
        world = World(rpc)
        custodian = Actor("custodian", DEV_KEYS[9])
        world.admit(custodian, 16, 8)
        from eth_abi.abi import encode
        from eth_hash.auto import keccak

        fields = [f"f{i}" for i in range(10)]
        schema_id = keccak(b"bench schema")
        world.transact(
            world.issuer, "registerSchema", schema_id, 10, keccak(encode(["string[]"], [fields]))
        )
        asset_id = keccak(b"bench asset")
        world.transact(
            world.issuer,
            "anchorAsset",
            asset_id,
            world.citizen.address,
            schema_id,
            b"\x01" * 32,
            b"\x02" * 32,
        )
        nonce = 42
        terms = (asset_id, world.bank.address, 1, 0b11, 0, world.now() + 86_400, 0, 0)
        world.transact(world.citizen, "grant", terms, nonce)
        grant_id = (
            "0x"
            + bytes(world.ledger.functions.grantIdOf(world.citizen.address, nonce).call()).hex()
        )

        from _api_server import world_manifest

        manifest = world_manifest(world, tmp / "manifest.json")
        api_ports, bare_port = [free_port() for _ in range(args.replicas)], free_port()
        env = os.environ | {
            "DATASAFE_API_RPC_URL": rpc,
            "DATASAFE_API_MANIFEST_PATH": str(manifest),
            "DATASAFE_API_DATABASE_URL": pg_url or f"sqlite:///{tmp / 'api.db'}",
            "DATASAFE_API_BLOB_DIR": str(tmp / "blobs"),
            "DATASAFE_API_CUSTODIAN_KEY": custodian.key,
            "DATASAFE_API_LOG_LEVEL": "WARNING",
        }
        api_cmd = [sys.executable, "-m", "api"]
        if os.environ.get("BENCH_PYSPY"):
            api_cmd = [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "-o",
                os.environ["BENCH_PYSPY"],
                "-f",
                "raw",
                "--nonblocking",
                "-r",
                os.environ.get("BENCH_PYSPY_RATE", "200"),
                "--",
                *api_cmd,
            ]
        api_procs = []
        for k, port in enumerate(api_ports):  # one by one: the first migrates the database
            cmd = api_cmd if k == 0 else [sys.executable, "-m", "api"]
            api_procs.append(
                subprocess.Popen(
                    cmd, env=env | {"DATASAFE_API_PORT": str(port)}, cwd=args.api_tree.resolve()
                )
            )
            procs.append(api_procs[-1])
            wait_http(f"http://127.0.0.1:{port}/healthz")
        api_proc, api_port = api_procs[0], api_ports[0]
        if args.replicas == 1:
            bare_proc = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve-bare",
                    str(bare_port),
                    rpc,
                    world.ledger_address,
                ],
                cwd=REPO,
            )
            procs.append(bare_proc)
            wait_http(f"http://127.0.0.1:{bare_port}/docs")

        n, c = args.requests, args.concurrency
        bare_reqs = [
            (f"/check/{grant_id}?grantee={world.bank.address}&fields_mask=1", {}) for _ in range(n)
        ]
        api_reqs = []
        for _ in range(max(n, 200 * args.replicas)):
            path = f"/v1/grants/{grant_id}/verify?fields_mask=1"
            env_ = sign_request(
                world.bank.key_bytes,
                chain_id=world.chain_id,
                ledger_address=world.ledger_address,
                method="GET",
                path=path,
                nonce=secrets.token_bytes(32),
            )
            api_reqs.append((path, env_.to_headers()))
        api_urls = [f"http://127.0.0.1:{port}" for port in api_ports]
        others = {"anvil": lambda: cpu_seconds(procs[0].pid)}
        if pg_url:
            others["PostgreSQL backends"] = lambda: cpu_of(pg_url.rsplit("/", 1)[1])
        pids = [p.pid for p in api_procs]
        pull_args = (args.pulls, c, args.granted, pids, args.database, others)
        if args.replicas > 1 or n <= 200:  # pulls only, each API process warmed up alike
            for k, url in enumerate(api_urls):
                asyncio.run(drive(api_reqs[200 * k : 200 * (k + 1)], url, c))
            why = f"{args.replicas} replicas" if args.replicas > 1 else "--requests <= 200"
            print(f"\nverify: not measured ({why}: pulls only, after 200 verify per process)")
            pull = bench_pull(world, api_urls, *pull_args)
            if args.json:
                figures = {"load_average": os.getloadavg()[0], "cpus": os.cpu_count()}
                args.json.write_text(json.dumps(figures | {"pull": pull}, indent=1))
            return
        # warm-up both
        asyncio.run(drive(bare_reqs[:200], f"http://127.0.0.1:{bare_port}", c))
        asyncio.run(drive(api_reqs[:200], f"http://127.0.0.1:{api_port}", c))
        # Alternating halves, so a change in the machine's load hits both alike.
        half = (n - 200) // 2
        bare_url, api_url = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{api_port}"
        runs: dict[str, list[tuple[float, list[float], int, float]]] = {"bare": [], "ours": []}
        for part in (slice(200, 200 + half), slice(200 + half, n)):
            runs["bare"].append(run_measured(bare_reqs[part], bare_url, c, bare_proc.pid))
            runs["ours"].append(run_measured(api_reqs[part], api_url, c, api_proc.pid))
        bare, ours = (_merge(runs[k]) for k in ("bare", "ours"))
        rows = [
            ("bare FastAPI + aiohttp eth_call(check)", bare),
            ("DataSafe API GET /v1/grants/{id}/verify", ours),
        ]
        print(f"\nverify: {n - 200} requests, concurrency {c}, one uvicorn worker each\n")
        print("| endpoint | req/s | p50 ms | p99 ms | errors | server CPU ms per request |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, (rps, lat, errs, cpu_ms) in rows:
            print(
                f"| {name} | {rps:,.0f} | {pct(lat, 0.5):.2f} | {pct(lat, 0.99):.2f} | {errs} "
                f"| {cpu_ms:.3f} |"
            )
        cpu_ratio = bare[3] / ours[3] if ours[3] else 0.0
        print(
            f"\nratio (ours / bare): {ours[0] / bare[0]:.2f}x; "
            f"by CPU per request (bare / ours): {cpu_ratio:.2f}x; "
            f"mean latency ours {statistics.mean(ours[1]) * 1000:.2f} ms"
        )
        pull = bench_pull(world, api_urls, *pull_args)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "load_average": os.getloadavg()[0],
                        "cpus": os.cpu_count(),
                        "verify": {
                            "requests": n - 200,
                            "bare_rps": bare[0],
                            "ours_rps": ours[0],
                            "ratio": ours[0] / bare[0],
                            "bare_cpu_ms": bare[3],
                            "ours_cpu_ms": ours[3],
                            "cpu_ratio": cpu_ratio,
                            "errors": bare[2] + ours[2],
                        },
                        "pull": pull,
                    },
                    indent=1,
                )
            )
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        if pg_url:
            pg_database("drop", pg_url.rsplit("/", 1)[1])


if __name__ == "__main__":
    main()
