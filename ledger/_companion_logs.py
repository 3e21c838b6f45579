"""A companion's logs over a block range, decoded like the indexer decodes them.

The audits (:mod:`ledger.sealed_audit`, :mod:`ledger.claims_audit`) re-derive index rows from
these with the reader's own node, never from an index. Logs another address answers with
are dropped (a node that answers with other contracts' logs is ignored).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.indexer._abi import event_specs
from ledger.rpc import RpcClient

Key = tuple[int, int]


@dataclass(frozen=True)
class CompanionLog:
    key: Key  # (block_number, log_index)
    name: str
    args: dict[str, Any]  # addresses lowercase hex, bytes 0x-hex, integers int
    tx_hash: str


def companion_logs(
    rpc: RpcClient,
    address: str,
    abi: Sequence[Mapping[str, Any]],
    names: Collection[str],
    first: int,
    last: int,
) -> Iterator[CompanionLog]:
    """The ``names`` events ``address`` emitted in ``[first, last]``, in chain order."""
    specs = {t: s for t, s in event_specs(abi).items() if s.name in names}
    flt = {
        "address": address,
        "fromBlock": hex(first),
        "toBlock": hex(last),
        "topics": [list(specs)],
    }
    logs = [
        lg
        for lg in rpc.call("eth_getLogs", [flt]) or []
        if str(lg["address"]).lower() == address.lower()
    ]
    for lg in sorted(logs, key=lambda lg: (int(lg["blockNumber"], 16), int(lg["logIndex"], 16))):
        spec = specs[str(lg["topics"][0]).lower()]
        yield CompanionLog(
            (int(lg["blockNumber"], 16), int(lg["logIndex"], 16)),
            spec.name,
            spec.decode(lg["topics"], lg["data"]),
            str(lg["transactionHash"]).lower(),
        )


@dataclass(frozen=True)
class LogAuditReport:
    """A companion's index rows against its logs over ``[from_block, to_block]``, keyed by
    ``(block_number, log_index)``: ``missing`` from the index, ``extra`` in it, ``altered``
    (the differing column names)."""

    from_block: int
    to_block: int
    chain_rows: int
    index_rows: int
    missing: list[Key] = field(default_factory=list)
    extra: list[Key] = field(default_factory=list)
    altered: dict[Key, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.altered)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "from_block": self.from_block,
            "to_block": self.to_block,
            "chain_rows": self.chain_rows,
            "index_rows": self.index_rows,
            "missing": [list(k) for k in self.missing],
            "extra": [list(k) for k in self.extra],
            "altered": [{"at": list(k), "fields": v} for k, v in self.altered.items()],
        }
