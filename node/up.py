"""``datasafe-node up``: chain, ledger, custodian, database check, API and indexer, in the
foreground until Ctrl-C / SIGTERM; the API stops before the chain, so anvil writes its state
last."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from eth_account import Account

from api.ops import child_env, env_setting, redact_database_url, upgrade_database
from ledger.chain import EmbeddedChain, free_port
from ledger.client import sender_from_settings
from ledger.errors import CodeMismatchError, ConfigurationError, LedgerError, ManifestNotFoundError
from ledger.manifest import Manifest, verify_manifest
from ledger.rpc import RpcClient
from ledger.settings import LedgerSettings
from ledger.tx import Sender
from node.chainfront import ChainFront
from node.datadir import (
    CHAIN_DIR,
    LOG_DIR,
    RUN_FILE,
    blob_dir_for,
    custodian_key,
    data_dir_lock,
    database_url_for,
    read_run_file,
    settings_for,
    stop_orphans,
    write_private,
)
from node.errors import EXIT_CHAIN_BEHIND, ChainBehindDatabaseError, NodeError
from node.options import DatabaseUrl, DataDir, RpcUrl, fail, print_manifest
from node.replay import ChainLossError, dependents, quarantine, replay
from node.startup import (
    CustodianSetup,
    check_chain_not_behind,
    embedded_sender,
    ensure_custodian,
    ensure_deployed,
    explain_missing_code,
    external_rpc,
    restore_lost_chain,
)
from node.supervise import ApiChild, ApiProcess, StopFlag, supervise
from node.txlog import JOURNAL_FILE, TxLog


def up(
    data_dir: DataDir = None,
    rpc_url: RpcUrl = None,
    database_url: DatabaseUrl = None,
    api_host: Annotated[str | None, typer.Option(help="default: DATASAFE_API_HOST")] = None,
    api_port: Annotated[int | None, typer.Option(help="default: DATASAFE_API_PORT or 8700")] = None,
    accept_loss: Annotated[
        bool,
        typer.Option(
            "--accept-loss",
            help="start although journaled transactions cannot be restored: quarantine only "
            "the records that depend on them",
        ),
    ] = False,
) -> None:
    """Start chain, ledger, custodian, database, API and indexer; stay until Ctrl-C / SIGTERM."""
    s = settings_for(data_dir)
    root = s.data_dir.resolve()
    stop = StopFlag()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with data_dir_lock(root):
            _run(
                s.model_copy(update={"data_dir": root}),
                stop,
                rpc_url,
                database_url,
                api_host,
                api_port,
                accept_loss,
            )
    except (ChainBehindDatabaseError, ChainLossError) as exc:
        raise fail(exc, EXIT_CHAIN_BEHIND) from exc
    except LedgerError as exc:
        raise fail(exc) from exc
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class _Chain:
    """The chain the node runs on: embedded (``chain`` set) or external."""

    url: str
    chain: EmbeddedChain | None
    governor: Sender | None
    manifest: Manifest | None = None
    deployed: bool = False
    front: ChainFront | None = None
    journal: TxLog | None = None


def _start_chain(
    s: LedgerSettings, external: str | None, database_url: str, accept_loss: bool
) -> _Chain:
    if external is None:
        _set_aside_torn_state(s.data_dir / CHAIN_DIR / "anvil-state.json")
        # anvil on an internal port; the node's RPC URL is the journaling front.
        chain = EmbeddedChain(
            state_dir=s.data_dir / CHAIN_DIR,
            port=free_port(),
            chain_id=s.chain_id,
            block_time=s.block_time,
            state_interval=s.state_interval,
            anvil_path=s.anvil_path,
            die_with_parent=True,
        ).start()
        c = _Chain(chain.url, chain, embedded_sender(s))
        try:
            c.journal = TxLog.open(s.data_dir / CHAIN_DIR / JOURNAL_FILE)
            _replay(s, c, database_url, accept_loss)
            c.front = ChainFront(c.journal, chain.url, s.anvil_port).start()
        except BaseException:
            chain.stop()
            if c.journal is not None:
                c.journal.close()
            raise
        c.url = c.front.url
        return c
    try:
        governor: Sender | None = sender_from_settings(s)
    except ConfigurationError:
        governor = None
    return _Chain(external, None, governor)


def _set_aside_torn_state(state: Path) -> None:
    """A state file cut mid-write (power lost while anvil wrote it) stops anvil from starting:
    move it aside; the journal holds every transaction and the replay restores them."""
    if not state.exists() or not (state.parent / JOURNAL_FILE).exists():
        return
    try:
        json.loads(state.read_bytes())
    except ValueError:
        aside = state.with_name(f"{state.name}.torn-{int(time.time() * 1000)}")
        state.rename(aside)
        typer.echo(f"warning: {state} was cut mid-write; set aside as {aside.name}", err=True)


def _replay(s: LedgerSettings, c: _Chain, database_url: str, accept_loss: bool) -> None:
    """The journaled transactions the restored chain lacks, back in order (before anything
    else reaches the chain); a loss is refused unless ``accept_loss``."""
    assert c.chain is not None and c.journal is not None
    report = replay(c.journal, c.chain.url, timeout=max(10.0, s.rpc_timeout))
    if report.replayed or report.lost or report.unacknowledged:
        typer.echo(
            f"journal    {report.journaled} transaction(s): {report.on_chain} on chain, "
            f"{len(report.replayed)} replayed, {len(report.lost)} lost, "
            f"{len(report.unacknowledged)} never acknowledged and refused now"
        )
    for t in report.unacknowledged:
        typer.echo(f"warning: not restored (no client was told it was mined): {t.describe()}")
    if not report.lost:
        return
    lost = dependents(database_url, report.lost)
    if not accept_loss:
        raise ChainLossError(lost)
    where = quarantine(c.journal, database_url, s.data_dir, lost)
    for t in lost:
        typer.echo(f"accepted loss: {t.describe()}", err=True)
    typer.echo(f"quarantined the records that depend on them into {where}", err=True)


def _load_ledger(s: LedgerSettings, c: _Chain) -> Manifest:
    """The verified manifest (deployed first when there is none and a governor key is set)."""
    try:
        if c.governor is None:
            c.manifest, c.deployed = Manifest.load(s.resolved_manifest_path), False
            with RpcClient(c.url, timeout=s.rpc_timeout, retries=s.rpc_retries) as rpc:
                verify_manifest(rpc, c.manifest)
        else:
            c.manifest, c.deployed = ensure_deployed(c.url, s, c.governor)
    except CodeMismatchError as exc:
        raise explain_missing_code(exc, c.chain is not None, s.data_dir) from exc
    except ManifestNotFoundError as exc:
        raise NodeError(
            f"{exc}; deploying needs a governor key (DATASAFE_LEDGER_PRIVATE_KEY / "
            "_KEYSTORE_PATH / _NODE_ACCOUNT)"
        ) from exc
    return c.manifest


def _check_database(
    s: LedgerSettings, chain_url: str, database_url: str, manifest: Manifest
) -> dict[str, Any]:
    """The chain must hold what the database recorded; journaled transactions it lost go back."""
    try:
        return check_chain_not_behind(chain_url, database_url, s)
    except ChainBehindDatabaseError:
        typer.echo("the chain is behind the database (lost blocks): re-submitting", err=True)
        restored = restore_lost_chain(chain_url, database_url, manifest, s)
        typer.echo(
            f"chain behind the database: re-submitted {restored['resubmitted']} journaled "
            f"transaction(s) ({restored['already_mined']} were still on chain, "
            f"{restored['dropped']} never mined were dropped)"
        )
        return check_chain_not_behind(chain_url, database_url, s)


def _run(
    s: LedgerSettings,
    stop: StopFlag,
    rpc_option: str | None,
    database_option: str | None,
    api_host: str | None,
    api_port: int | None,
    accept_loss: bool = False,
) -> None:
    root = s.data_dir
    stale = read_run_file(root)
    for what in stop_orphans(root, stale):
        typer.echo(f"stopped {what} left by a previous run")
    # Written again with the children's pids once everything is up.
    write_private(root / RUN_FILE, json.dumps({"pid": os.getpid(), "starting": True}) + "\n")

    external = external_rpc(s, rpc_option)
    database_url = database_url_for(root, database_option)
    host = api_host or env_setting("host") or "127.0.0.1"
    port = api_port or int(env_setting("port") or 8700)
    key, key_source = custodian_key(root)
    custodian = Account.from_key(key).address
    c: _Chain | None = None
    # Spawned first: the API's imports run while the chain starts and the checks below run.
    child = ApiChild(host, port, {}, root / LOG_DIR / "api.log")
    child.warm_up()
    try:
        c = _start_chain(s, external, database_url, accept_loss)
        manifest = _load_ledger(s, c)
        setup = ensure_custodian(c.url, manifest, custodian, s, c.governor, fund=external is None)
        # A database left behind by an older release is upgraded (a SQLite file copied first)
        # before anything reads it.
        copy = upgrade_database(database_url, root)
        if copy is not None:
            typer.echo(f"database   upgraded to this release (the old file is kept at {copy})")
        consistency = _check_database(s, c.url, database_url, manifest)
        blob_dir = blob_dir_for(root)
        env = child_env(
            rpc_url=c.url,
            manifest_path=s.resolved_manifest_path.resolve(),
            database_url=database_url,
            blob_dir=blob_dir,
            custodian_key=key,
            run_indexer=True,
            host=host,
            port=port,
            confirmations=None if env_setting("confirmations") else s.confirmations,
        )
        child.env = env
        api = child.start(stop)
        info = _run_info(s, c, api, port, database_url)
        # The database URL may carry a password: the run file is private.
        write_private(root / RUN_FILE, json.dumps(info, indent=2) + "\n")
        _print_up(s, c, setup, key_source, database_url, blob_dir, api, consistency)
        typer.echo("running; Ctrl-C to stop")

        def on_change(fields: dict[str, Any]) -> None:
            info.update(fields)
            write_private(root / RUN_FILE, json.dumps(info, indent=2) + "\n")

        embedded = c.chain
        supervise(
            child,
            stop,
            chain_alive=lambda: (
                embedded is None or (embedded.proc is not None and embedded.proc.poll() is None)
            ),
            chain_log=root / CHAIN_DIR / "anvil.log",
            on_change=on_change,
        )
        typer.echo("stopping: API, then chain")
    finally:
        _shut_down(root, child, c)
    typer.echo("stopped")


def _shut_down(root: Path, child: ApiChild | None, c: _Chain | None) -> None:
    """API first (its lifespan stops the indexer and the access batcher), then the journaling
    front, then anvil, which writes its state on SIGTERM; the run file goes last."""
    if child is not None:
        child.discard_warm()
    if child is not None and child.current is not None:
        child.current.stop()
    if c is not None and c.front is not None:
        c.front.stop()
    if c is not None and c.chain is not None:
        c.chain.stop()
    if c is not None and c.journal is not None:
        c.journal.close()
    with contextlib.suppress(FileNotFoundError):
        (root / RUN_FILE).unlink()


def _run_info(
    s: LedgerSettings, c: _Chain, api: ApiProcess, port: int, database_url: str
) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "data_dir": str(s.data_dir),
        "embedded": c.chain is not None,
        "rpc_url": c.url,
        "anvil_pid": c.chain.pid if c.chain else None,
        "api_pid": api.proc.pid,
        "api_url": api.url,
        "api_port": port,
        "database_url": database_url,
        "manifest": str(s.resolved_manifest_path.resolve()),
        "started_at": int(time.time()),
        "api_restarts": 0,
        "api_last_exit": None,
    }


def _print_up(
    s: LedgerSettings,
    c: _Chain,
    setup: CustodianSetup,
    key_source: str,
    database_url: str,
    blob_dir: Path,
    api: ApiProcess,
    consistency: dict[str, Any],
) -> None:
    root = s.data_dir
    what = (
        f"embedded anvil (state {root / CHAIN_DIR / 'anvil-state.json'}, "
        f"written every {s.state_interval}s and on stop; every transaction journaled first "
        f"in {root / CHAIN_DIR / JOURNAL_FILE})"
        if c.chain is not None
        else "external node"
    )
    typer.echo(f"data dir   {root}")
    typer.echo(f"chain      {what}")
    if c.manifest is not None:
        print_manifest(c.manifest, c.url, c.deployed)
    typer.echo(f"head block {consistency['head']}")
    notes = []
    if setup.admitted_now:
        notes.append("admitted now")
    if setup.funded_wei:
        notes.append(f"funded {setup.funded_wei / 10**18:g} ETH")
    typer.echo(
        f"custodian  {setup.address} ({', '.join(notes) or 'already admitted'}; key {key_source})"
    )
    for warning in setup.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"manifest   {s.resolved_manifest_path.resolve()}")
    typer.echo(f"database   {redact_database_url(database_url)}")
    typer.echo(f"blobs      {blob_dir}")
    typer.echo(f"api        {api.url}  (docs {api.url}/docs, readiness {api.url}/readyz)")
    logs = [str(api.log)]
    if c.chain is not None:
        logs.insert(0, str(root / CHAIN_DIR / "anvil.log"))
    typer.echo(f"logs       {', '.join(logs)}")
    typer.echo(f"run file   {root / RUN_FILE}  (`datasafe-node status` / `down` read it)")
