"""``datasafe-node``: the commands, listed explicitly (see :mod:`node` for the overview)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from eth_account import Account

from api.errors import ApiError
from api.ops import redact_database_url
from ledger import restore_recursion_limit
from ledger.client import sender_from_settings
from ledger.errors import LedgerError, SettingsError
from ledger.settings import LedgerSettings
from node.blobs import backup, restore, scrub
from node.datadir import (
    BLOB_DIR,
    CHAIN_DIR,
    DB_FILE,
    LOCK_FILE,
    RUN_FILE,
    custodian_key,
    data_dir_lock,
    database_url_for,
    default_database_url,
    node_running,
    read_run_file,
    settings_for,
)
from node.demo import run_demo
from node.errors import EXIT_ERROR, EXIT_USAGE, NodeError
from node.options import DataDir, RpcUrl, fail, print_manifest
from node.startup import ensure_custodian, ensure_deployed
from node.status import status
from node.up import up

app = typer.Typer(help="DataSafe Ledger node.", no_args_is_help=True, add_completion=False)


def deploy(data_dir: DataDir = None, rpc_url: RpcUrl = None) -> None:
    """Deploy (sender from settings) unless the manifest exists; admit the custodian."""
    s = settings_for(data_dir)
    info = read_run_file(s.data_dir) if node_running(s.data_dir) else None
    url = rpc_url or (info or {}).get("rpc_url") or s.rpc_url
    try:
        sender = sender_from_settings(s)
        manifest, deployed = ensure_deployed(url, s, sender)
        key, source = custodian_key(s.data_dir)
        setup = ensure_custodian(
            url, manifest, Account.from_key(key).address, s, sender, fund=False
        )
    except LedgerError as exc:
        raise fail(exc) from exc
    print_manifest(manifest, url, deployed)
    state = "admitted now" if setup.admitted_now else "already admitted"
    typer.echo(f"custodian  {setup.address} ({state}; key {source})")
    for warning in setup.warnings:
        typer.echo(f"warning: {warning}", err=True)


def down(
    data_dir: DataDir = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for a clean stop")] = 60.0,
) -> None:
    """Stop the ``up`` running on the data dir (SIGTERM) and wait until it has stopped."""
    s = settings_for(data_dir)
    if not node_running(s.data_dir):
        typer.echo(f"no node running on {s.data_dir}")
        return
    info = read_run_file(s.data_dir)
    pid = info.get("pid") if info else None
    if not isinstance(pid, int):
        raise fail(NodeError(f"a node holds {s.data_dir / LOCK_FILE} but {RUN_FILE} names no pid"))
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while node_running(s.data_dir):
        if time.monotonic() > deadline:
            raise fail(NodeError(f"node pid {pid} did not stop within {timeout:g}s"))
        time.sleep(0.1)
    typer.echo(f"stopped node pid {pid}")


def reset(
    data_dir: DataDir = None,
    yes: Annotated[bool, typer.Option("--yes", help="really delete")] = False,
) -> None:
    """Delete the chain state, manifest, SQLite database and blobs (node must be down).

    Keeps the custodian key and the logs. An external database is never touched.
    """
    s = settings_for(data_dir)
    root = s.data_dir
    if not yes:
        typer.echo(
            f"refusing to reset {root} without --yes (deletes chain state, manifest, "
            "database and blobs)",
            err=True,
        )
        raise typer.Exit(code=EXIT_USAGE)
    try:
        with data_dir_lock(root):
            removed = _reset(s)
    except LedgerError as exc:
        raise fail(exc) from exc
    for path in removed:
        typer.echo(f"removed {path}")
    if not removed:
        typer.echo(f"nothing to remove in {root}")
    db_url = database_url_for(root, None)
    if db_url != default_database_url(root):
        typer.echo(f"not touched: external database {redact_database_url(db_url)}")


def _reset(s: LedgerSettings) -> list[Path]:
    root = s.data_dir.resolve()
    targets = [
        root / CHAIN_DIR,
        root / BLOB_DIR,
        root / RUN_FILE,
        *(root / (DB_FILE + suffix) for suffix in ("", "-wal", "-shm", "-journal")),
    ]
    manifest = s.resolved_manifest_path.resolve()
    if manifest.is_relative_to(root):
        targets.append(manifest)
    removed = []
    for path in targets:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(path)
    return removed


def demo(
    data_dir: DataDir = None,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="the API (default: from the run file)")
    ] = None,
    rpc_url: RpcUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the newest unfinished run")
    ] = False,
    run: Annotated[
        int | None, typer.Option("--run", min=1, help="continue this run (its number)")
    ] = None,
    stop_after: Annotated[
        int | None, typer.Option("--stop-after", min=1, help="stop after this many steps")
    ] = None,
    write_plaintext: Annotated[
        bool,
        typer.Option(
            "--write-plaintext", help="also write the decrypted records (0600) into the run folder"
        ),
    ] = False,
) -> None:
    """Play the demo story (departments, citizen, bank, notary, regulator) on the running node.

    Example: datasafe-node demo --stop-after 3, later datasafe-node demo --resume
    """
    try:
        report = run_demo(
            data_dir,
            api_url=api_url,
            rpc_url=rpc_url,
            quiet=as_json,
            resume=resume,
            run=run,
            stop_after=stop_after,
            write_plaintext=write_plaintext,
        )
    except (ApiError, LedgerError) as exc:
        typer.echo(f"demo failed: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from exc
    if as_json:
        typer.echo(json.dumps(report, indent=2))


for command in (up, deploy, status, down, reset, demo, scrub, backup, restore):
    app.command()(command)


def main() -> None:
    restore_recursion_limit()
    try:
        app()
    except SettingsError as exc:  # a bad DATASAFE_* value: say which, no traceback
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None


if __name__ == "__main__":
    main()
