"""Use numbers of access records, derived from the chain's ``Accessed`` events.

``Accessed`` carries no use number, and the ledger keeps a use counter only for grants
with a use limit (issue 16: neither carries a rule for an unlimited grant, and both cost
gas on every access). A grant's n-th ``Accessed`` event in chain order (block, log index)
is its use n. The service (batcher) and the client (``ledger.trust``) number a record the
same way: one ``eth_getLogs`` for the grant's ``Accessed`` events from the deployment block
up to the record's block, then :func:`use_numbers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


def use_numbers(
    logs: Sequence[dict[str, Any]], before: Mapping[str, int] | None = None
) -> dict[tuple[int, int], int]:
    """``(block, log index) → use`` for ``Accessed`` logs that hold every access of their
    grants after the ``before[grant]`` ones already counted (grant as 0x-hex; none: the logs
    hold every access, as :func:`accessed_filter` from the deployment block returns)."""
    ordered = sorted(
        (int(lg["blockNumber"], 16), int(lg["logIndex"], 16), str(lg["topics"][1]).lower())
        for lg in logs
        if not lg.get("removed")
    )
    counts: dict[str, int] = dict(before or {})
    out: dict[tuple[int, int], int] = {}
    for block, index, grant in ordered:
        counts[grant] = counts.get(grant, 0) + 1
        out[(block, index)] = counts[grant]
    return out


def use_of(
    rpc: RpcClient,
    ledger: str,
    grant_id: bytes,
    deploy_block: int,
    block: int,
    log_index: int,
    counted: int | None = None,
) -> int:
    """The use number of the grant's ``Accessed`` log at ``(block, log_index)``; 0 if the
    chain holds no such log.

    ``counted``: the grant's use counter at the end of ``block`` (a grant with a use limit
    counts on chain), so only that block's logs are read, not the grant's whole history.
    """
    first = deploy_block if counted is None else block
    logs = rpc.call("eth_getLogs", [accessed_filter(ledger, [grant_id], first, block)])
    if counted is None:
        return use_numbers(logs).get((block, log_index), 0)
    indexes = sorted(int(lg["logIndex"], 16) for lg in logs if not lg.get("removed"))
    if log_index not in indexes:
        return 0
    return counted - sum(1 for i in indexes if i > log_index)


class UseCounter:
    """Per-grant counts of ``Accessed`` events up to a block, so that numbering a new record
    reads only the blocks since the last one (the service's batcher; one instance per relayer).

    :meth:`span` says which blocks to read for some grants' records in ``block``;
    :meth:`number` numbers the logs read and remembers the counts. A record mined before a
    block already counted (batches finish out of order) reads the grants' whole history.
    """

    def __init__(self, deploy_block: int) -> None:
        self._deploy_block = deploy_block
        self._counted: dict[str, tuple[int, int]] = {}

    def span(
        self, grant_ids: Iterable[bytes], block: int
    ) -> tuple[int, dict[str, tuple[int, int]]]:
        """``(first block to read, counts it extends)`` for ``grant_ids``' records in ``block``."""
        grants = {"0x" + bytes(g).hex() for g in grant_ids}
        known = {g: self._counted[g] for g in grants if g in self._counted}
        if any(at >= block for at, _ in known.values()):
            known = {}
        start = min(known[g][0] + 1 if g in known else self._deploy_block for g in grants)
        return start, known

    def number(
        self,
        logs: Sequence[dict[str, Any]],
        grant_ids: Iterable[bytes],
        block: int,
        known: Mapping[str, tuple[int, int]],
    ) -> dict[tuple[int, int], int]:
        """Use numbers of ``logs`` (read over :meth:`span`'s blocks up to ``block``)."""
        fresh = [
            lg
            for lg in logs
            if int(lg["blockNumber"], 16) > known.get(str(lg["topics"][1]).lower(), (-1, 0))[0]
        ]
        numbers = use_numbers(fresh, {g: n for g, (_, n) in known.items()})
        counts = {"0x" + bytes(g).hex(): 0 for g in grant_ids} | {
            g: n for g, (_, n) in known.items()
        }
        for lg in fresh:
            grant = str(lg["topics"][1]).lower()
            counts[grant] = counts.get(grant, 0) + 1
        for grant, n in counts.items():
            if self._counted.get(grant, (-1, 0))[0] < block:
                self._counted[grant] = (block, n)
        return numbers
