"""``datasafe-node scrub|backup|restore``: the blobs and the database.

The work is the service's (``python -m api scrub|backup|restore``, run as a child with the
node's settings, as ``up`` runs the API): the node composes, it does not do the service's work.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from api.ops import child_env, env_setting
from ledger.errors import LedgerError
from ledger.settings import LedgerSettings
from node.chaincopy import backup_chain, restore_chain
from node.datadir import (
    blob_dir_for,
    data_dir_lock,
    database_url_for,
    node_running,
    read_run_file,
    settings_for,
)
from node.options import DatabaseUrl, DataDir, RpcUrl, fail


def _task_env(s: LedgerSettings, rpc_url: str | None, database_url: str | None) -> dict[str, str]:
    """The node's API settings for a task (no custodian key: the tasks relay nothing)."""
    info = (read_run_file(s.data_dir) or {}) if node_running(s.data_dir) else {}
    manifest = s.resolved_manifest_path.resolve()
    return child_env(
        database_url=database_url or info.get("database_url") or database_url_for(s.data_dir, None),
        blob_dir=blob_dir_for(s.data_dir),
        rpc_url=rpc_url or info.get("rpc_url") or env_setting("rpc_url") or s.rpc_url,
        manifest_path=manifest if manifest.exists() else None,
    )


def _api_task(args: list[str], env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "api", *args], env={**os.environ, **env}, check=False
    )
    return done.returncode


def scrub(
    data_dir: DataDir = None,
    rpc_url: RpcUrl = None,
    database_url: DatabaseUrl = None,
    once: Annotated[bool, typer.Option("--once", help="one bounded pass, not a round")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check every blob against its content address and its anchored digest (DB and chain).

    Exit 0 when clean, 4 when blobs are missing or corrupt (also reported by ``status``).
    """
    s = settings_for(data_dir)
    args = ["scrub", *(["--once"] if once else []), *(["--json"] if as_json else [])]
    code = _api_task(args, _task_env(s, rpc_url, database_url))
    if code:
        raise typer.Exit(code=code)


def backup(
    directory: Annotated[Path, typer.Argument(help="a new or empty directory")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    include_custodian_key: Annotated[
        bool,
        typer.Option(
            "--include-custodian-key", help="copy the custodian key too (keep the backup secret)"
        ),
    ] = False,
) -> None:
    """Copy the database (SQLite online backup / pg_dump), every blob, the manifest and, on the
    embedded chain, its state and transaction journal into DIRECTORY (while the node runs)."""
    s = settings_for(data_dir)
    code = _api_task(["backup", str(directory.resolve())], _task_env(s, None, database_url))
    if code:
        raise typer.Exit(code=code)
    manifest = s.resolved_manifest_path
    if manifest.exists():
        shutil.copy2(manifest, directory / "manifest.json")
    # After the database: the journal copied now holds every transaction the copy cites.
    for name in backup_chain(s.data_dir, directory, include_key=include_custodian_key):
        typer.echo(f"copied {name}")


def restore(
    directory: Annotated[Path, typer.Argument(help="a directory written by `backup`")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Put a backup's database and missing blobs back (the node must be stopped), then run
    ``datasafe-node scrub``. Revocations made since the backup are shredded again when the
    indexer re-reads them."""
    s = settings_for(data_dir)
    try:
        env = _task_env(s, None, database_url)
        with data_dir_lock(s.data_dir):
            code = _api_task(["restore", str(directory.resolve())], env)
            if not code:
                for name in restore_chain(directory, s.data_dir):
                    typer.echo(f"restored {name}")
                manifest = s.resolved_manifest_path
                if (directory / "manifest.json").exists() and not manifest.exists():
                    shutil.copy2(directory / "manifest.json", manifest)
    except LedgerError as exc:
        raise fail(exc) from exc
    if code:
        raise typer.Exit(code=code)
