"""Helpers for the API tests: a real uvicorn server on a free loopback port, problem checks.

Everything is real: the app runs in uvicorn on 127.0.0.1, the database is the
parametrised SQLite/PostgreSQL ``db_url``, the chain is an anvil process.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from ledger.manifest import Manifest, code_hash

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving ``create_app(settings)`` in a background thread."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("uvicorn exited during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)


@contextlib.contextmanager
def live_server(settings: ApiSettings) -> Iterator[LiveServer]:
    with LiveServer(settings) as srv:
        yield srv


class Anvil:
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
