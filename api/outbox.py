"""Relays that must end "confirmed and stored" or "failed and cleaned up", even across a crash.

A row is written before a transaction is sent and settled after its receipt;
:func:`api.startup.recover` finishes or cleans up rows left pending by a crash
by looking at what the chain actually holds.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api import errors
from api._shred import strip_secrets
from api.db import relays

#: Relays whose signed message can be used once only: a confirmed row is never replaced.
ONE_SHOT_KINDS = frozenset({"grant"})


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def begin(self, key: str, kind: str, payload: dict[str, Any]) -> None:
        """Claim ``key``; a concurrent claim (this or another replica) is a conflict.

        The key is the table's primary key, so of two replicas receiving the same signed
        consent at once exactly one inserts the row and relays it; the other gets 409.
        """
        try:
            self._begin(key, kind, payload)
        except sa.exc.IntegrityError as exc:
            raise errors.ConflictError(f"a relay for {key} is already in progress") from exc

    def _begin(self, key: str, kind: str, payload: dict[str, Any]) -> None:
        now = int(time.time())
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(relays.c.status).where(relays.c.id == key)).first()
            _refuse_taken(key, kind, None if row is None else str(row[0]))
            if row is not None:
                conn.execute(relays.delete().where(relays.c.id == key))
            conn.execute(
                relays.insert().values(
                    id=key,
                    kind=kind,
                    status="pending",
                    payload=payload,
                    tx_hash=None,
                    error=None,
                    created_at=now,
                    updated_at=now,
                )
            )

    def check_claimable(self, key: str, kind: str) -> None:
        """The conflict :meth:`begin` would raise now, without claiming (a read only).

        Lets a relay answer "in progress" / "already relayed" before it pre-flights a call
        that the chain would refuse because the first relay went through.
        """
        _refuse_taken(key, kind, self.status(key))

    def sent(self, key: str, tx_hash: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                relays.update()
                .where(relays.c.id == key)
                .values(tx_hash=tx_hash, updated_at=int(time.time()))
            )

    def settle(self, key: str, status: str, error: str | None = None) -> None:
        """Settle the row; a settled row keeps no secret (a grant's key package, which
        recovery needs only while the row is pending, is dropped from its payload)."""
        values: dict[str, Any] = {"status": status, "error": error, "updated_at": int(time.time())}
        with self._engine.begin() as conn:
            if status != "pending":
                row = conn.execute(sa.select(relays.c.payload).where(relays.c.id == key)).first()
                if row is not None:
                    stripped = strip_secrets(row[0])
                    if stripped != row[0]:
                        values["payload"] = stripped
            conn.execute(relays.update().where(relays.c.id == key).values(**values))

    def pending(self, older_than: float | None = None) -> list[dict[str, Any]]:
        """Pending rows; with ``older_than`` (seconds) only those untouched for that long."""
        stmt = sa.select(relays).where(relays.c.status == "pending")
        if older_than is not None:
            stmt = stmt.where(relays.c.updated_at < int(time.time() - older_than))
        with self._engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def in_flight(self) -> int:
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(relays)
                    .where(relays.c.status == "pending")
                ).scalar_one()
            )

    def status(self, key: str) -> str | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(relays.c.status).where(relays.c.id == key)).first()
        return None if row is None else str(row[0])


def _refuse_taken(key: str, kind: str, status: str | None) -> None:
    if status == "pending":
        raise errors.ConflictError(f"a relay for {key} is already in progress")
    if status == "confirmed" and kind in ONE_SHOT_KINDS:
        # A signed consent is relayed once; its row is the record of that relay.
        raise errors.ConflictError(f"{key} was already relayed and confirmed")
