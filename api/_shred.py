"""Crypto-shredding that reaches the disk: a revoked grant's key package is gone from every
place the service keeps bytes, not only from the table's live rows.

Where a package lives and how it leaves:

* ``api_key_packages`` — the row is deleted (:meth:`api._vault.VaultAdapter.delete_key_package`
  on a relayed revocation; :func:`delete_revoked` from the indexer for a revocation sent to
  the chain without the service; :func:`reconcile` at start-up for anything missed);
* ``api_relays`` — a grant's outbox row carries the package only while it is pending;
  settling strips it (:meth:`api.outbox.Outbox.settle`);
* SQLite — every connection runs ``PRAGMA secure_delete=ON`` (deleted cells and freed pages
  are zeroed) and :func:`finish` runs ``PRAGMA wal_checkpoint(TRUNCATE)`` so the WAL, which
  still holds the page images written when the package was inserted, is emptied;
* PostgreSQL — :func:`finish` runs ``VACUUM`` on both tables, which removes the dead tuples
  from the heap; what it does not guarantee (WAL segments, backups, replicas, page space not
  zeroed) is written down in docs/operations.md.

The service never logs a package, and the transaction journal holds ``grantBySig`` calldata
only (the package is not in it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from api.db import key_packages, relays
from ledger import db as ledger_db
from ledger.indexer import DecodedEvent

log = logging.getLogger("api.shred")

#: Outbox payload keys that hold secrets; dropped once the relay is settled.
SECRET_PAYLOAD_KEYS = ("key_package",)
#: Tables whose deleted rows held package bytes (VACUUMed on PostgreSQL).
SHREDDED_TABLES = (key_packages.name, relays.name)
#: Attempts at a TRUNCATE checkpoint while readers hold an older snapshot.
CHECKPOINT_ATTEMPTS = 20

_GRANTS: sa.Table = ledger_db.grants


def _is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def finish(engine: Engine) -> bool:
    """Push deleted package bytes out of the files the database keeps.

    SQLite: checkpoint the WAL into the main file and truncate it to zero bytes (the deleted
    cells are already zeroed by ``secure_delete``). PostgreSQL: ``VACUUM`` the tables that held
    packages. Returns False when SQLite could not truncate (readers kept an old snapshot for
    every attempt): the caller tries again on its next batch.
    """
    if _is_sqlite(engine):
        with engine.connect() as conn:
            for attempt in range(CHECKPOINT_ATTEMPTS):
                row = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
                if row is None or int(row[0]) == 0:
                    return True
                time.sleep(0.05 * (attempt + 1))
        log.warning("WAL checkpoint stayed busy; deleted key packages wait for the next one")
        return False
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in SHREDDED_TABLES:
            conn.exec_driver_sql(f"VACUUM {table}")
    return True


def revoked_in(events: Sequence[DecodedEvent]) -> list[str]:
    """Grant ids of the ``ConsentRevoked`` events among ``events`` (lowercase hex)."""
    return sorted({str(e.args["grantId"]).lower() for e in events if e.name == "ConsentRevoked"})


def delete_packages(conn: Connection, grant_ids: Sequence[str]) -> list[bytes]:
    """Delete the key packages of ``grant_ids`` inside the caller's transaction; returns the
    deleted packages (so memoised disclosures embedding them can be dropped too)."""
    if not grant_ids:
        return []
    where = key_packages.c.grant_id.in_(grant_ids)
    gone = [bytes(p) for p in conn.scalars(sa.select(key_packages.c.package).where(where))]
    conn.execute(key_packages.delete().where(where))
    return gone


class RevocationShredder:
    """The indexer's hook: a grant revoked on chain (by anyone, through any relayer) loses its
    key package in the same transaction that indexes the revocation; :meth:`flush` then runs
    :func:`finish` once per batch, outside that transaction."""

    def __init__(self, engine: Engine, forget: Callable[[bytes], None] | None = None) -> None:
        self._engine = engine
        self._forget = forget
        self.pending = False
        self.deleted = 0

    def on_events(self, conn: Connection, events: Sequence[DecodedEvent]) -> None:
        revoked = revoked_in(events)
        if revoked:
            gone = delete_packages(conn, revoked)
            count = len(gone)
            self.deleted += count
            if self._forget is not None:
                for package in gone:
                    self._forget(package)
            # Finish even when nothing was deleted here: the relay path may have deleted it
            # and its checkpoint may have been busy.
            self.pending = True
            if count:
                log.info("shredded key packages of grants revoked on chain", extra={"n": count})

    def flush(self) -> None:
        """Finish a batch of deletions; a database hiccup leaves it pending for the next."""
        if not self.pending:
            return
        try:
            done = finish(self._engine)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("shredding checkpoint failed (retried next batch): %s", exc)
            return
        if done:
            self.pending = False


def reconcile(engine: Engine) -> dict[str, int]:
    """Start-up sweep: packages of grants the index holds as revoked, and package bytes left in
    settled outbox rows (databases written before settling stripped them), are removed."""
    counts = {"packages": 0, "relay_payloads": 0}
    inspector = sa.inspect(engine)
    with engine.begin() as conn:
        if inspector.has_table(_GRANTS.name):
            revoked = sa.select(_GRANTS.c.grant_id).where(_GRANTS.c.status == "revoked")
            result = conn.execute(key_packages.delete().where(key_packages.c.grant_id.in_(revoked)))
            counts["packages"] = int(result.rowcount or 0)
        rows = conn.execute(
            sa.select(relays.c.id, relays.c.payload).where(
                relays.c.status != "pending",
                sa.cast(relays.c.payload, sa.Text).like('%"key_package"%'),
            )
        ).all()
        for key, payload in rows:
            stripped = strip_secrets(payload)
            if stripped != payload:
                conn.execute(relays.update().where(relays.c.id == key).values(payload=stripped))
                counts["relay_payloads"] += 1
    if counts["packages"] or counts["relay_payloads"]:
        finish(engine)
        log.info("shredded leftovers at start-up", extra=counts)
    return counts


def strip_secrets(payload: object) -> object:
    """The payload without :data:`SECRET_PAYLOAD_KEYS` (other values unchanged)."""
    if not isinstance(payload, dict):
        return payload
    return {k: v for k, v in payload.items() if k not in SECRET_PAYLOAD_KEYS}
