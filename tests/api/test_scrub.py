"""A lost blob is the operator's alarm: the scrub finds missing and corrupt blobs (against
their address, the anchored digest the database recorded and the digest the chain holds),
``/readyz``, ``/metrics`` and ``datasafe-node status``'s reader report them, and a backup
restores them: back up, delete, scrub reports it, restore, scrub clean — through the very
commands an operator runs (``python -m api scrub|backup|restore``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from _api_seed import seal_for, seed_asset
from _api_server import METRICS_HEADERS, REPO, live_server, world_manifest, world_settings
from _api_world import World

from api import backup, scrub
from api import db as api_db
from api._vault import VaultAdapter
from api.backup import BackupError
from api.cli import EXIT_BLOBS_DAMAGED
from api.ops import blob_health
from api.settings import ApiSettings
from vault.store import BlobStore


def _env(world: World, db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATASAFE_API_DATABASE_URL": db_url,
        "DATASAFE_API_BLOB_DIR": str(tmp_path / "blobs"),
        "DATASAFE_API_RPC_URL": world.rpc_url,
        "DATASAFE_API_MANIFEST_PATH": str(world_manifest(world, tmp_path / "manifest.json")),
    }


def _task(env: dict[str, str], *args: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "api", *args, "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, EXIT_BLOBS_DAMAGED), done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return done.returncode, report


def _stored(world: World, db_url: str, tmp_path: Path, n: int) -> list[str]:
    """``n`` anchored assets with their sealed blobs in the store; their asset ids."""
    engine = api_db.make_engine(db_url)
    vault = VaultAdapter(engine, tmp_path / "blobs")
    ids = []
    try:
        for i in range(n):
            asset = seed_asset(world, db_url, tag=f"scrub{i}".encode())
            vault.put_sealed(asset.hex, asset.sealed.to_bytes(), owner=world.citizen.address)
            ids.append(asset.hex)
    finally:
        engine.dispose()
    return ids


def _blob_path(db_url: str, tmp_path: Path, asset_id: str) -> Path:
    engine = api_db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            blob = conn.execute(
                sa.select(api_db.sealed_assets.c.blob).where(
                    api_db.sealed_assets.c.asset_id == asset_id
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return BlobStore(tmp_path / "blobs").path_for(bytes.fromhex(blob))


def test_backup_delete_scrub_restore_scrub_clean(world: World, db_url: str, tmp_path: Path) -> None:
    ids = _stored(world, db_url, tmp_path, 3)
    env = _env(world, db_url, tmp_path)
    code, report = _task(env, "scrub")
    assert code == 0 and report["health"] == report["health"] | {"ok": True, "blobs": 3}
    assert report["pass"]["checked"] == 3 and report["pass"]["chain_checked"] is True  # type: ignore[index]

    backup_dir = tmp_path / "backup"
    code, _ = _task(env, "backup", str(backup_dir))
    assert code == 0
    assert oct(backup_dir.stat().st_mode & 0o777) == oct(0o700)
    meta = json.loads((backup_dir / "backup.json").read_text())
    assert meta["blobs"]["copied"] == 3

    # one blob lost, one damaged
    _blob_path(db_url, tmp_path, ids[0]).unlink()
    damaged = _blob_path(db_url, tmp_path, ids[1])
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\x00")
    code, report = _task(env, "scrub")
    assert code == EXIT_BLOBS_DAMAGED
    health = report["health"]
    assert (health["missing"], health["corrupt"], health["ok"]) == (1, 1, False)  # type: ignore[index]
    problems = {f["asset_id"]: f["problem"] for f in report["pass"]["findings"]}  # type: ignore[index]
    assert problems == {ids[0]: "missing", ids[1]: "corrupt"}
    # the node's status reads the same findings from the database
    status = blob_health(db_url)
    assert (status["ok"], status["missing"], status["corrupt"]) == (False, 1, 1)

    # the service reports it: /readyz detail and /metrics (readiness itself is not withdrawn)
    settings = world_settings(world, db_url, tmp_path, scrub_interval_seconds=0)
    with live_server(settings) as srv:
        ready = httpx.get(srv.url + "/readyz", timeout=10).json()
        blobs = ready["checks"]["blobs"]
        assert (blobs["ok"], blobs["missing"], blobs["corrupt"]) == (False, 1, 1)
        metrics = httpx.get(srv.url + "/metrics", headers=METRICS_HEADERS, timeout=10).text
        assert "datasafe_blobs_missing 1.0" in metrics
        assert "datasafe_blobs_corrupt 1.0" in metrics
        assert "datasafe_blob_scrub_last_run_timestamp_seconds 0.0" not in metrics

    code, report = _task(env, "restore", str(backup_dir))
    assert code == 0 and report["blobs"]["copied"] == 2  # type: ignore[index]
    code, report = _task(env, "scrub")
    assert code == 0 and report["health"]["ok"] is True  # type: ignore[index]
    assert report["pass"]["findings"] == []  # type: ignore[index]
    assert blob_health(db_url)["ok"] is True


def test_scrub_is_bounded_and_resumes_from_its_cursor(
    world: World, db_url: str, tmp_path: Path
) -> None:
    _stored(world, db_url, tmp_path, 3)
    engine = api_db.make_engine(db_url)
    blobs = BlobStore(tmp_path / "blobs")
    try:
        first = scrub.scrub_pass(engine, blobs, max_blobs=2, max_bytes=10**9)
        assert (first.checked, first.wrapped) == (2, False)
        assert scrub.health(engine)["full_passes"] == 0
        second = scrub.scrub_pass(engine, blobs, max_blobs=2, max_bytes=10**9)
        assert (second.checked, second.wrapped) == (1, True)
        assert scrub.health(engine)["full_passes"] == 1
        # a byte budget smaller than a blob still reads one blob per pass
        tiny = scrub.scrub_pass(engine, blobs, max_blobs=100, max_bytes=1)
        assert (tiny.checked, tiny.wrapped) == (1, False)
    finally:
        engine.dispose()


def test_scrub_compares_with_the_recorded_and_the_chain_digest(
    world: World, db_url: str, tmp_path: Path
) -> None:
    (asset_id,) = _stored(world, db_url, tmp_path, 1)
    engine = api_db.make_engine(db_url)
    blobs = BlobStore(tmp_path / "blobs")
    vault = VaultAdapter(engine, tmp_path / "blobs")
    try:
        with engine.begin() as conn:
            conn.execute(
                api_db.assets.update()
                .where(api_db.assets.c.asset_id == asset_id)
                .values(ciphertext_digest="0x" + "11" * 32)
            )
        # a sealed asset the chain never anchored (and the database holds no anchor for)
        stray = bytes(range(32))
        vault.put_sealed(
            "0x" + stray.hex(),
            seal_for(world, world.citizen, stray).to_bytes(),
            owner=world.citizen.address,
        )
        chain = scrub.chain_digests(world.rpc_url, world.ledger_address)
        report = scrub.scrub_pass(engine, blobs, max_blobs=10, max_bytes=10**9, chain=chain)
        found = {f.asset_id: f.detail for f in report.findings}
        assert "not the recorded anchor" in found[asset_id]
        assert "the chain holds no anchor" in found["0x" + stray.hex()]
        assert scrub.health(engine)["corrupt"] == 2
    finally:
        engine.dispose()


def test_backup_and_restore_refusals(db_url: str, tmp_path: Path) -> None:
    engine = api_db.make_engine(db_url)
    api_db.migrate(engine)
    engine.dispose()
    settings = ApiSettings(database_url=db_url, blob_dir=tmp_path / "blobs")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    with pytest.raises(BackupError, match="not empty"):
        backup.backup(settings, busy)
    with pytest.raises(BackupError, match="is not a backup"):
        backup.restore(settings, busy)
    other = "postgresql" if db_url.startswith("sqlite") else "sqlite"
    (busy / "backup.json").write_text(json.dumps({"database": {"kind": other}}))
    with pytest.raises(BackupError, match=f"holds a {other} database"):
        backup.restore(settings, busy)
    # the operator's command says so in one line and exits 1
    env = {**os.environ, "DATASAFE_API_DATABASE_URL": db_url}
    done = subprocess.run(
        [sys.executable, "-m", "api", "backup", str(busy)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and done.stderr.startswith("backup failed: ")
