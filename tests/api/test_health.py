"""Readiness against a real deployment: chain, manifest, database, indexer lag."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from _api_server import assert_problem, live_server, world_manifest, world_settings
from _api_world import World


def test_ready_with_indexer(world: World, db_url: str, tmp_path: Path) -> None:
    try:
        from ledger.indexer._abi import load_abi

        load_abi(None)
    except Exception as exc:
        pytest.skip(f"ledger ABI artifact not generated yet: {exc}")
    settings = world_settings(
        world, db_url, tmp_path, run_indexer=True, indexer_interval_seconds=0.1
    )
    with live_server(settings) as srv, httpx.Client(base_url=srv.url) as h:
        deadline = time.monotonic() + 60
        resp = h.get("/readyz")
        while resp.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            resp = h.get("/readyz")
        body = resp.json()
        assert resp.status_code == 200, body
        assert body["checks"]["manifest"]["ok"] is True
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["indexer"]["lag"] <= settings.max_indexer_lag_blocks


def test_not_ready_when_manifest_names_another_chain(
    world: World, db_url: str, tmp_path: Path
) -> None:
    settings = world_settings(world, db_url, tmp_path)
    world_manifest(world, settings.manifest_path, chain_id=1)  # type: ignore[arg-type]
    with live_server(settings) as srv, httpx.Client(base_url=srv.url) as h:
        body = assert_problem(h.get("/readyz"), 503, "not_ready")
        assert body["checks"]["manifest"]["ok"] is False  # type: ignore[index]


def test_chain_down_is_503(world: World, db_url: str, tmp_path: Path) -> None:
    from api.client import DataSafeClient

    settings = world_settings(world, db_url, tmp_path, rpc_url="http://127.0.0.1:9")
    with live_server(settings) as srv:
        with httpx.Client(base_url=srv.url) as h:
            body = assert_problem(h.get("/readyz"), 503, "not_ready")
            assert body["checks"]["chain"]["ok"] is False  # type: ignore[index]
        with DataSafeClient(srv.url, world.bank.key) as c:
            resp = c.request("GET", "/v1/members/me")
            assert_problem(resp, 503, "chain_unavailable")
            assert resp.headers["retry-after"] == "2"


def test_database_down_is_503_and_nothing_half_done(
    world: World, pg_databases: object, tmp_path: Path
) -> None:
    import sqlalchemy as sa

    from api.client import DataSafeClient

    url = pg_databases.create()  # type: ignore[attr-defined]
    with live_server(world_settings(world, url, tmp_path)) as srv:
        with DataSafeClient(srv.url, world.bank.key) as c:
            assert c.request("GET", "/v1/whoami").status_code == 200
            admin = sa.create_engine(
                sa.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT"
            )
            name = sa.make_url(url).database
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()
            resp = c.request("GET", "/v1/whoami")
            assert_problem(resp, 503, "database_unavailable")
        with httpx.Client(base_url=srv.url) as h:
            body = assert_problem(h.get("/readyz"), 503, "not_ready")
            assert body["checks"]["database"]["ok"] is False  # type: ignore[index]
