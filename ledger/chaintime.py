"""Chain time: the timestamp the chain's next block would carry, from what a node says.

A grant's window and a request's deadline are judged by the contract at the block that
records them, which on an idle chain (no block without a transaction) is well after the
latest block. The transport-free rules live here so that every client judges the same
way; the service's reader (``api/chain.py``) applies them (docs/api.md, "Chain time").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Runtime code that returns ``block.timestamp`` (TIMESTAMP PUSH1 0 MSTORE PUSH1 32 PUSH1 0
#: RETURN), put at an unused address by a state override to learn whether the node honours
#: an ``eth_call`` block-time override (geth, anvil and reth do).
PROBE_CODE = "0x4260005260206000f3"
PROBE_ADDRESS = "0x00000000000000000000000000000000000da7e5"
PROBE_TIME = 0x5EED5EED


def probe_params() -> list[Any]:
    """``eth_call`` parameters that answer :data:`PROBE_TIME` on a node with block overrides."""
    return [
        {"to": PROBE_ADDRESS, "data": "0x"},
        "latest",
        {PROBE_ADDRESS: {"code": PROBE_CODE}},
        {"time": hex(PROBE_TIME)},
    ]


def probe_answered(result: Any) -> bool:
    """Whether the probe's result shows the override was applied."""
    try:
        return int(str(result), 16) == PROBE_TIME
    except ValueError:
        return False


def call_at_params(to: str, data: bytes, block: int, at: int) -> list[Any]:
    """``eth_call`` on the state of ``block`` with ``block.timestamp = at``."""
    return [{"to": to, "data": "0x" + data.hex()}, hex(block), None, {"time": hex(at)}]


def next_block_time(
    block: int,
    latest_timestamp: int,
    latest_hash: str,
    pending: Mapping[str, Any] | None,
    wall: float,
) -> tuple[int, str]:
    """(timestamp of the next block, "pending" or "wall").

    A real pending block (it follows ``block``) carries the node's own clock:
    ``max(latest, pending)`` (anvil may repeat the parent's timestamp after ``evm_revert``).
    A node whose "pending" is its latest block (Besu) says nothing: then
    ``max(latest + 1, wall)``, the proposer's clock being NTP time like ours.
    """
    if pending is not None and pending.get("timestamp"):
        number = pending.get("number")
        if (number is not None and int(str(number), 16) > block) or (
            number is None and pending.get("parentHash") == latest_hash
        ):
            return max(latest_timestamp, int(str(pending["timestamp"]), 16)), "pending"
    return max(latest_timestamp + 1, int(wall)), "wall"
