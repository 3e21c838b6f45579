"""Fixtures for the API tests: real anvil, real uvicorn, real SQLite/PostgreSQL.

The chain is the session's ``anvil_chain`` (tests/conftest.py), the server
``_fixtures.start_api`` (through ``_api_server.live_server``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _api_server import (
    FAKE_LEDGER,
    LiveServer,
    live_server,
    world_settings,
    write_manifest,
)
from _api_world import DEV_KEYS, Actor, World

from api.settings import ApiSettings
from ledger.chain import EmbeddedChain

__all__ = ["FAKE_LEDGER", "LiveServer"]


@pytest.fixture
def bare_settings(anvil_chain: EmbeddedChain, db_url: str, tmp_path: Path) -> ApiSettings:
    manifest = write_manifest(
        tmp_path / "manifest.json", chain_id=31337, ledger=FAKE_LEDGER, block=0
    )
    return ApiSettings(
        rpc_url=anvil_chain.url,
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
def world_session(anvil_chain: EmbeddedChain) -> World:
    world = World(anvil_chain.url)
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


@pytest.fixture
def indexed_server(world: World, db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The service with its event indexer running (listings from the index)."""
    settings = world_settings(
        world, db_url, tmp_path, run_indexer=True, indexer_interval_seconds=0.1
    )
    with live_server(settings) as srv:
        yield srv
