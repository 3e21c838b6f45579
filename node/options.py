"""What the node's commands share: their options and how they report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.manifest import Manifest
from node.errors import EXIT_ERROR

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="default: DATASAFE_LEDGER_DATA_DIR or ./.datasafe")
]
RpcUrl = Annotated[
    str | None,
    typer.Option("--rpc-url", help="external EVM JSON-RPC endpoint (no embedded anvil)"),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)"),
]


def print_manifest(manifest: Manifest, rpc_url: str, deployed: bool) -> None:
    typer.echo(f"rpc url    {rpc_url}")
    typer.echo(f"chain id   {manifest.chain_id}")
    typer.echo(
        f"ledger     {manifest.ledger_address} ({'deployed now' if deployed else 'reused'}, "
        f"block {manifest.deploy_block})"
    )
    typer.echo(f"governor   {manifest.governor}")


def fail(exc: Exception, code: int = EXIT_ERROR) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=code)
