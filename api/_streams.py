"""Bounded event streams: a slot per open stream, per member and in the whole process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api import errors


class StreamSlots:
    """Counts open streams; :meth:`take` refuses past either cap (``too_many_streams``).

    The event loop is single-threaded, so plain counters need no lock.
    """

    def __init__(self, per_member: int, total: int) -> None:
        self.per_member = per_member
        self.total = total
        self._open: dict[str, int] = {}

    @property
    def open(self) -> int:
        return sum(self._open.values())

    def take(self, member: str) -> None:
        key = member.lower()
        if self.open >= self.total:
            raise errors.TooManyStreamsError(
                f"{self.total} event streams are open on this replica; retry later"
            )
        if self._open.get(key, 0) >= self.per_member:
            raise errors.TooManyStreamsError(
                f"{member} already has {self.per_member} event streams open; close one first"
            )
        self._open[key] = self._open.get(key, 0) + 1

    def give_back(self, member: str) -> None:
        key = member.lower()
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)


class SlotStreamingResponse(StreamingResponse):
    """A stream that gives its slot back however it ends (done, disconnect, cancel, error)."""

    def __init__(
        self, content: AsyncIterator[bytes], *, slots: StreamSlots, member: str, **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self._slots = slots
        self._member = member

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.give_back(self._member)
