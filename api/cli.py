"""``datasafe-api`` / ``python -m api``: run the service with uvicorn, or an operator task.

    python -m api [--host H] [--port P]      serve (the default)
    python -m api scrub [--json]             check every blob against its anchored digest
    python -m api backup DIR                 copy the database and the blobs into DIR
    python -m api restore DIR                put them back (the service stopped)
    python -m api migrate [--sql] [--backup-dir DIR]
                                             upgrade the database (the service's and the
                                             indexer's tables) to head; --sql prints the SQL

Settings come from the ``DATASAFE_API_*`` environment (``datasafe-node`` passes the node's).
Exit codes of the tasks: 0 done and clean, 1 failed, 4 blobs missing or corrupt.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from api.settings import ApiSettings
from ledger import restore_recursion_limit

#: A task found blobs missing or corrupt (``scrub``; ``datasafe-node status`` uses it too).
EXIT_BLOBS_DAMAGED = 4
EXIT_FAILED = 1
#: A setting has a bad value (the message names the variable).
EXIT_USAGE = 2
TASKS = ("serve", "scrub", "backup", "restore", "migrate")


def main(argv: list[str] | None = None) -> None:
    restore_recursion_limit()
    from ledger.errors import SettingsError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in TASKS[1:]:
            raise SystemExit(_task(args[0], args[1:]))
        if args and args[0] == "serve":
            args = args[1:]
        _serve(args)
    except SettingsError as exc:  # a bad DATASAFE_* value: say which, no traceback
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _serve(argv: list[str]) -> None:
    import uvicorn

    from api.app import create_app

    parser = argparse.ArgumentParser(
        prog="datasafe-api",
        description="Run the DataSafe API (settings: DATASAFE_API_* env). "
        "Tasks: scrub, backup DIR, restore DIR.",
    )
    parser.add_argument("--host", help="bind address (default from settings)")
    parser.add_argument("--port", type=int, help="port (default from settings)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = ApiSettings(**overrides)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


def _task(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"datasafe-api {name}")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    if name in ("backup", "restore"):
        parser.add_argument("dir", type=Path)
    elif name == "migrate":
        parser.add_argument(
            "--sql", action="store_true", help="print the SQL of a whole upgrade, run nothing"
        )
        parser.add_argument(
            "--backup-dir", type=Path, help="where a SQLite file's copy goes (default: beside it)"
        )
    else:
        parser.add_argument("--max-blobs", type=int, help="blobs per pass (default: settings)")
        parser.add_argument("--max-bytes", type=int, help="bytes per pass (default: settings)")
        parser.add_argument(
            "--once", action="store_true", help="one bounded pass instead of a whole round"
        )
    args = parser.parse_args(argv)
    from api.errors import ApiError
    from ledger.errors import LedgerError

    settings = ApiSettings()
    try:
        if name == "scrub":
            report, code = _scrub(settings, args)
        elif name == "migrate":
            report, code = _migrate(settings, args)
            if args.sql:
                print(report["sql"])
                return code
        else:
            from api import backup

            fn = backup.backup if name == "backup" else backup.restore
            report, code = fn(settings, args.dir), 0
    except (ApiError, LedgerError) as exc:
        print(f"{name} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print(name, report)
    return code


def _scrub(settings: ApiSettings, args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    from api import db, scrub
    from ledger.manifest import Manifest
    from vault.store import BlobStore

    chain = None
    if settings.manifest_path is not None and settings.manifest_path.exists():
        deployment = Manifest.load(settings.manifest_path)
        chain = scrub.chain_digests(settings.rpc_url, deployment.ledger_address)
    engine = db.make_engine(settings.database_url)
    try:
        db.migrate(engine)
        run = scrub.scrub_pass if args.once else scrub.scrub_all
        done = run(
            engine,
            BlobStore(settings.blob_dir),
            max_blobs=args.max_blobs or settings.scrub_max_blobs,
            max_bytes=args.max_bytes or settings.scrub_max_bytes,
            chain=chain,
        )
        report = {"pass": done.as_dict(), "health": scrub.health(engine)}
    finally:
        engine.dispose()
    return report, 0 if report["health"]["ok"] else EXIT_BLOBS_DAMAGED


def _migrate(settings: ApiSettings, args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Upgrade the service's and the indexer's tables (or, ``--sql``, print the SQL only)."""
    from api import db
    from ledger import db as ledger_db

    both = (("api", db.MIGRATIONS), ("indexer", ledger_db.MIGRATIONS))
    if args.sql:
        return {"sql": "".join(m.sql(settings.database_url) for _, m in both)}, 0
    engine = db.make_engine(settings.database_url)
    report: dict[str, Any] = {}
    try:
        for label, migrations in both:
            before = migrations.current(engine)
            backup = migrations.upgrade(engine, backup_dir=args.backup_dir)
            report[label] = {
                "from": before,
                "to": migrations.current(engine),
                "backup": str(backup) if backup else None,
            }
    finally:
        engine.dispose()
    return report, 0


def _print(name: str, report: dict[str, Any]) -> None:
    if name != "scrub":
        print(json.dumps(report, indent=2, default=str))
        return
    done, health = report["pass"], report["health"]
    chain = "and the chain" if done["chain_checked"] else "(chain not read)"
    print(f"checked    {done['checked']} blob(s), {done['bytes_read']} bytes; DB {chain}")
    for f in done["findings"]:
        print(f"{f['problem']:<10} {f['asset_id']} blob {f['blob'][:16]}…: {f['detail']}")
    print(
        f"store      {health['blobs']} blob(s); missing {health['missing']}, "
        f"corrupt {health['corrupt']}"
    )
    print("status     ok" if health["ok"] else "status     DAMAGED: restore from a backup")
