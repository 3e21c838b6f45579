"""What the service broadcast, and how several replicas share one custodian key.

Three pieces of cross-process coordination live here, all in the shared database:

* :class:`TxJournal` keeps every raw signed transaction the service broadcasts
  (written *before* it is sent) and the block it was mined in. After the chain
  lost blocks (a SIGKILLed embedded node restores a ``--state`` file older than
  our records), :func:`resubmit` broadcasts the same bytes again in (sender,
  nonce) order: the same bytes give the same transaction hash, hence the same
  grant ids, and the records the database holds become true again.
* :meth:`TxJournal.nonce_slot` serialises nonce allocation + broadcast for one
  key across processes: a session advisory lock on the key (PostgreSQL) is held
  until the broadcast is done, while the journal entry and the key's next nonce
  in ``api_nonce_locks`` are committed together before it. On SQLite the lock
  is a no-op: one API process per SQLite database is assumed.
* :class:`IndexerLease` elects the one replica that runs the event indexer: a
  PostgreSQL session-level advisory lock held on a dedicated connection. When
  the holder dies its connection closes and PostgreSQL releases the lock, so a
  standby's next try (every poll interval) takes over. On SQLite the lease is
  always granted (single process).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from api import errors
from api._nonce_slots import PgNonceSlots
from api._nonce_slots import advisory_key as _advisory_key
from api.db import (
    assets,
    grants,
    nonce_locks,
    relays,
    schemas,
    single_statement,
    tx_journal,
)
from ledger import errors as lerr
from ledger.rpc import RpcClient

log = logging.getLogger("api.journal")

#: Advisory-lock key of the indexer lease ("DSIDX" in ASCII; any constant works).
INDEXER_LEASE_KEY = 0x4453494458


@dataclass(frozen=True, slots=True)
class JournalEntry:
    tx_hash: str
    sender: str
    nonce: int
    raw: bytes
    kind: str
    block: int | None
    ok: bool | None = None


class NonceSlot:
    """One sender's locked nonce row, from :meth:`TxJournal.nonce_slot` to :meth:`release`.

    The transaction about to be broadcast is journaled together with the next nonce, in one
    database transaction committed *before* the broadcast (:meth:`journal`); the lock stays
    held across the broadcast, so replicas still hand transactions to the node in nonce
    order, and :meth:`release` usually has nothing left to write. On PostgreSQL the lock is
    a session advisory lock of this (autocommit) connection, which outlives that commit;
    on SQLite there is one process per database and the relayer's own lock is the lock.
    """

    def __init__(self, conn: Connection, sender: str, stored: int, lock_key: int | None) -> None:
        self._conn = conn
        self.sender = sender
        self.stored = stored
        self._lock_key = lock_key
        #: The next nonce :meth:`journal` committed (None: nothing written yet).
        self._written: int | None = None

    def journal(self, entry: dict[str, Any], next_nonce: int) -> None:
        """Journal ``entry`` (a :meth:`TxJournal.entry`) and store ``next_nonce``: one commit."""
        next_nonce = max(next_nonce, self._written or 0)
        bump = (
            nonce_locks.update()
            .where(nonce_locks.c.sender == self.sender)
            .values(next_nonce=next_nonce)
        )
        if self._lock_key is not None:
            # One statement (a data-modifying CTE) in autocommit: one round trip, atomic.
            row = pg_insert(tx_journal).values(**entry).on_conflict_do_nothing()
            self._conn.execute(bump.add_cte(row.cte("journaled")))
        else:
            self._conn.execute(sqlite_insert(tx_journal).values(**entry).on_conflict_do_nothing())
            self._conn.execute(bump)
            self._conn.commit()
        self._written = next_nonce

    def release(self, next_nonce: int | None) -> None:
        """Store ``next_nonce`` unless :meth:`journal` did; None: put the stored value back."""
        target = next_nonce if next_nonce is not None else self.stored
        try:
            if target != (self.stored if self._written is None else self._written):
                self._conn.execute(
                    nonce_locks.update()
                    .where(nonce_locks.c.sender == self.sender)
                    .values(next_nonce=target)
                )
            if self._lock_key is None:
                self._conn.commit()
            else:
                self._conn.execute(sa.select(sa.func.pg_advisory_unlock(self._lock_key)))
        except BaseException:
            # Never hand a connection that may still hold the lock back to the pool.
            self._conn.invalidate()
            raise
        finally:
            self._conn.close()


class TxJournal:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        #: senders whose nonce row is known to exist (rows are never deleted)
        self._nonce_rows: set[str] = set()
        self._postgres = engine.dialect.name == "postgresql"

    # ---- nonce allocation across replicas ----------------------------------------------

    def event_loop_slots(self) -> PgNonceSlots | None:
        """The nonce slots on the event loop (PostgreSQL); None: use :meth:`nonce_slot`."""
        return PgNonceSlots(self._engine) if self._postgres else None

    def nonce_slot(self, sender: str) -> NonceSlot:
        """Lock ``sender``'s nonce row (blocks while another replica holds it)."""
        sender = sender.lower()
        if sender not in self._nonce_rows:
            try:
                with self._engine.begin() as conn:
                    conn.execute(nonce_locks.insert().values(sender=sender, next_nonce=0))
            except sa.exc.IntegrityError:
                pass  # the row exists (possibly just created by another replica)
            self._nonce_rows.add(sender)
        lock_key = _advisory_key(sender) if self._postgres else None
        conn = self._engine.connect()
        try:
            if lock_key is not None:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(sa.select(sa.func.pg_advisory_lock(lock_key)))
            stmt = sa.select(nonce_locks.c.next_nonce).where(nonce_locks.c.sender == sender)
            stored = int(conn.execute(stmt).scalar_one())
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        return NonceSlot(conn, sender, stored, lock_key)

    def reset_nonce(self, sender: str, next_nonce: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                nonce_locks.update()
                .where(nonce_locks.c.sender == sender.lower())
                .values(next_nonce=next_nonce)
            )

    # ---- the journal ---------------------------------------------------------------------

    @staticmethod
    def entry(*, tx_hash: str, sender: str, nonce: int, raw: bytes, kind: str) -> dict[str, Any]:
        """The journal row of a transaction about to be broadcast."""
        return {
            "tx_hash": tx_hash.lower(),
            "sender": sender.lower(),
            "nonce": nonce,
            "raw": raw,
            "kind": kind,
            "block": None,
            "created_at": int(time.time()),
            "seq": time.time_ns(),
        }

    def record(self, *, tx_hash: str, sender: str, nonce: int, raw: bytes, kind: str) -> None:
        """Journal a transaction before it is broadcast (idempotent on its hash)."""
        row = self.entry(tx_hash=tx_hash, sender=sender, nonce=nonce, raw=raw, kind=kind)
        try:
            with self._engine.begin() as conn:
                conn.execute(tx_journal.insert().values(**row))
        except sa.exc.IntegrityError:
            pass  # the same bytes were journaled already (a retry or the other replica)

    def unmined_raw(self, sender: str, low: int, high: int) -> list[bytes]:
        """Journaled, never seen mined transactions of ``sender`` with nonces in [low, high)."""
        c = tx_journal.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.raw)
                .where(c.sender == sender.lower(), c.nonce >= low, c.nonce < high)
                .where(c.block.is_(None))
                .order_by(c.nonce, c.seq)
            ).scalars()
            return [bytes(r) for r in rows]

    def forget(self, tx_hash: str) -> None:
        """Drop a transaction the node refused outright: it can never be mined."""
        with self._engine.begin() as conn:
            conn.execute(tx_journal.delete().where(tx_journal.c.tx_hash == tx_hash.lower()))

    def mined(
        self,
        tx_hash: str,
        block: int,
        block_hash: str | None,
        ok: bool = True,
        superseded: Sequence[str] = (),
    ) -> None:
        """``tx_hash`` was mined; ``superseded``: other versions of its nonce, never to be.

        One database transaction: the other versions leave the journal, and a relay row
        that named one of them names the mined version instead.
        """
        h = tx_hash.lower()
        others = [o.lower() for o in superseded if o.lower() != h]
        mark = (
            tx_journal.update()
            .where(tx_journal.c.tx_hash == h)
            .values(block=block, block_hash=block_hash, ok=ok)
        )
        if not others:  # the usual case: one statement
            with single_statement(self._engine) as conn:
                conn.execute(mark)
            return
        with self._engine.begin() as conn:
            conn.execute(mark)
            _supersede(conn, others, h)

    def supersede(self, superseded: Sequence[str], mined: str) -> None:
        """Other versions of ``mined``'s nonce leave the journal; relay rows name ``mined``."""
        with self._engine.begin() as conn:
            _supersede(conn, [o.lower() for o in superseded], mined.lower())

    def common_ancestor(self, block_hash_at: Callable[[int], str | None]) -> int:
        """Highest journaled block the chain still has (same hash); -1 if none.

        Blocks are hash-chained, so everything mined at or below it is intact: walking
        down from the newest journaled block usually costs one lookup.
        """
        below: int | None = None
        while True:
            stmt = (
                sa.select(tx_journal.c.block, tx_journal.c.block_hash)
                .where(tx_journal.c.block.is_not(None))
                .distinct()
                .order_by(tx_journal.c.block.desc())
                .limit(500)
            )
            if below is not None:
                stmt = stmt.where(tx_journal.c.block < below)
            with self._engine.connect() as conn:
                rows = conn.execute(stmt).all()
            if not rows:
                break
            for block, block_hash in rows:
                if block_hash is not None and block_hash_at(int(block)) == block_hash:
                    return int(block)
            below = int(rows[-1][0])
        return -1

    def unconfirmed(self, ancestor: int) -> list[JournalEntry]:
        """Entries never seen mined, or mined above ``ancestor`` (lost with the chain's tail)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(tx_journal)
                .where(sa.or_(tx_journal.c.block.is_(None), tx_journal.c.block > ancestor))
                # The order they were mined in (dependencies first: an anchor before the
                # grant on it), then the ones never seen mined in the order they were sent.
                .order_by(
                    tx_journal.c.block.is_(None),
                    tx_journal.c.block,
                    tx_journal.c.seq,
                )
            ).mappings()
            return [
                JournalEntry(
                    tx_hash=r["tx_hash"],
                    sender=r["sender"],
                    nonce=int(r["nonce"]),
                    raw=bytes(r["raw"]),
                    kind=r["kind"],
                    block=None if r["block"] is None else int(r["block"]),
                    ok=r["ok"],
                )
                for r in rows
            ]

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(tx_journal)).scalar_one()
            )

    def remined(self, tx_hash: str, block: int, block_hash: str | None) -> None:
        """A re-submitted transaction landed in ``block``: move every record that cites it."""
        h = tx_hash.lower()
        with self._engine.begin() as conn:
            conn.execute(
                tx_journal.update()
                .where(tx_journal.c.tx_hash == h)
                .values(block=block, block_hash=block_hash)
            )
            conn.execute(grants.update().where(grants.c.tx_hash == h).values(block=block))
            conn.execute(schemas.update().where(schemas.c.tx_hash == h).values(block=block))
            conn.execute(assets.update().where(assets.c.anchor_tx == h).values(anchor_block=block))


def _supersede(conn: Connection, others: list[str], mined: str) -> None:
    if others:
        conn.execute(tx_journal.delete().where(tx_journal.c.tx_hash.in_(others)))
        conn.execute(relays.update().where(relays.c.tx_hash.in_(others)).values(tx_hash=mined))


# ---- re-submission after a lost chain -----------------------------------------------------


@dataclass
class ResubmitReport:
    checked: int = 0
    already_mined: int = 0
    resubmitted: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "already_mined": self.already_mined,
            "resubmitted": len(self.resubmitted),
            "dropped": len(self.dropped),
            "lost": list(self.lost),
        }


class ResubmitError(errors.ApiError):
    """Journaled, once-mined transactions can no longer be restored (their nonce is taken)."""

    slug, status, title = "chain_not_restorable", 503, "The chain lost records it cannot regain"


class _Chain:
    """Blocking calls over ledger's transport for start-up work outside the event loop."""

    def __init__(self, rpc: RpcClient) -> None:
        self._rpc = rpc

    def __call__(self, method: str, params: list[Any]) -> Any:
        try:
            return self._rpc.call(method, params)
        except lerr.RpcUnavailableError as exc:
            raise errors.ChainUnavailableError(f"{method}: {exc.reason}") from exc

    def mined(self, tx_hash: str) -> dict[str, Any] | None:
        receipt = self("eth_getTransactionReceipt", [tx_hash])
        return receipt if receipt is not None and receipt.get("blockNumber") is not None else None


def resubmit(
    journal: TxJournal, rpc: RpcClient, *, timeout: float = 30.0, poll: float = 0.02
) -> ResubmitReport:
    """Give the chain back every journaled transaction it does not hold, same bytes.

    Transactions go back one at a time in the order they were first mined (then the
    never-mined ones in journal order), each awaited before the next, so a grant is
    never re-mined before the anchor it depends on. Entries never mined whose nonce
    another transaction took are dropped (nothing was recorded on their strength; the
    outbox settles their relays). Entries once mined whose nonce is now taken, or that
    do not get mined again, make the records unrestorable: :class:`ResubmitError`.
    """
    chain = _Chain(rpc)

    def block_hash_at(number: int) -> str | None:
        block = chain("eth_getBlockByNumber", [hex(number), False])
        return None if block is None else str(block["hash"])

    entries = journal.unconfirmed(journal.common_ancestor(block_hash_at))
    report = ResubmitReport(checked=len(entries))
    senders: set[str] = set()
    for entry in entries:
        senders.add(entry.sender)
        _resubmit_one(journal, chain, entry, report, timeout=timeout, poll=poll)
    kept = {
        (e.sender, e.nonce): e.tx_hash
        for e in entries
        if e.tx_hash not in report.dropped and e.tx_hash not in report.lost
    }
    for e in entries:
        if e.tx_hash in report.dropped and (e.sender, e.nonce) in kept:
            # A replacement of it was mined: the relay rows that named it follow.
            journal.supersede([e.tx_hash], kept[(e.sender, e.nonce)])
        elif e.tx_hash in report.dropped:
            journal.forget(e.tx_hash)
    for sender in senders:
        journal.reset_nonce(sender, int(chain("eth_getTransactionCount", [sender, "pending"]), 16))
    if report.resubmitted or report.dropped or report.lost:
        log.warning("re-submitted journaled transactions", extra=report.as_dict())
    if report.lost:
        raise ResubmitError(
            f"{len(report.lost)} transaction(s) the database recorded as mined cannot be "
            f"restored (nonce taken or not mined again): {', '.join(report.lost[:5])}"
        )
    return report


def _resubmit_one(
    journal: TxJournal,
    chain: _Chain,
    entry: JournalEntry,
    report: ResubmitReport,
    *,
    timeout: float,
    poll: float,
) -> None:
    def give_up() -> None:
        (report.lost if entry.block is not None else report.dropped).append(entry.tx_hash)

    receipt = chain.mined(entry.tx_hash)
    if receipt is not None:
        journal.remined(entry.tx_hash, int(receipt["blockNumber"], 16), receipt["blockHash"])
        report.already_mined += 1
        return
    if entry.nonce < int(chain("eth_getTransactionCount", [entry.sender, "latest"]), 16):
        return give_up()  # another transaction holds this nonce on the chain now
    try:
        chain("eth_sendRawTransaction", ["0x" + entry.raw.hex()])
    except lerr.RpcResponseError as exc:
        if "already known" not in exc.rpc_message.lower():
            return give_up()
    deadline = time.monotonic() + timeout
    while (receipt := chain.mined(entry.tx_hash)) is None:
        if time.monotonic() > deadline:
            return give_up()
        time.sleep(poll)
    journal.remined(entry.tx_hash, int(receipt["blockNumber"], 16), receipt["blockHash"])
    if int(receipt.get("status", "0x1"), 16) == 1 or entry.ok is not True:
        report.resubmitted.append(entry.tx_hash)
    else:
        # Mined again but reverted now (e.g. its signature's deadline passed during the
        # outage): what the database records is not restored.
        report.lost.append(entry.tx_hash)


# ---- the indexer lease --------------------------------------------------------------------


class IndexerLease:
    """At most one replica indexes at a time (PostgreSQL advisory lock on its own connection)."""

    def __init__(self, engine: Engine, key: int = INDEXER_LEASE_KEY) -> None:
        self._engine = engine
        self._key = key
        self._postgres = engine.dialect.name == "postgresql"
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return not self._postgres or self._conn is not None

    def acquire(self) -> bool:
        """Hold the lease (keep it if held and the connection is alive); False if another has it."""
        if not self._postgres:
            return True
        if self._conn is not None:
            try:
                still = self._conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND pid = pg_backend_pid() AND granted "
                        "AND ((classid::bigint << 32) | objid::bigint) = :k"
                    ),
                    {"k": self._key},
                ).scalar_one()
                self._conn.commit()
                if still:
                    return True
            except sa.exc.SQLAlchemyError as exc:
                log.warning("indexer lease connection lost: %s", exc)
            self.release()
        conn = self._engine.connect()
        try:
            got = bool(
                conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
            )
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        log.info("indexer lease acquired")
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            conn.commit()
        except sa.exc.SQLAlchemyError:
            pass
        finally:
            conn.invalidate()  # never return a connection with session state to the pool
            conn.close()
