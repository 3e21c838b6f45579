"""The member directory: names the governor gave members, re-derived from chain logs.

Names live only in ``MemberNamed`` events of the ledger's forwarder (kept outside the
ledger's EIP-170 budget; the forwarder checks that the caller is the ledger's
governor and the account a member). Anyone re-derives the directory from those logs
with their own RPC node; the latest name of an account stands. Kind and status come
from the ledger's member record at the same reading.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ledger.address import to_checksum_address
from ledger.calls import LedgerCalls
from ledger.errors import LedgerError
from ledger.forwarder import forwarder_abi, forwarder_address
from ledger.models import Member
from ledger.rpc import RpcClient

#: Longest name the forwarder accepts (bytes of UTF-8).
MAX_NAME_BYTES = 96


@dataclass(frozen=True)
class DirectoryEntry:
    address: str
    name: str
    kind: str
    status: str
    block: int
    tx_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "block": self.block,
            "tx_hash": self.tx_hash,
        }


def encode_name_member(account: str, name: str) -> bytes:
    """Calldata of ``DataSafeForwarder.nameMember`` (sent by the governor to the forwarder)."""
    raw = name.encode()
    if not name.strip() or len(raw) > MAX_NAME_BYTES:
        raise LedgerError(f"a directory name is 1 to {MAX_NAME_BYTES} bytes of UTF-8: {name!r}")
    return forwarder_abi().fn("nameMember").encode(to_checksum_address(account), name)


def named_logs(
    rpc: RpcClient, ledger: str, from_block: int = 0, to_block: int | str = "latest"
) -> dict[str, tuple[str, int, str]]:
    """account -> (latest name, block, tx hash), from the forwarder's own logs."""
    abi = forwarder_abi()
    spec = abi.events_by_name["MemberNamed"]
    forwarder = forwarder_address(ledger)
    flt: dict[str, Any] = {
        "address": forwarder,
        "fromBlock": hex(from_block),
        "toBlock": to_block if isinstance(to_block, str) else hex(to_block),
        "topics": ["0x" + spec.topic0.hex()],
    }
    out: dict[str, tuple[str, int, str]] = {}
    logs = rpc.call("eth_getLogs", [flt]) or []
    events = [e for e in (abi.decode_log(log) for log in logs) if e is not None]
    for e in sorted(events, key=lambda e: (e.block_number, e.log_index)):
        if e.address.lower() != forwarder.lower():
            continue  # a node that answers with other contracts' logs is ignored, not believed
        out[to_checksum_address(e.args["account"])] = (
            str(e.args["name"]),
            e.block_number,
            e.tx_hash,
        )
    return out


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def matches(name: str, query: str) -> bool:
    """Every word of ``query`` appears in ``name`` (case- and width-insensitive)."""
    folded = _fold(name)
    return all(word in folded for word in _fold(query).split())


def read_directory(
    rpc: RpcClient, ledger: str, *, from_block: int = 0, query: str | None = None
) -> list[DirectoryEntry]:
    """The named members, with kind and status read from the ledger, sorted by name."""
    names = named_logs(rpc, ledger, from_block)
    wanted = [(a, v) for a, v in names.items() if query is None or matches(v[0], query)]
    calls = LedgerCalls()
    entries: list[DirectoryEntry] = []
    for address, (name, block, tx_hash) in wanted:
        read = calls.get_member(address)
        raw = rpc.call(
            "eth_call",
            [{"to": to_checksum_address(ledger), "data": "0x" + read.data.hex()}, "latest"],
        )
        member: Member = read.decode(bytes.fromhex(str(raw).removeprefix("0x")))
        entries.append(
            DirectoryEntry(
                address,
                name,
                member.kind.name.lower(),
                member.status.name.lower(),
                block,
                tx_hash,
            )
        )
    return sorted(entries, key=lambda e: (_fold(e.name), e.address))


def search(entries: Iterable[DirectoryEntry], query: str) -> list[DirectoryEntry]:
    return [e for e in entries if matches(e.name, query)]
