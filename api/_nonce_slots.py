"""The relayer's nonce slot on PostgreSQL, driven by the event loop (see :class:`PgNonceSlots`).

The threaded slot, the journal and the rules both follow are :mod:`api.journal`'s.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from api.db import nonce_locks, tx_journal


def advisory_key(sender: str) -> int:
    """The advisory-lock key of ``sender``'s nonce slot: "DSN" and the address's low 40 bits."""
    return (0x44534E << 40) | (int(sender, 16) & (2**40 - 1))


class PgNonceSlots:
    """:meth:`api.journal.TxJournal.nonce_slot` for the relayer on PostgreSQL, on the event
    loop: one dedicated asyncio connection per sender, no worker thread.

    The slot is what every replica's custodian send queues on, so what it costs while held
    is what two replicas' sends add up to. Here each step under the lock is one round trip:
    the advisory lock and the read of the stored next nonce go out pipelined (the read runs
    once the lock is granted, on a snapshot taken then); the journal entry and the next
    nonce are one statement, committed before the broadcast as before; the unlock (with the
    nonce put back after a failed send) is the last. Any error or cancellation closes the
    connection, and the server releases the lock with the session.
    """

    def __init__(self, engine: Engine) -> None:
        self._connect_args = engine.dialect.create_connect_args(engine.url)
        self._sql = _slot_statements(engine.dialect)
        self._conns: dict[str, tuple[psycopg.AsyncConnection[Any], asyncio.AbstractEventLoop]] = {}
        #: sender -> (stored next nonce, the next nonce :meth:`journal` committed or None)
        self._held: dict[str, tuple[int, int | None]] = {}

    async def _conn(self, sender: str) -> psycopg.AsyncConnection[Any]:
        loop = asyncio.get_running_loop()
        have = self._conns.get(sender)
        if have is not None and have[1] is loop and not have[0].closed:
            return have[0]
        self._drop(sender)
        args, kwargs = self._connect_args
        conn = await psycopg.AsyncConnection.connect(*args, autocommit=True, **kwargs)
        try:
            # The row exists from here on (rows are never deleted).
            await conn.execute(self._sql["row"], {"slot_sender": sender, "next_nonce": 0})
        except BaseException:
            await conn.close()
            raise
        self._conns[sender] = (conn, loop)
        return conn

    def _drop(self, sender: str) -> None:
        self._held.pop(sender, None)
        have = self._conns.pop(sender, None)
        if have is not None:
            have[0].pgconn.finish()  # synchronous: safe while being cancelled

    async def acquire(self, sender: str) -> int:
        """Lock ``sender``'s slot (waiting for other replicas); its stored next nonce."""
        sender = sender.lower()
        for attempt in (1, 2):
            reused = sender in self._conns
            try:
                conn = await self._conn(sender)
                async with conn.pipeline():
                    await conn.execute(self._sql["lock"], {"key": advisory_key(sender)})
                    cur = await conn.execute(self._sql["read"], {"slot_sender": sender})
                row = await cur.fetchone()
                break
            except psycopg.OperationalError:
                self._drop(sender)
                if not reused or attempt == 2:
                    raise
                # The kept connection died while idle (a server restart): once more, anew.
            except BaseException:
                self._drop(sender)
                raise
        assert row is not None
        self._held[sender] = (int(row[0]), None)
        return int(row[0])

    def holds(self, sender: str) -> bool:
        """Whether this process holds ``sender``'s slot now."""
        return sender.lower() in self._held

    async def journal(self, sender: str, entry: dict[str, Any], next_nonce: int) -> None:
        """:meth:`NonceSlot.journal`: ``entry`` and ``next_nonce`` in one commit."""
        sender = sender.lower()
        stored, written = self._held[sender]
        next_nonce = max(next_nonce, written or 0)
        params = {c: entry[c] for c in _JOURNAL_COLUMNS}
        params |= {"next_nonce": next_nonce, "slot_sender": sender}
        try:
            await self._conns[sender][0].execute(self._sql["journal"], params)
        except BaseException:
            self._drop(sender)
            raise
        self._held[sender] = (stored, next_nonce)

    async def release(self, sender: str, next_nonce: int | None) -> None:
        """:meth:`NonceSlot.release`: store ``next_nonce`` unless journaled (None: put the
        stored value back), and unlock."""
        sender = sender.lower()
        stored, written = self._held.pop(sender)
        target = next_nonce if next_nonce is not None else stored
        try:
            conn = self._conns[sender][0]
            async with conn.pipeline():
                if target != (stored if written is None else written):
                    store = {"next_nonce": target, "slot_sender": sender}
                    await conn.execute(self._sql["store"], store)
                await conn.execute(self._sql["unlock"], {"key": advisory_key(sender)})
        except BaseException:
            self._drop(sender)
            raise

    async def aclose(self) -> None:
        for sender in list(self._conns):
            self._drop(sender)


def _slot_statements(dialect: sa.Dialect) -> dict[str, str]:
    """The slot's statements as SQL text of ``dialect`` (psycopg's ``%(name)s`` parameters)."""
    key = sa.bindparam("key", type_=sa.BigInteger)
    store = (
        nonce_locks.update()
        .where(nonce_locks.c.sender == sa.bindparam("slot_sender"))
        .values(next_nonce=sa.bindparam("next_nonce"))
    )
    journal = pg_insert(tx_journal).values(
        {c: sa.bindparam(c, type_=tx_journal.c[c].type) for c in _JOURNAL_COLUMNS}
    )
    statements = {
        "row": pg_insert(nonce_locks)
        .values(sender=sa.bindparam("slot_sender"), next_nonce=0)
        .on_conflict_do_nothing(),
        "lock": sa.select(sa.func.pg_advisory_lock(key)),
        "unlock": sa.select(sa.func.pg_advisory_unlock(key)),
        "read": sa.select(nonce_locks.c.next_nonce).where(
            nonce_locks.c.sender == sa.bindparam("slot_sender")
        ),
        "store": store,
        # One statement (a data-modifying CTE, autocommit): the journal row and the next nonce.
        "journal": store.add_cte(journal.on_conflict_do_nothing().cte("journaled")),
    }
    return {name: str(stmt.compile(dialect=dialect)) for name, stmt in statements.items()}


_JOURNAL_COLUMNS = ("tx_hash", "sender", "nonce", "raw", "kind", "block", "created_at", "seq")
