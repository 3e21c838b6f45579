"""``datasafe-node status``: chain reachable, manifest matches, database agrees with the chain,
blobs intact, API ready, indexer lag."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import httpx
import typer

from api.errors import ApiError
from api.ops import blob_health, redact_database_url
from ledger.errors import LedgerError
from ledger.manifest import Manifest, verify_manifest
from ledger.rpc import RpcClient
from ledger.settings import LedgerSettings
from node.datadir import (
    DB_FILE,
    database_url_for,
    default_database_url,
    node_running,
    read_run_file,
    settings_for,
)
from node.errors import (
    EXIT_BLOBS_DAMAGED,
    EXIT_CHAIN_BEHIND,
    EXIT_ERROR,
    ChainBehindDatabaseError,
)
from node.options import DatabaseUrl, DataDir, RpcUrl
from node.startup import chain_vs_database


def status(
    data_dir: DataDir = None,
    rpc_url: RpcUrl = None,
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Chain reachable, manifest matches, database agrees with the chain, API ready, indexer lag.

    Exit 0 when everything checked is fine, 1 otherwise (3: the chain is behind the database).
    """
    s = settings_for(data_dir)
    running = node_running(s.data_dir)
    info = (read_run_file(s.data_dir) or {}) if running else {}
    url = rpc_url or info.get("rpc_url") or s.rpc_url
    out: dict[str, Any] = {
        "ok": True,
        "node": {"running": running, "pid": info.get("pid"), "data_dir": str(s.data_dir)},
        "rpc_url": url,
    }
    code = 0
    try:
        manifest = Manifest.load(s.resolved_manifest_path)
        out.update(manifest.model_dump(by_alias=True))
        with RpcClient(url, timeout=s.rpc_timeout, retries=0) as rpc:
            verify_manifest(rpc, manifest)
            out["head"] = int(rpc.call("eth_blockNumber"), 16)
            db_url = database_url or info.get("database_url") or database_url_for(s.data_dir, None)
            sqlite_missing = (
                db_url == default_database_url(s.data_dir) and not (s.data_dir / DB_FILE).exists()
            )
            if sqlite_missing:
                out["database"] = {"ok": True, "url": redact_database_url(db_url), "exists": False}
            else:
                report = chain_vs_database(rpc, db_url)
                out["database"] = {"url": redact_database_url(db_url), **report}
                if report["problems"]:
                    raise ChainBehindDatabaseError(report["problems"])
    except ChainBehindDatabaseError as exc:
        out.update(ok=False, error=type(exc).__name__, detail=str(exc))
        code = EXIT_CHAIN_BEHIND
    except LedgerError as exc:
        out.update(ok=False, error=type(exc).__name__, detail=str(exc))
        code = EXIT_ERROR
    if code == 0 and out.get("database", {}).get("exists", True) and "database" in out:
        code = _status_blobs(out, database_url or info.get("database_url") or None, s)
    if info.get("api_url"):
        out["api"] = _api_status(str(info["api_url"]))
        out["api"]["restarts"] = int(info.get("api_restarts") or 0)
        out["api"]["last_exit"] = info.get("api_last_exit")
        if not out["api"]["ok"] and code == 0:
            out.update(ok=False, error="ApiNotReady", detail=str(out["api"].get("detail", "")))
            code = EXIT_ERROR
    if as_json:
        typer.echo(json.dumps(out, default=str))
    else:
        _print_status(out)
    if code:
        raise typer.Exit(code=code)


def _api_status(api_url: str) -> dict[str, Any]:
    try:
        resp = httpx.get(api_url + "/readyz", timeout=5.0)
    except httpx.HTTPError as exc:
        return {"ok": False, "url": api_url, "detail": f"unreachable: {exc}"}
    try:
        body = resp.json()
    except ValueError:
        body = {}
    checks = body.get("checks", {}) if isinstance(body, dict) else {}
    indexer = checks.get("indexer", {}) if isinstance(checks, dict) else {}
    return {
        "ok": resp.status_code == 200,
        "url": api_url,
        "readyz": resp.status_code,
        "indexer_last_block": indexer.get("last_block"),
        "indexer_lag": indexer.get("lag"),
        "checks": checks,
        "detail": ""
        if resp.status_code == 200
        else (body.get("detail", "") if body else resp.text),
    }


def _print_status(out: dict[str, Any]) -> None:
    node = out["node"]
    typer.echo(
        f"node       {'running, pid ' + str(node['pid']) if node['running'] else 'not running'}"
    )
    typer.echo(f"data dir   {node['data_dir']}")
    typer.echo(f"rpc url    {out['rpc_url']}")
    if "ledger" in out:
        typer.echo(f"chain id   {out['chainId']}")
        typer.echo(f"ledger     {out['ledger']} (block {out['deployBlock']})")
    if "head" in out:
        typer.echo(f"head block {out['head']}")
    db = out.get("database")
    if db:
        state = "ok" if db.get("ok") else "BEHIND: " + "; ".join(db.get("problems", []))
        extra = "" if db.get("exists", True) else " (not created yet)"
        typer.echo(f"database   {db['url']}{extra} {state}")
    api = out.get("api")
    if api:
        typer.echo(
            f"api        {api['url']} readyz {api.get('readyz', '-')}, indexer last block "
            f"{api.get('indexer_last_block')}, lag {api.get('indexer_lag')}"
        )
        if api.get("restarts"):
            typer.echo(
                f"api        restarted {api['restarts']} time(s) after a crash "
                f"(last exit code {api.get('last_exit')})"
            )
    _print_blobs(out.get("blobs"))
    if out["ok"]:
        typer.echo("status     ok")
    else:
        typer.echo(f"error: {out.get('detail') or out.get('error')}", err=True)


def _status_blobs(out: dict[str, Any], database_url: str | None, s: LedgerSettings) -> int:
    """Add the blob scrub's findings to ``status``; damaged blobs are a failed status."""
    db_url = database_url or database_url_for(s.data_dir, None)
    try:
        blobs = blob_health(db_url)
    except ApiError as exc:
        out["blobs"] = {"ok": False, "error": str(exc)}
        return 0
    out["blobs"] = blobs
    if blobs["ok"]:
        return 0
    out.update(
        ok=False,
        error="BlobsDamaged",
        detail=f"{blobs['missing']} blob(s) missing, {blobs['corrupt']} corrupt: restore them "
        "from a backup (`datasafe-node restore`), then `datasafe-node scrub`",
    )
    return EXIT_BLOBS_DAMAGED


def _print_blobs(blobs: dict[str, Any] | None) -> None:
    if not blobs:
        return
    if "error" in blobs:
        typer.echo(f"blobs      unknown ({blobs['error']})")
        return
    last = blobs.get("last_run_at")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last)) if last else "never"
    state = "ok" if blobs["ok"] else "DAMAGED"
    typer.echo(
        f"blobs      missing {blobs['missing']}, corrupt {blobs['corrupt']} {state} "
        f"(last scrub {when})"
    )
