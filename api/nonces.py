"""Replay protection: each (signer, nonce) is accepted once within the time window.

Concurrent requests' nonces are inserted together (group commit): one
transaction per flush instead of one per request, falling back to row-by-row
inserts only when the batch hits a duplicate. Rows older than the window are
pruned: a request that old is refused by its timestamp before its nonce is
ever looked at, so forgetting it is safe.
"""

from __future__ import annotations

import asyncio
import threading
import time

import sqlalchemy as sa
from anyio import to_thread
from sqlalchemy.engine import Engine

from api.db import request_nonces, single_statement

_Row = tuple[str, bytes, int]


class NonceStore:
    def __init__(self, engine: Engine, window_seconds: int) -> None:
        self._engine = engine
        self._window = window_seconds
        self._last_prune = 0.0
        self._prune_lock = threading.Lock()
        self._pending: list[tuple[_Row, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def consume_async(self, signer: str, nonce: bytes, timestamp: int) -> bool:
        """Record the nonce; False if this signer already used it (a replay)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._pending.append(((signer.lower(), nonce, timestamp), fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await asyncio.shield(fut)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await to_thread.run_sync(self.consume_many, [row for row, _ in batch])
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), ok in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(ok)

    def consume(self, signer: str, nonce: bytes, timestamp: int) -> bool:
        return self.consume_many([(signer.lower(), nonce, timestamp)])[0]

    def consume_many(self, rows: list[_Row]) -> list[bool]:
        seen: set[tuple[str, bytes]] = set()
        fresh: list[_Row] = []
        results: list[bool] = []
        for signer, nonce, ts in rows:
            key = (signer, nonce)
            results.append(key not in seen)
            if key not in seen:
                seen.add(key)
                fresh.append((signer, nonce, ts))
        try:
            # One multi-row INSERT: one statement, all rows or none.
            with single_statement(self._engine) as conn:
                conn.execute(
                    request_nonces.insert().values(
                        [{"signer": s, "nonce": n, "ts": t} for s, n, t in fresh]
                    )
                )
        except sa.exc.IntegrityError:
            # Someone in the batch is a replay: settle each row on its own.
            ok_by_key = {(s, n): self._insert_one(s, n, t) for s, n, t in fresh}
            first: set[tuple[str, bytes]] = set()
            results = []
            for signer, nonce, _ in rows:
                key = (signer, nonce)
                results.append(ok_by_key[key] and key not in first)
                first.add(key)
        self._maybe_prune()
        return results

    def _insert_one(self, signer: str, nonce: bytes, ts: int) -> bool:
        try:
            with self._engine.begin() as conn:
                conn.execute(request_nonces.insert().values(signer=signer, nonce=nonce, ts=ts))
        except sa.exc.IntegrityError:
            return False
        return True

    def prune(self, now: float | None = None) -> int:
        cutoff = int(time.time() if now is None else now) - self._window - 1
        with self._engine.begin() as conn:
            result = conn.execute(request_nonces.delete().where(request_nonces.c.ts < cutoff))
        return int(result.rowcount or 0)

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < self._window / 4:
            return
        if not self._prune_lock.acquire(blocking=False):
            return
        try:
            self._last_prune = now
            self.prune()
        finally:
            self._prune_lock.release()
