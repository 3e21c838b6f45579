"""Use numbers of access records, derived from the chain's ``Accessed`` events.

``Accessed`` carries no use number, and the ledger keeps a use counter only for grants
with a use limit (issue 16: neither carries a rule for an unlimited grant, and both cost
gas on every access). A grant's n-th ``Accessed`` event in chain order (block, log index)
is its use n. The service (batcher) and the client (``ledger.trust``) number a record the
same way: one ``eth_getLogs`` for the grant's ``Accessed`` events from the deployment block
up to the record's block, then :func:`use_numbers`; each remembers its counts so that the
next record reads only the blocks since (:class:`UseCounter` in the service,
:class:`UseMemo` in a client, which also checks the chain still holds the counted block).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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


class UseMemo:
    """A client's count of each grant's ``Accessed`` events through a block it read, with that
    block's hash: numbering a later record of an unlimited grant then reads only the blocks
    since, instead of the grant's whole history (:func:`use_of`).

    A count is used only while the chain the client reads still has the same block at that
    height (one ``eth_getBlockByNumber``): after a reorganisation, or on another chain that
    happens to hold a ledger at the same address, the whole history is read again. Bounded:
    the least recently used grants are forgotten beyond ``max_grants``.
    """

    def __init__(self, max_grants: int = 4096) -> None:
        self._max = max_grants
        self._lock = threading.Lock()
        self._counts: OrderedDict[tuple[str, str], tuple[int, str, int]] = OrderedDict()

    def get(self, ledger: str, grant: str) -> tuple[int, str, int] | None:
        """``(block, block hash, count through that block)`` of ``grant`` (0x-hex), if known."""
        key = (ledger.lower(), grant)
        with self._lock:
            entry = self._counts.get(key)
            if entry is not None:
                self._counts.move_to_end(key)
            return entry

    def put(self, ledger: str, grant: str, block: int, block_hash: str, count: int) -> None:
        key = (ledger.lower(), grant)
        with self._lock:
            if key in self._counts and self._counts[key][0] > block:
                return  # a later count is worth more: records are mostly checked in order
            self._counts[key] = (block, block_hash.lower(), count)
            self._counts.move_to_end(key)
            while len(self._counts) > self._max:
                self._counts.popitem(last=False)


def use_of(
    rpc: RpcClient,
    ledger: str,
    grant_id: bytes,
    deploy_block: int,
    block: int,
    log_index: int,
    counted: int | None = None,
    *,
    block_hash: str | None = None,
    memo: UseMemo | None = None,
) -> int:
    """The use number of the grant's ``Accessed`` log at ``(block, log_index)``; 0 if the
    chain holds no such log.

    ``counted``: the grant's use counter at the end of ``block`` (a grant with a use limit
    counts on chain), so only that block's logs are read, not the grant's whole history.
    Without it (an unlimited grant), ``memo`` and the record's ``block_hash`` let a count
    this client made earlier stand in for the history before it (:class:`UseMemo`).
    """
    if counted is not None:
        logs = rpc.call("eth_getLogs", [accessed_filter(ledger, [grant_id], block, block)])
        indexes = sorted(int(lg["logIndex"], 16) for lg in logs if not lg.get("removed"))
        if log_index not in indexes:
            return 0
        return counted - sum(1 for i in indexes if i > log_index)
    grant = "0x" + bytes(grant_id).hex()
    first, before, same_block = deploy_block, 0, None
    known = memo.get(ledger, grant) if memo is not None and block_hash else None
    if known is not None:
        at, at_hash, count = known
        if at < block and _hash_at(rpc, at) == at_hash:
            first, before = at + 1, count
        elif at == block and at_hash == str(block_hash).lower():
            first, same_block = block, count
    logs = [
        lg
        for lg in rpc.call("eth_getLogs", [accessed_filter(ledger, [grant_id], first, block)])
        if not lg.get("removed")
    ]
    if same_block is not None:
        before = same_block - len(logs)  # every log read is in ``block``
    use = use_numbers(logs, {grant: before}).get((block, log_index), 0)
    hashes = {
        str(lg.get("blockHash", "")).lower() for lg in logs if int(lg["blockNumber"], 16) == block
    }
    if use and memo is not None and block_hash and hashes == {str(block_hash).lower()}:
        memo.put(ledger, grant, block, str(block_hash), before + len(logs))
    return use


def _hash_at(rpc: RpcClient, block: int) -> str | None:
    header = rpc.call("eth_getBlockByNumber", [hex(block), False])
    return None if header is None else str(header["hash"]).lower()


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
