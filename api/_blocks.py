"""Fresh-enough chain reads without one RPC per request.

``BlockClock.latest()`` returns a block number read by a fetch that *started
after the call began*, so a caller never sees a block older than the chain's
head at the moment it asked; concurrent callers share fetches, so under load
the node sees roughly one ``eth_blockNumber`` per round trip, not per request.
``PerBlockCache`` memoises reads keyed by block number: a value read at block N
is reused only while N is the latest block, which is what keeps suspension and
revocation "never stale past one block".
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


#: The block a request reads at, fixed by its first ``latest()`` (see RequestIdMiddleware).
request_block: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "datasafe_request_block", default=None
)


class BlockClock:
    def __init__(self, fetch: Callable[[], Awaitable[int]]) -> None:
        self._fetch = fetch
        self._pending: asyncio.Future[int] | None = None
        self._running = False
        self._task: asyncio.Task[None] | None = None
        self.last_seen: int | None = None

    async def latest(self) -> int:
        """Head block, fetched once per request (a request reads one consistent block)."""
        pinned = request_block.get()
        if pinned is not None:
            return pinned
        number = await self.fresh()
        request_block.set(number)
        return number

    def unpin(self) -> None:
        request_block.set(None)

    async def fresh(self) -> int:
        """A block number fetched by a call that started after this call began."""
        loop = asyncio.get_running_loop()
        if self._pending is None:
            self._pending = loop.create_future()
            self._pending.add_done_callback(_consume_exception)
            if not self._running:
                self._running = True
                self._task = loop.create_task(self._pump())
        return await asyncio.shield(self._pending)

    async def _pump(self) -> None:
        try:
            while self._pending is not None:
                fut = self._pending
                self._pending = None
                try:
                    number = await self._fetch()
                except asyncio.CancelledError:
                    if not fut.done():
                        fut.set_exception(ConnectionError("block number fetch cancelled"))
                    raise
                except Exception as exc:
                    if not fut.done():
                        fut.set_exception(exc)
                else:
                    if self.last_seen is None or number > self.last_seen:
                        self.last_seen = number
                    if not fut.done():
                        fut.set_result(number)
        finally:
            self._running = False


def _consume_exception(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


class PerBlockCache(Generic[T]):
    """Single-flight memo of ``read(key)`` for the current block only."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._block = -1
        self._entries: dict[Hashable, asyncio.Future[T]] = {}
        self._max = max_entries

    async def get(self, block: int, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        if block > self._block:
            self._block = block
            self._entries = {}
        elif block < self._block:
            # A caller holding an older block number: read without caching.
            return await read()
        fut = self._entries.get(key)
        if fut is None:
            if len(self._entries) >= self._max:
                self._entries = {}
            fut = asyncio.get_running_loop().create_future()
            fut.add_done_callback(_consume_exception)
            self._entries[key] = fut
            try:
                value = await read()
            except BaseException as exc:
                self._entries.pop(key, None)
                if not fut.done():
                    if isinstance(exc, asyncio.CancelledError):
                        fut.cancel()
                    else:
                        fut.set_exception(exc)
                raise
            fut.set_result(value)
            return value
        return await asyncio.shield(fut)

    def invalidate(self) -> None:
        self._entries = {}


class SingleFlight(Generic[T]):
    """``fetch()`` shared by concurrent callers, each answer from a fetch begun after the call.

    The same guarantee as :meth:`BlockClock.fresh` for any read that must not be cached
    across time (e.g. the pending block's timestamp on an idle chain).
    """

    def __init__(self, fetch: Callable[[], Awaitable[T]]) -> None:
        self._fetch = fetch
        self._pending: asyncio.Future[T] | None = None
        self._running = False
        self._task: asyncio.Task[None] | None = None

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        if self._pending is None:
            self._pending = loop.create_future()
            self._pending.add_done_callback(_consume_exception)
            if not self._running:
                self._running = True
                self._task = loop.create_task(self._pump())
        return await asyncio.shield(self._pending)

    async def _pump(self) -> None:
        try:
            while self._pending is not None:
                fut = self._pending
                self._pending = None
                try:
                    value = await self._fetch()
                except asyncio.CancelledError:
                    if not fut.done():
                        fut.set_exception(ConnectionError("fetch cancelled"))
                    raise
                except Exception as exc:
                    if not fut.done():
                        fut.set_exception(exc)
                else:
                    if not fut.done():
                        fut.set_result(value)
        finally:
            self._running = False
