"""Benchmark the API: ``verify`` against a bare FastAPI + aiohttp ``eth_call`` of ``check``,
and batched pulls answering vault disclosures.

    .venv/bin/python scripts/bench_api.py [--requests 3000] [--concurrency 32] \
        [--pulls 1000] [--granted 10]

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
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def bench_pull(world: Any, base: str, n: int, concurrency: int, granted: int) -> None:
    """Pulls of a 10-field 64 KB vault-sealed asset, access records batched.

    Each answer is a vault disclosure of the ``granted`` first fields (ciphertexts, Merkle
    proofs, key package, anchor), released only after its access record is confirmed.
    A sample of answers is opened with the bank's key against the chain's root afterwards
    (outside the timing) so the benchmark cannot pass on wrong answers.
    """
    import base64

    from eth_abi.abi import encode
    from eth_hash.auto import keccak

    from api.client import DataSafeClient
    from api.envelope import sign_request
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
    rps, lat, errs = asyncio.run(drive(reqs, base, concurrency, bodies, done_at))
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
    uses = world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[7]
    assert uses == len(answers), (uses, len(answers))
    size = len(base64.b64decode(answers[0]["disclosure"])) if answers else 0
    print(
        f"\npull: {n} pulls of a 10-field {len(sealed_bytes) / 1024:.0f} KiB sealed asset, "
        f"{granted} field(s) granted, concurrency {concurrency}; disclosure {size / 1024:.1f} KiB\n"
    )
    print(
        "| pulls/s | slowest / fastest window pulls/s | p50 ms | p99 ms | errors "
        "| access transactions | pulls per tx | uses on chain |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {rps:,.0f} | {min(rates, default=0):,.0f} / {max(rates, default=0):,.0f} "
        f"({window}-pull windows) | {pct(lat, 0.5):.2f} | {pct(lat, 0.99):.2f} | {errs} "
        f"| {len(txs)} | {len(bodies) / max(1, len(txs)):.1f} | {uses} |"
    )
    print(f"\npulls/s per {window}-pull window, in order: " + ", ".join(f"{r:.0f}" for r in rates))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pulls", type=int, default=1000)
    parser.add_argument("--granted", type=int, default=10, choices=range(1, 11))
    parser.add_argument("--serve-bare", nargs=3, metavar=("PORT", "RPC", "LEDGER"))
    args = parser.parse_args()
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
        terms = (asset_id, world.bank.address, 1, 0b11, 0, world.now() + 86_400, 0)
        world.transact(world.citizen, "grant", terms, nonce)
        grant_id = (
            "0x"
            + bytes(world.ledger.functions.grantIdOf(world.citizen.address, nonce).call()).hex()
        )

        from _api_server import world_manifest

        manifest = world_manifest(world, tmp / "manifest.json")
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
        bench_pull(world, f"http://127.0.0.1:{api_port}", args.pulls, c, args.granted)
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
