"""``datasafe-node``: run the embedded chain with the ledger deployed.

datasafe-node up        start anvil (state under the data dir), deploy on first start,
                        verify the manifest afterwards, stay in the foreground
datasafe-node deploy    deploy to DATASAFE_LEDGER_RPC_URL and write the manifest
datasafe-node status    show the manifest and whether the chain matches it
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from ledger.chain import DEV_PRIVATE_KEYS, EmbeddedChain
from ledger.client import sender_from_settings
from ledger.errors import LedgerError, ManifestNotFoundError
from ledger.manifest import Manifest, deploy_ledger, verify_manifest
from ledger.rpc import RpcClient
from ledger.settings import LedgerSettings, get_settings
from ledger.tx import LocalKeySender, Sender

app = typer.Typer(help="DataSafe Ledger node.", no_args_is_help=True, add_completion=False)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="default: ./.datasafe")]


def _settings(data_dir: Path | None) -> LedgerSettings:
    s = get_settings()
    if data_dir is not None:
        s = s.model_copy(update={"data_dir": data_dir})
    return s


def _embedded_sender(s: LedgerSettings) -> Sender:
    try:
        return sender_from_settings(s)
    except LedgerError:
        # Dev chain only: anvil's first funded account is the governor.
        return LocalKeySender.from_key(DEV_PRIVATE_KEYS[0])


def ensure_deployed(rpc_url: str, s: LedgerSettings, sender: Sender) -> tuple[Manifest, bool]:
    """The verified manifest, deploying first if there is none. Returns (manifest, deployed)."""
    path = s.resolved_manifest_path
    with RpcClient(rpc_url, timeout=s.rpc_timeout, retries=s.rpc_retries) as rpc:
        try:
            manifest = Manifest.load(path)
        except ManifestNotFoundError:
            manifest = deploy_ledger(
                rpc_url,
                sender,
                manifest_path=path,
                confirmations=s.confirmations,
                receipt_timeout=s.receipt_timeout,
            )
            verify_manifest(rpc, manifest)
            return manifest, True
        verify_manifest(rpc, manifest)
        return manifest, False


def _print(manifest: Manifest, rpc_url: str, deployed: bool) -> None:
    typer.echo(f"rpc url    {rpc_url}")
    typer.echo(f"chain id   {manifest.chain_id}")
    typer.echo(
        f"ledger     {manifest.ledger_address} ({'deployed now' if deployed else 'reused'}, "
        f"block {manifest.deploy_block})"
    )
    typer.echo(f"governor   {manifest.governor}")


@app.command()
def up(data_dir: DataDir = None) -> None:
    """Start the embedded chain and keep it running until Ctrl-C / SIGTERM."""
    s = _settings(data_dir)
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with EmbeddedChain(
            state_dir=s.data_dir / "chain",
            port=s.anvil_port,
            chain_id=s.chain_id,
            block_time=s.block_time,
            state_interval=s.state_interval,
            anvil_path=s.anvil_path,
        ) as chain:
            manifest, deployed = ensure_deployed(chain.url, s, _embedded_sender(s))
            _print(manifest, chain.url, deployed)
            typer.echo("running; Ctrl-C to stop")
            while not stop.wait(0.5):
                if chain.proc is None or chain.proc.poll() is not None:
                    typer.echo("anvil exited unexpectedly", err=True)
                    raise typer.Exit(code=1)
        typer.echo("stopped")
    except LedgerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@app.command()
def deploy(data_dir: DataDir = None) -> None:
    """Deploy to DATASAFE_LEDGER_RPC_URL (sender from settings) unless the manifest exists."""
    s = _settings(data_dir)
    try:
        manifest, deployed = ensure_deployed(s.rpc_url, s, sender_from_settings(s))
    except LedgerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    _print(manifest, s.rpc_url, deployed)


@app.command()
def status(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the manifest and check it against DATASAFE_LEDGER_RPC_URL."""
    s = _settings(data_dir)
    try:
        manifest = Manifest.load(s.resolved_manifest_path)
        with RpcClient(s.rpc_url, timeout=s.rpc_timeout, retries=0) as rpc:
            verify_manifest(rpc, manifest)
            head = int(rpc.call("eth_blockNumber"), 16)
    except LedgerError as exc:
        if as_json:
            typer.echo(json.dumps({"ok": False, "error": type(exc).__name__, "detail": str(exc)}))
        else:
            typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if as_json:
        typer.echo(json.dumps({"ok": True, "head": head, **manifest.model_dump(by_alias=True)}))
    else:
        _print(manifest, s.rpc_url, False)
        typer.echo(f"head block {head}")


def main() -> None:
    app()
