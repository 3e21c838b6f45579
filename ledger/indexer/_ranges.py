"""Adaptive block-range sizing for ``eth_getLogs``.

Public nodes and consortium nodes alike cap ``eth_getLogs`` (by block span, by
result count, by response size or by time) and each words the refusal
differently. Instead of parsing the words, the indexer treats any refusal of a
multi-block range as "too big": it halves the span and retries, and after a run
of successes it doubles the span again, up to the configured maximum. A single
block that is still refused is a hard error, because it cannot be split.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RangeSizer:
    """Current span of the next ``eth_getLogs`` call, in blocks (inclusive range)."""

    max_span: int
    min_span: int = 1
    grow_after: int = 2
    span: int = field(init=False)
    _successes: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.min_span < 1 or self.max_span < self.min_span:
            raise ValueError(f"invalid span bounds: min={self.min_span} max={self.max_span}")
        if self.grow_after < 1:
            raise ValueError("grow_after must be >= 1")
        self.span = self.max_span

    def next_range(self, start: int, end: int) -> tuple[int, int]:
        """The inclusive range to fetch next, starting at ``start`` and not past ``end``."""
        return start, min(end, start + self.span - 1)

    def refused(self, start: int, stop: int) -> bool:
        """Record that the node refused ``[start, stop]``; False when it cannot shrink further."""
        self._successes = 0
        width = stop - start + 1
        if width <= self.min_span:
            return False
        self.span = max(self.min_span, width // 2)
        return True

    def succeeded(self) -> None:
        """Record a successful fetch; grows the span back after ``grow_after`` successes."""
        self._successes += 1
        if self._successes >= self.grow_after and self.span < self.max_span:
            self.span = min(self.max_span, self.span * 2)
            self._successes = 0
