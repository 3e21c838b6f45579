"""Give a restarted embedded chain back the journaled transactions it lost, before anything else.

Anvil restores its ``--state`` file, written every few seconds and on a clean stop; a power
cut loses what it mined since. :func:`replay` sends every journaled transaction the chain
does not hold (looked up by hash) again, in journal order, same bytes — so the same hashes,
grant ids and, with the original block timestamps, the same results. What cannot be restored
is listed precisely (:class:`ChainLossError`: transaction, sender, nonce, and the records of
the database that depend on it); ``up --accept-loss`` quarantines only those records
(:func:`quarantine`) and keeps everything else.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import rlp
import sqlalchemy as sa
from eth_account import Account

from node.errors import NodeError
from node.txlog import LoggedTx, TxLog

#: (table, column) pairs of the service's database that cite a transaction hash.
DEPENDENTS: tuple[tuple[str, str], ...] = (
    ("api_schemas", "tx_hash"),
    ("api_assets", "anchor_tx"),
    ("api_grants", "tx_hash"),
)
QUARANTINE_DIR = "quarantine"


@dataclass(frozen=True)
class LostTx:
    tx_hash: str
    sender: str
    nonce: int
    reason: str
    records: tuple[str, ...] = ()

    def describe(self) -> str:
        held = f"; records: {', '.join(self.records)}" if self.records else ""
        return f"{self.tx_hash} (sender {self.sender}, nonce {self.nonce}): {self.reason}{held}"


@dataclass
class ReplayReport:
    journaled: int = 0
    on_chain: int = 0
    replayed: list[str] = field(default_factory=list)
    #: journaled, never acknowledged by anvil, and refused now (no client was told of them)
    unacknowledged: list[LostTx] = field(default_factory=list)
    lost: list[LostTx] = field(default_factory=list)


class ChainLossError(NodeError):
    """Transactions anvil once accepted cannot be mined again with their original result."""

    def __init__(self, lost: list[LostTx]) -> None:
        self.lost = lost
        super().__init__(
            f"{len(lost)} journaled transaction(s) the chain once accepted cannot be restored:\n  "
            + "\n  ".join(t.describe() for t in lost)
            + "\nEverything else was restored. `datasafe-node up --accept-loss` starts anyway and "
            "quarantines only the records that depend on these transactions (kept in "
            f"<data dir>/{QUARANTINE_DIR}/); or restore the data dir from a backup"
        )


def sender_and_nonce(raw: bytes) -> tuple[str, int]:
    try:
        sender = str(Account.recover_transaction(raw))
        fields = rlp.decode(raw if raw[0] >= 0xC0 else raw[1:])
        nonce = int.from_bytes(fields[0 if raw[0] >= 0xC0 else 1], "big")
    except Exception:
        return "unknown", -1
    return sender, nonce


class _Rpc:
    def __init__(self, url: str, timeout: float) -> None:
        self._http = httpx.Client(base_url=url, timeout=timeout)

    def call(self, method: str, params: list[Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        try:
            reply: dict[str, Any] = self._http.post("/", json=body).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise NodeError(f"the embedded chain did not answer {method}: {exc}") from exc
        return reply

    def receipts(self, hashes: list[str]) -> list[Any]:
        out: list[Any] = []
        for i in range(0, len(hashes), 500):
            chunk = hashes[i : i + 500]
            batch = [
                {"jsonrpc": "2.0", "id": j, "method": "eth_getTransactionReceipt", "params": [h]}
                for j, h in enumerate(chunk)
            ]
            try:
                replies = self._http.post("/", json=batch).json()
            except (httpx.HTTPError, ValueError) as exc:
                raise NodeError(f"the embedded chain did not answer receipts: {exc}") from exc
            by_id = {r.get("id"): r.get("result") for r in replies}
            out += [by_id.get(j) for j in range(len(chunk))]
        return out

    def close(self) -> None:
        self._http.close()


def _wait_receipt(rpc: _Rpc, tx_hash: str, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while True:
        receipt = rpc.call("eth_getTransactionReceipt", [tx_hash]).get("result")
        if receipt and receipt.get("blockNumber") is not None:
            return dict(receipt)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def _replay_one(rpc: _Rpc, tx: LoggedTx, timeout: float) -> str | None:
    """None when mined again with its original result, else why not."""
    latest = rpc.call("eth_getBlockByNumber", ["latest", False]).get("result") or {}
    # The block time it had: the same block again (same hash), and a signature's deadline
    # that held then holds again.
    at = tx.block_time if tx.block_time is not None else tx.at_ms // 1000
    if at >= int(latest.get("timestamp", "0x0"), 16):
        rpc.call("evm_setTime", [at])  # anvil refuses a next timestamp behind its clock
        rpc.call("evm_setNextBlockTimestamp", [at])
    reply = rpc.call("eth_sendRawTransaction", ["0x" + tx.raw.hex()])
    if "error" in reply and "already" not in str(reply["error"].get("message", "")).lower():
        return f"refused by the chain now ({reply['error'].get('message')})"
    receipt = _wait_receipt(rpc, tx.tx_hash, timeout)
    if receipt is None:
        return f"not mined again within {timeout:g}s"
    if int(receipt.get("status", "0x1"), 16) != 1 and tx.ok is not False:
        return "mined again but reverted now (it succeeded, or may have, the first time)"
    return None


def replay(journal: TxLog, chain_url: str, *, timeout: float = 15.0) -> ReplayReport:
    """Re-send, in journal order, every journaled transaction the chain does not hold."""
    seen: set[str] = set()
    todo = []
    for tx in journal.entries:
        if tx.tx_hash not in seen:
            seen.add(tx.tx_hash)
            todo.append(tx)
    report = ReplayReport(journaled=len(todo))
    rpc = _Rpc(chain_url, timeout)
    try:
        receipts = rpc.receipts([t.tx_hash for t in todo])
        for tx, receipt in zip(todo, receipts, strict=True):
            if receipt is not None:
                report.on_chain += 1
                continue
            if tx.refused or tx.loss_accepted:
                continue  # never reached the chain, or its loss was accepted already
            why = _replay_one(rpc, tx, timeout)
            if why is None:
                report.replayed.append(tx.tx_hash)
                continue
            sender, nonce = sender_and_nonce(tx.raw)
            lost = LostTx(tx.tx_hash, sender, nonce, why)
            (report.lost if tx.accepted else report.unacknowledged).append(lost)
        if report.replayed:
            rpc.call("evm_setTime", [int(time.time())])  # back on the wall clock
    finally:
        rpc.close()
    return report


def _rows(conn: sa.Connection, table: str, column: str, tx_hash: str) -> list[dict[str, Any]]:
    stmt = sa.text(f"SELECT * FROM {table} WHERE lower({column}) = :h")  # noqa: S608 - constants
    return [dict(r) for r in conn.execute(stmt, {"h": tx_hash.lower()}).mappings()]


def dependents(database_url: str, lost: list[LostTx]) -> list[LostTx]:
    """``lost`` with the database records that cite each transaction."""
    engine = sa.create_engine(database_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        out = []
        with engine.connect() as conn:
            for t in lost:
                records = []
                for table, column in DEPENDENTS:
                    if table in tables:
                        for row in _rows(conn, table, column, t.tx_hash):
                            key = next(iter(row.values()))
                            records.append(f"{table} {key}")
                out.append(LostTx(t.tx_hash, t.sender, t.nonce, t.reason, tuple(records)))
        return out
    finally:
        engine.dispose()


def quarantine(journal: TxLog, database_url: str, root: Path, lost: list[LostTx]) -> Path:
    """Move the records citing ``lost`` out of the database into a JSON file; mark the
    transactions' loss as accepted in the journal. Returns the file."""
    engine = sa.create_engine(database_url)
    kept: dict[str, Any] = {"at": int(time.time()), "lost": [t.__dict__ for t in lost]}
    hashes = [t.tx_hash.lower() for t in lost]
    try:
        tables = set(sa.inspect(engine).get_table_names())
        with engine.begin() as conn:
            for table, column in DEPENDENTS:
                if table not in tables:
                    continue
                for h in hashes:
                    rows = _rows(conn, table, column, h)
                    kept.setdefault(table, []).extend(rows)
                    if table == "api_grants" and "api_key_packages" in tables:
                        for row in rows:  # a grant the chain lacks has no key package
                            conn.execute(
                                sa.text("DELETE FROM api_key_packages WHERE grant_id = :g"),
                                {"g": row["grant_id"]},
                            )
                    conn.execute(
                        sa.text(f"DELETE FROM {table} WHERE lower({column}) = :h"),  # noqa: S608
                        {"h": h},
                    )
            if "api_tx_journal" in tables:
                for h in hashes:
                    conn.execute(sa.text("DELETE FROM api_tx_journal WHERE tx_hash = :h"), {"h": h})
    finally:
        engine.dispose()
    folder = root / QUARANTINE_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"quarantine-{int(time.time() * 1000)}.json"
    path.write_text(json.dumps(kept, indent=2, default=str) + "\n")
    for h in hashes:
        journal.mark("L", h, sync=True)
    return path
