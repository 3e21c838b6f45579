"""Benchmark the API: ``verify`` against a bare FastAPI + aiohttp ``eth_call`` of ``check``,
and (when the vault is available) batched pulls.

    .venv/bin/python scripts/bench_api.py [--requests 3000] [--concurrency 32]

Starts its own anvil on a free loopback port, deploys the ledger, creates a grant,
runs each server in its own process (one uvicorn worker each), and drives both
with the same aiohttp load generator in this process. Prints a Markdown table.
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

    from eth_abi import decode, encode
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


def wait_http(url: str, timeout: float = 30) -> None:
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
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
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
                    elif bodies is not None:
                        bodies.append(body)
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(requests) / elapsed, latencies, errors


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def bench_pull(world: Any, base: str, n: int, concurrency: int) -> None:
    """Pulls of a 10-field 64 KB asset through the API, access records batched."""
    import base64
    import hashlib

    from eth_abi import encode
    from eth_hash.auto import keccak

    from api.client import DataSafeClient
    from api.envelope import sign_request

    fields = [f"field{i}" for i in range(10)]
    sid = keccak(b"pull bench schema")
    sealed = os.urandom(64 * 1024)
    aid = keccak(b"pull bench asset")
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
            keccak(b"r"),
            hashlib.sha256(sealed).digest(),
        )
        c.post("/v1/assets", {"sealed": base64.b64encode(sealed).decode(), "raw_transaction": raw})
    signed = world.sign_grant(
        world.citizen, asset_id=aid, grantee=world.bank.address, fields_mask=(1 << 10) - 1
    )
    gid = signed.pop("grant_id")
    with DataSafeClient(base, world.citizen.key) as c:
        c.post("/v1/grants", signed | {"key_package": base64.b64encode(os.urandom(600)).decode()})
    reqs = []
    for i in range(n):
        body = json.dumps(
            world.sign_access(world.bank, gid, (1 << 10) - 1, nonce=i), separators=(",", ":")
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
    rps, lat, errs = asyncio.run(drive(reqs, base, concurrency, bodies))
    txs = {json.loads(b)["access"]["tx_hash"] for b in bodies}
    print(f"\npull: {n} pulls of a 10-field 64 KB asset, concurrency {concurrency}\n")
    print("| pulls/s | p50 ms | p99 ms | errors | access transactions | pulls per tx |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {rps:,.0f} | {pct(lat, 0.5):.2f} | {pct(lat, 0.99):.2f} | {errs} | {len(txs)} "
        f"| {len(bodies) / max(1, len(txs)):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pulls", type=int, default=1000)
    parser.add_argument("--serve-bare", nargs=3, metavar=("PORT", "RPC", "LEDGER"))
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(int(args.serve_bare[0]), args.serve_bare[1], args.serve_bare[2])
        return

    from _api_world import DEV_KEYS, Actor, World

    from api.envelope import sign_request

    anvil_exe = shutil.which("anvil", path=str(REPO / "node_modules" / ".bin"))
    assert anvil_exe, "anvil not found"
    anvil_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
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
        from eth_abi import encode
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
        terms = (asset_id, world.bank.address, 1, 0b11, 0, world.now() + 86_400, 0)
        world.transact(world.citizen, "grant", terms, nonce)
        grant_id = (
            "0x"
            + bytes(world.ledger.functions.grantIdOf(world.citizen.address, nonce).call()).hex()
        )

        manifest = tmp / "manifest.json"
        manifest.write_text(
            json.dumps(
                {
                    "chainId": world.chain_id,
                    "ledger": world.ledger_address,
                    "block": world.deploy_block,
                }
            )
        )
        api_port, bare_port = free_port(), free_port()
        env = os.environ | {
            "DATASAFE_API_RPC_URL": rpc,
            "DATASAFE_API_MANIFEST_PATH": str(manifest),
            "DATASAFE_API_DATABASE_URL": f"sqlite:///{tmp / 'api.db'}",
            "DATASAFE_API_BLOB_DIR": str(tmp / "blobs"),
            "DATASAFE_API_CUSTODIAN_KEY": custodian.key,
            "DATASAFE_API_LOG_LEVEL": "WARNING",
            "DATASAFE_API_PORT": str(api_port),
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
                "-r",
                "200",
                "--",
                *api_cmd,
            ]
        procs.append(subprocess.Popen(api_cmd, env=env, cwd=REPO))
        procs.append(
            subprocess.Popen(
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
        )
        wait_http(f"http://127.0.0.1:{api_port}/healthz")
        wait_http(f"http://127.0.0.1:{bare_port}/docs")

        n, c = args.requests, args.concurrency
        bare_reqs = [
            (f"/check/{grant_id}?grantee={world.bank.address}&fields_mask=1", {}) for _ in range(n)
        ]
        api_reqs = []
        for _ in range(n):
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
        # warm-up both
        asyncio.run(drive(bare_reqs[:200], f"http://127.0.0.1:{bare_port}", c))
        asyncio.run(drive(api_reqs[:200], f"http://127.0.0.1:{api_port}", c))
        bare = asyncio.run(drive(bare_reqs[200:], f"http://127.0.0.1:{bare_port}", c))
        ours = asyncio.run(drive(api_reqs[200:], f"http://127.0.0.1:{api_port}", c))
        rows = [
            ("bare FastAPI + aiohttp eth_call(check)", bare),
            ("DataSafe API GET /v1/grants/{id}/verify", ours),
        ]
        print(f"\nverify: {n - 200} requests, concurrency {c}, one uvicorn worker each\n")
        print("| endpoint | req/s | p50 ms | p99 ms | errors |")
        print("|---|---:|---:|---:|---:|")
        for name, (rps, lat, errs) in rows:
            print(f"| {name} | {rps:,.0f} | {pct(lat, 0.5):.2f} | {pct(lat, 0.99):.2f} | {errs} |")
        print(
            f"\nratio (ours / bare): {ours[0] / bare[0]:.2f}x; "
            f"mean latency ours {statistics.mean(ours[1]) * 1000:.2f} ms"
        )
        bench_pull(world, f"http://127.0.0.1:{api_port}", args.pulls, c)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
