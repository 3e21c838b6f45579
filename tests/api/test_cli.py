"""The ``datasafe-api`` console script and ``python -m api`` start a real service."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from _api_server import REPO, free_port, world_manifest
from _api_world import World


def _serve(cmd: list[str], world: World, tmp_path: Path) -> dict[str, object]:
    port = free_port()
    env = os.environ | {
        "DATASAFE_API_RPC_URL": world.rpc_url,
        "DATASAFE_API_MANIFEST_PATH": str(world_manifest(world, tmp_path / "manifest.json")),
        "DATASAFE_API_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
        "DATASAFE_API_BLOB_DIR": str(tmp_path / "blobs"),
        "DATASAFE_API_RUN_INDEXER": "false",
    }
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"{cmd} did not start: {err[-2000:]}")
                time.sleep(0.1)
        assert resp.status_code == 200, resp.text
        info = httpx.get(f"http://127.0.0.1:{port}/v1/info", timeout=5).json()
        return dict(info)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_console_script_serves(world: World, tmp_path: Path) -> None:
    exe = shutil.which("datasafe-api", path=str(REPO / ".venv" / "bin"))
    assert exe is not None, "install the package: pip install -e . --no-deps"
    info = _serve([exe], world, tmp_path)
    assert str(info["ledger_address"]).lower() == world.ledger_address.lower()


def test_python_dash_m_serves(world: World, tmp_path: Path) -> None:
    info = _serve([sys.executable, "-m", "api"], world, tmp_path)
    assert info["chain_id"] == world.chain_id
