"""Helpers for the API tests: a real uvicorn server on a free loopback port, problem checks.

Everything is real: the app runs in uvicorn on 127.0.0.1, the database is the
parametrised SQLite/PostgreSQL ``db_url``, the chain is an anvil process.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from api.settings import ApiSettings
from ledger.manifest import Manifest, code_hash

# tests/ (its _fixtures) for importers that put only tests/api on the path (scripts/bench_*).
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fixtures import REPO, LiveServer, free_port, start_api

__all__ = ["REPO", "LiveServer", "free_port", "live_server"]


@contextlib.contextmanager
def live_server(settings: ApiSettings) -> Iterator[LiveServer]:
    """The API in this process (``tests/_fixtures.start_api``)."""
    with start_api(settings) as srv:
        yield srv


class Anvil:
    """An anvil started by hand (``scripts/bench_hostile.py``; the tests use
    ``_fixtures.start_anvil``)."""

    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = proc

    def rpc(self, method: str, params: list[object]) -> object:
        r = httpx.post(
            self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
        body = r.json()
        if "error" in body:
            raise RuntimeError(body["error"])
        return body["result"]


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict[str, object]:
    """The response is an RFC 9457 problem with this status and stable type."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = resp.json()
    assert body["type"] == f"urn:datasafe:problem:{code}"
    assert body["code"] == code
    assert body["status"] == status
    assert body["detail"]
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


#: The bearer token the tests' servers require on ``GET /metrics``.
METRICS_TOKEN = "test-metrics-token"
METRICS_HEADERS = {"authorization": f"Bearer {METRICS_TOKEN}"}


#: A fixed "ledger" address for envelope-only tests (the domain binds to it).
# No contract is ever deployed here (not a CREATE address of a dev key), whatever ran before.
FAKE_LEDGER = "0x00000000000000000000000000000000DeaDBeef"


def write_manifest(
    path: Path, *, chain_id: int, ledger: str, block: int, code: bytes = b"", deploy_tx: str = ""
) -> Path:
    """A full ``ledger.manifest.Manifest`` for a deployment the tests made themselves."""
    Manifest(
        chain_id=chain_id,
        ledger_address=ledger,
        deploy_block=block,
        deploy_tx=deploy_tx or "0x" + "00" * 32,
        code_hash=code_hash(code.hex()),
        governor=ledger,
        compiler="test",
        artifact_source_hash="test",
        deployed_at=0,
    ).save(path)
    return path


def world_manifest(world: Any, path: Path, *, chain_id: int | None = None) -> Path:
    return write_manifest(
        path,
        chain_id=world.chain_id if chain_id is None else chain_id,
        ledger=world.ledger_address,
        block=world.deploy_block,
        code=bytes(world.w3.eth.get_code(world.ledger_address)),
    )


def world_settings(world: Any, db_url: str, tmp_path: Path, **overrides: object) -> ApiSettings:
    manifest = world_manifest(world, tmp_path / "manifest.json")
    values: dict[str, object] = {
        "rpc_url": world.rpc_url,
        "manifest_path": manifest,
        "database_url": db_url,
        "blob_dir": tmp_path / "blobs",
        "custodian_key": world.custodian.key,  # type: ignore[attr-defined]
        "run_indexer": False,
        "metrics_token": METRICS_TOKEN,
    }
    values.update(overrides)
    return ApiSettings(**values)  # type: ignore[arg-type]
