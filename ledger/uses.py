"""Use numbers of access records, derived from the chain's ``Accessed`` events.

``Accessed`` carries no use number, and the ledger keeps a use counter only for grants
with a use limit (issue 16: neither carries a rule for an unlimited grant, and both cost
gas on every access). A grant's n-th ``Accessed`` event in chain order (block, log index)
is its use n. The service (batcher) and the client (``ledger.trust``) number a record the
same way: one ``eth_getLogs`` for the grant's ``Accessed`` events from the deployment block
up to the record's block, then :func:`use_numbers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from ledger.abi import ledger_abi
from ledger.rpc import RpcClient


@cache
def accessed_topic() -> str:
    return "0x" + ledger_abi().events_by_name["Accessed"].topic0.hex()


def accessed_filter(
    ledger: str, grant_ids: Iterable[bytes], from_block: int, to_block: int
) -> dict[str, Any]:
    """``eth_getLogs`` params for the ``Accessed`` events of ``grant_ids`` in a block range."""
    ids = sorted({"0x" + bytes(g).hex() for g in grant_ids})
    return {
        "address": ledger,
        "fromBlock": hex(from_block),
        "toBlock": hex(to_block),
        "topics": [accessed_topic(), ids],
    }


def use_numbers(logs: Sequence[dict[str, Any]]) -> dict[tuple[int, int], int]:
    """``(block, log index) → use`` for ``Accessed`` logs that hold every earlier access of
    their grants (what :func:`accessed_filter` from the deployment block returns)."""
    ordered = sorted(
        (int(lg["blockNumber"], 16), int(lg["logIndex"], 16), str(lg["topics"][1]).lower())
        for lg in logs
        if not lg.get("removed")
    )
    counts: dict[str, int] = {}
    out: dict[tuple[int, int], int] = {}
    for block, index, grant in ordered:
        counts[grant] = counts.get(grant, 0) + 1
        out[(block, index)] = counts[grant]
    return out


def use_of(
    rpc: RpcClient, ledger: str, grant_id: bytes, deploy_block: int, block: int, log_index: int
) -> int:
    """The use number of the grant's ``Accessed`` log at ``(block, log_index)``; 0 if the
    chain holds no such log."""
    logs = rpc.call("eth_getLogs", [accessed_filter(ledger, [grant_id], deploy_block, block)])
    return use_numbers(logs).get((block, log_index), 0)
