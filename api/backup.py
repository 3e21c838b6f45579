"""Backup and restore of what the service keeps: the database and the blob store.

``backup(DIR)`` writes, into a new (or empty) directory made owner-only:

* ``datasafe.db`` — SQLite through its online backup API (consistent while the service
  runs), or ``database.dump`` — PostgreSQL through ``pg_dump --format=custom``;
* ``blobs/`` — every blob of the store, verified against its content address on the way;
* ``backup.json`` — what was copied, and when.

The database is copied first, then the blobs, so every blob the copied database names is in
the copy (blobs are content-addressed and immutable; one written after the database copy is
an orphan, harmless).

``restore(DIR)`` (the service stopped) puts the database back (SQLite backup API into the
live file, which handles its WAL; ``pg_restore --clean``) and copies back every blob that is
missing or damaged in the store. It then shreds again (:func:`api._shred.reconcile`): a backup
holds the key packages of grants revoked after it was taken; the restored index is behind the
chain, and when the service starts, the indexer re-reads those revocations and deletes the
packages again. Run ``datasafe-node scrub`` afterwards: it must report no missing blob.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from api import _shred, db, errors
from api.settings import ApiSettings

BACKUP_FILE = "backup.json"
SQLITE_FILE = "datasafe.db"
PG_DUMP_FILE = "database.dump"
BLOBS = "blobs"
FORMAT = 1


class BackupError(errors.ApiError):
    """A backup or restore could not be made (destination not empty, tool missing, …)."""


def _sqlite_path(url: sa.URL) -> Path | None:
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _pg_env(url: sa.URL) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, which goes through PGPASSWORD (not argv)."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(argv: list[str], env: dict[str, str]) -> None:
    exe = shutil.which(argv[0])
    if exe is None:
        raise BackupError(f"{argv[0]} is not installed (PostgreSQL client tools are needed)")
    done = subprocess.run([exe, *argv[1:]], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[:2000]}")


def _copy_blobs(src: Path, dst: Path) -> dict[str, int]:
    """Copy every blob whose bytes match its address and that ``dst`` lacks or holds damaged."""
    counts = {"copied": 0, "present": 0, "damaged_in_source": 0}
    if not src.is_dir():
        return counts
    for sub in sorted(p for p in src.iterdir() if p.is_dir() and len(p.name) == 2):
        for f in sorted(sub.iterdir()):
            try:
                digest = bytes.fromhex(f.name)
            except ValueError:
                continue
            data = f.read_bytes()
            if hashlib.sha256(data).digest() != digest:
                counts["damaged_in_source"] += 1
                continue
            target = dst / sub.name / f.name
            if target.exists() and hashlib.sha256(target.read_bytes()).digest() == digest:
                counts["present"] += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = target.with_name(f".{f.name}.restore")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
            counts["copied"] += 1
    return counts


def backup(settings: ApiSettings, dest: Path) -> dict[str, Any]:
    """Copy the database, then the blobs, into ``dest`` (created 0700; must be empty)."""
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: back up into a new directory")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(dest, 0o700)
    url = sa.make_url(settings.database_url)
    path = _sqlite_path(url)
    report: dict[str, Any] = {"format": FORMAT, "created_at": int(time.time())}
    if path is not None:
        if not path.exists():
            raise BackupError(f"no database at {path}")
        target = dest / SQLITE_FILE
        src = sqlite3.connect(path)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
                # A self-contained file: no WAL beside it.
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
        finally:
            src.close()
        os.chmod(target, 0o600)
        report["database"] = {"kind": "sqlite", "file": SQLITE_FILE}
    else:
        uri, env = _pg_env(url)
        target = dest / PG_DUMP_FILE
        _run(["pg_dump", "--format=custom", "--no-owner", f"--file={target}", uri], env)
        os.chmod(target, 0o600)
        report["database"] = {"kind": "postgresql", "file": PG_DUMP_FILE}
    report["blobs"] = _copy_blobs(settings.blob_dir, dest / BLOBS)
    (dest / BACKUP_FILE).write_text(json.dumps(report, indent=2) + "\n")
    os.chmod(dest / BACKUP_FILE, 0o600)
    return report


def restore(settings: ApiSettings, src: Path) -> dict[str, Any]:
    """Put a backup back (stop the service first): database, then every missing blob."""
    try:
        meta = json.loads((src / BACKUP_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{src} is not a backup: {src / BACKUP_FILE}: {exc}") from exc
    url = sa.make_url(settings.database_url)
    path = _sqlite_path(url)
    kind = meta.get("database", {}).get("kind")
    report: dict[str, Any] = {"backup_created_at": meta.get("created_at")}
    if path is not None:
        if kind != "sqlite":
            raise BackupError(f"the backup holds a {kind} database, the service uses SQLite")
        path.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(src / SQLITE_FILE)
        try:
            live = sqlite3.connect(path)
            try:
                source.backup(live)
                live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                live.close()
        finally:
            source.close()
        report["database"] = {"kind": "sqlite", "file": str(path)}
    else:
        if kind != "postgresql":
            raise BackupError(f"the backup holds a {kind} database, the service uses PostgreSQL")
        uri, env = _pg_env(url)
        _run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                f"--dbname={uri}",
                str(src / PG_DUMP_FILE),
            ],
            env,
        )
        report["database"] = {"kind": "postgresql"}
    report["blobs"] = _copy_blobs(src / BLOBS, settings.blob_dir)
    engine = db.make_engine(settings.database_url)
    try:
        db.migrate(engine)
        report["shredded"] = _shred.reconcile(engine)
    finally:
        engine.dispose()
    return report
