"""Fixtures for the API tests: real anvil, real uvicorn, real SQLite/PostgreSQL."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _api_server import (
    FAKE_LEDGER,
    Anvil,
    LiveServer,
    free_port,
    live_server,
    world_settings,
    write_manifest,
)
from _api_world import DEV_KEYS, Actor, World

from api.settings import ApiSettings

__all__ = ["FAKE_LEDGER", "LiveServer"]


@pytest.fixture(scope="session")
def api_anvil() -> Iterator[Anvil]:
    """A bare anvil (no contracts) for tests of the envelope and health endpoints."""
    from ledger.chain import find_anvil

    exe = str(find_anvil())
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--host", "127.0.0.1", "--port", str(port), "--silent", "--chain-id", "31337"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    anvil = Anvil(port, proc)
    deadline = time.monotonic() + 30
    while True:
        try:
            anvil.rpc("eth_chainId", [])
            break
        except (httpx.HTTPError, RuntimeError):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("anvil did not start")
            time.sleep(0.05)
    yield anvil
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def bare_settings(api_anvil: Anvil, db_url: str, tmp_path: Path) -> ApiSettings:
    manifest = write_manifest(
        tmp_path / "manifest.json", chain_id=31337, ledger=FAKE_LEDGER, block=0
    )
    return ApiSettings(
        rpc_url=api_anvil.url,
        manifest_path=manifest,
        database_url=db_url,
        blob_dir=tmp_path / "blobs",
        run_indexer=False,
        log_json=True,
    )


@pytest.fixture
def bare_server(bare_settings: ApiSettings) -> Iterator[LiveServer]:
    with live_server(bare_settings) as srv:
        yield srv


# ---- a deployed ledger ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def world_session(api_anvil: Anvil) -> World:
    world = World(api_anvil.url)
    custodian = Actor("custodian", DEV_KEYS[9])
    world.admit(custodian, 16, 8)  # CUSTODIAN, OPERATOR
    world.custodian = custodian  # type: ignore[attr-defined]
    return world


@pytest.fixture
def world(world_session: World) -> Iterator[World]:
    """The deployed ledger, with every test's chain changes rolled back afterwards."""
    snap = world_session.snapshot()
    yield world_session
    world_session.revert(snap)


@pytest.fixture
def server(world: World, db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(world_settings(world, db_url, tmp_path)) as srv:
        yield srv
