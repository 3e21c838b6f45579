"""The indexer: chain events into SQL, resumable, idempotent and re-org safe.

Every processed block range is one database transaction that writes the rows and
advances the cursor, so a crash at any point leaves the tables exactly at the
previous cursor. Before each sync the cursor's block hash is compared with the
chain; on a mismatch the indexer walks the kept block hashes back to the newest
common ancestor, deletes everything above it, rebuilds the current-state rows from
the surviving events, and re-indexes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ledger import db
from ledger.companions import log_addresses
from ledger.indexer._abi import EventSpec, companion_abis, event_specs, load_abi
from ledger.indexer._projection import (
    EVENT_TABLES,
    HANDLED_EVENTS,
    DecodedEvent,
    LogRef,
    Projector,
    dialect_insert,
)
from ledger.indexer._ranges import RangeSizer
from ledger.indexer._rpc import JsonRpc
from ledger.indexer.errors import (
    ChainBehindDatabaseError,
    ChainMismatchError,
    ChainMovedError,
    ConcurrentIndexerError,
    EventDecodeError,
    IndexerDatabaseError,
    IndexerError,
    IndexerRpcError,
    LogRangeRefusedError,
    ReorgTooDeepError,
    RpcResponseError,
    UnknownEventError,
)
from ledger.indexer.settings import IndexerSettings, get_settings
from ledger.schema import MigrationError

log = logging.getLogger("ledger.indexer")

_CURSOR = db.indexer_cursor
_BLOCKS = db.indexed_blocks
_ASSETS = db.assets
_GRANTS = db.grants
_MEMBERS = db.members
_AGENTS = db.member_agents
_MEMBER_EVENTS = db.member_events
_ASSET_EVENTS = db.asset_events
_GRANT_EVENTS = db.grant_events
_ACCESSES = db.accesses

# Errors after which the run loop waits and tries again; every other IndexerError stops it.
TRANSIENT_ERRORS: tuple[type[IndexerError], ...] = (
    IndexerRpcError,
    RpcResponseError,
    ChainMovedError,
    ChainBehindDatabaseError,
    IndexerDatabaseError,
)


#: Called inside each block range's transaction with the range's decoded events, after the
#: projection: a service keeps its own tables in step with the chain (e.g. deletes the key
#: package of a grant revoked on chain) atomically with the index. It must not commit.
EventHook = Callable[[Connection, Sequence[DecodedEvent]], None]


@dataclass(frozen=True)
class Cursor:
    last_block: int
    last_block_hash: str | None


@dataclass(frozen=True)
class SyncResult:
    """What one ``sync_once`` did."""

    start_block: int
    last_block: int
    target_block: int
    events: int
    ranges: int
    rolled_back_to: int | None


class Indexer:
    """Indexes one ledger deployment into the tables of :mod:`ledger.db`."""

    def __init__(
        self,
        *,
        rpc_url: str,
        ledger_address: str,
        engine: Engine,
        start_block: int = 0,
        batch_size: int = 2000,
        min_batch_size: int = 1,
        confirmations: int = 0,
        reorg_window: int = 128,
        on_unknown_event: Literal["error", "skip"] = "error",
        abi: Sequence[dict[str, Any]] | None = None,
        abi_path: Path | None = None,
        rpc_timeout: float = 30.0,
        on_events: EventHook | None = None,
    ) -> None:
        self._rpc = JsonRpc(rpc_url, timeout=rpc_timeout)
        self._address = ledger_address.lower()
        # The ledger and its companions: one eth_getLogs covers every event of the deployment.
        self._log_addresses = [a.lower() for a in log_addresses(ledger_address)]
        self._engine = engine
        self._start_block = start_block
        self._confirmations = confirmations
        self._window = reorg_window
        self._on_unknown = on_unknown_event
        self._sizer = RangeSizer(max_span=batch_size, min_span=min(min_batch_size, batch_size))
        specs = event_specs([*(abi if abi is not None else load_abi(abi_path)), *companion_abis()])
        # Only events the projection knows are "known"; a new ABI event is surfaced, not dropped.
        self._specs: dict[str, EventSpec] = {
            t: s for t, s in specs.items() if s.name in HANDLED_EVENTS
        }
        self._chain_checked = False
        self._tables_ready = False
        self._tables_lock = threading.Lock()
        self.last_error: IndexerError | None = None
        self._owns_engine = False
        self._on_events = on_events

    @classmethod
    def from_settings(cls, settings: IndexerSettings | None = None) -> Indexer:
        s = settings or get_settings()
        if not s.ledger_address:
            raise IndexerError("DATASAFE_INDEXER_LEDGER_ADDRESS is not set")
        indexer = cls(
            rpc_url=s.rpc_url,
            ledger_address=s.ledger_address,
            engine=db.make_engine(s.database_url),
            start_block=s.start_block,
            batch_size=s.batch_size,
            min_batch_size=s.min_batch_size,
            confirmations=s.confirmations,
            reorg_window=s.reorg_window,
            on_unknown_event=s.on_unknown_event,
            rpc_timeout=s.rpc_timeout,
        )
        indexer._owns_engine = True
        return indexer

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def range_span(self) -> int:
        """Current eth_getLogs span (shrinks when the node refuses, grows back)."""
        return self._sizer.span

    def close(self) -> None:
        """Close the RPC connection (and the engine, if ``from_settings`` created it)."""
        self._rpc.close()
        if self._owns_engine:
            self._engine.dispose()

    # Public loop ---------------------------------------------------------------------

    def run(self, stop_event: threading.Event, poll_interval: float = 2.0) -> None:
        """Sync until ``stop_event`` is set; transient failures are logged and retried.

        Fatal failures (unknown event, re-org deeper than the kept hashes, another
        chain, inconsistent data) are raised: the index must not advance past them.
        """
        while not stop_event.is_set():
            try:
                self.sync_once(should_stop=stop_event.is_set)
                self.last_error = None
            except TRANSIENT_ERRORS as exc:
                self.last_error = exc
                log.warning("indexer: %s (retrying in %.1fs)", exc, poll_interval)
            except IndexerError as exc:
                self.last_error = exc
                log.error("indexer stopped: %s", exc)
                raise
            stop_event.wait(poll_interval)

    def sync_once(self, should_stop: Callable[[], bool] | None = None) -> SyncResult:
        """Index from the cursor up to ``head - confirmations``; returns what was done."""
        try:
            return self._sync(should_stop)
        except sa.exc.SQLAlchemyError as exc:
            raise IndexerDatabaseError(f"indexer database failure: {exc}") from exc

    def cursor(self) -> Cursor | None:
        """The last indexed block (None before the first sync)."""
        try:
            self._ensure_tables()
            with self._engine.connect() as conn:
                row = conn.execute(sa.select(_CURSOR).where(_CURSOR.c.id == 1)).mappings().first()
        except sa.exc.SQLAlchemyError as exc:
            raise IndexerDatabaseError(f"indexer database failure: {exc}") from exc
        return None if row is None else Cursor(row["last_block"], row["last_block_hash"])

    def _ensure_tables(self) -> None:
        with self._tables_lock:
            if not self._tables_ready:
                try:
                    db.create_tables(self._engine)
                except MigrationError as exc:
                    raise IndexerDatabaseError(f"indexer database failure: {exc}") from exc
                self._tables_ready = True

    # Sync ----------------------------------------------------------------------------

    def _sync(self, should_stop: Callable[[], bool] | None) -> SyncResult:
        self._ensure_tables()
        cursor = self._load_cursor()
        start = cursor.last_block
        head = self._rpc.block_number()
        rolled_back: int | None = None
        if cursor.last_block >= self._start_block:
            new_cursor = self._check_chain(cursor, head)
            if new_cursor is not None:
                rolled_back = new_cursor.last_block
                cursor = new_cursor
        target = head - self._confirmations
        events = ranges = 0
        while cursor.last_block < target:
            if should_stop is not None and should_stop():
                break
            first, last = self._sizer.next_range(cursor.last_block + 1, target)
            try:
                logs = self._rpc.get_logs(self._log_addresses, first, last)
            except RpcResponseError as exc:
                if self._sizer.refused(first, last):
                    log.info(
                        "node refused blocks %d..%d, shrinking to %d", first, last, self._sizer.span
                    )
                    continue
                raise LogRangeRefusedError(first, last, exc) from exc
            self._sizer.succeeded()
            cursor, count = self._process_range(cursor, first, last, logs, target)
            events += count
            ranges += 1
        return SyncResult(start, cursor.last_block, target, events, ranges, rolled_back)

    def _load_cursor(self) -> Cursor:
        if not self._chain_checked:
            chain_id = self._rpc.chain_id()
            genesis = self._rpc.headers([0])[0]
            if genesis is None:
                raise IndexerRpcError("node has no genesis block")
            genesis_hash = str(genesis["hash"])
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(_CURSOR).where(_CURSOR.c.id == 1)).mappings().first()
            if row is None:
                if self._chain_checked:  # the row vanished under us: someone reset the DB
                    raise ConcurrentIndexerError("indexer_cursor row disappeared")
                conn.execute(
                    sa.insert(_CURSOR).values(
                        id=1,
                        chain_id=chain_id,
                        genesis_hash=genesis_hash,
                        ledger_address=self._address,
                        start_block=self._start_block,
                        last_block=self._start_block - 1,
                        last_block_hash=None,
                        updated_at=datetime.now(UTC),
                    )
                )
                self._chain_checked = True
                return Cursor(self._start_block - 1, None)
            if not self._chain_checked:
                mismatches = [
                    f"{what}: database {have}, node/settings {want}"
                    for what, have, want in (
                        ("chain id", row["chain_id"], chain_id),
                        ("genesis hash", row["genesis_hash"], genesis_hash),
                        ("ledger address", row["ledger_address"], self._address),
                        ("start block", row["start_block"], self._start_block),
                    )
                    if have != want
                ]
                if mismatches:
                    raise ChainMismatchError(
                        "the database indexes another chain or ledger ("
                        + "; ".join(mismatches)
                        + ")"
                    )
                self._chain_checked = True
            return Cursor(row["last_block"], row["last_block_hash"])

    def _check_chain(self, cursor: Cursor, head: int) -> Cursor | None:
        """Detect a re-org or a lagging node; roll back when needed. Returns the new cursor."""
        if cursor.last_block > head:
            with self._engine.connect() as conn:
                kept = conn.execute(
                    sa.select(_BLOCKS.c.hash).where(_BLOCKS.c.number == head)
                ).scalar_one_or_none()
            chain_head = self._rpc.headers([head])[head]
            if kept is not None and chain_head is not None and chain_head["hash"] == kept:
                raise ChainBehindDatabaseError(cursor.last_block, head)
            return self._rollback_to_ancestor(cursor, head)
        header = self._rpc.headers([cursor.last_block])[cursor.last_block]
        if header is not None and header["hash"] == cursor.last_block_hash:
            return None
        return self._rollback_to_ancestor(cursor, head)

    def _rollback_to_ancestor(self, cursor: Cursor, head: int) -> Cursor:
        with self._engine.connect() as conn:
            kept = conn.execute(
                sa.select(_BLOCKS.c.number, _BLOCKS.c.hash)
                .where(_BLOCKS.c.number <= min(head, cursor.last_block))
                .order_by(_BLOCKS.c.number.desc())
            ).all()
            oldest = conn.execute(sa.select(sa.func.min(_BLOCKS.c.number))).scalar_one_or_none()
        chain = self._rpc.headers([n for n, _ in kept]) if kept else {}
        for number, block_hash in kept:
            header = chain.get(number)
            if header is not None and header["hash"] == block_hash:
                log.warning(
                    "re-org: last indexed block %d no longer on chain; rolling back to %d",
                    cursor.last_block,
                    number,
                )
                with self._engine.begin() as conn:
                    self._rollback(conn, cursor, number, block_hash)
                return Cursor(number, block_hash)
        raise ReorgTooDeepError(cursor.last_block, oldest)

    def _rollback(
        self, conn: Connection, cursor: Cursor, ancestor: int, ancestor_hash: str
    ) -> None:
        above = ancestor

        def distinct(column: sa.Column[Any], table: sa.Table) -> set[Any]:
            rows = conn.execute(sa.select(column).where(table.c.block_number > above).distinct())
            return {r[0] for r in rows if r[0] is not None}

        members = distinct(_MEMBER_EVENTS.c.account, _MEMBER_EVENTS)
        assets = distinct(_ASSET_EVENTS.c.asset_id, _ASSET_EVENTS) | distinct(
            _ASSET_EVENTS.c.related_asset_id, _ASSET_EVENTS
        )
        grants = distinct(_GRANT_EVENTS.c.grant_id, _GRANT_EVENTS) | distinct(
            _ACCESSES.c.grant_id, _ACCESSES
        )
        claims = distinct(db.claim_events.c.claim_id, db.claim_events)
        for table in (*EVENT_TABLES, _ASSETS, _GRANTS):
            conn.execute(sa.delete(table).where(table.c.block_number > above))
        conn.execute(sa.delete(_BLOCKS).where(_BLOCKS.c.number > above))
        for table, column, keys in (
            (_MEMBERS, _MEMBERS.c.address, members),
            (_AGENTS, _AGENTS.c.enterprise, members),
            (_ASSETS, _ASSETS.c.asset_id, assets),
            (_GRANTS, _GRANTS.c.grant_id, grants),
            (db.claims, db.claims.c.claim_id, claims),
        ):
            for chunk in _chunks(sorted(keys)):
                conn.execute(sa.delete(table).where(column.in_(chunk)))
        replay: list[DecodedEvent] = []
        for chunk in _chunks(sorted(members)):
            for r in conn.execute(
                sa.select(_MEMBER_EVENTS).where(_MEMBER_EVENTS.c.account.in_(chunk))
            ).mappings():
                replay.append(DecodedEvent(r["event"], dict(r["args"]), _ref(r)))
        for chunk in _chunks(sorted(assets)):
            for r in conn.execute(
                sa.select(_ASSET_EVENTS).where(
                    _ASSET_EVENTS.c.asset_id.in_(chunk)
                    | _ASSET_EVENTS.c.related_asset_id.in_(chunk)
                )
            ).mappings():
                replay.append(DecodedEvent(r["event"], dict(r["args"]), _ref(r)))
        for chunk in _chunks(sorted(grants)):
            for r in conn.execute(
                sa.select(_GRANT_EVENTS).where(_GRANT_EVENTS.c.grant_id.in_(chunk))
            ).mappings():
                replay.append(DecodedEvent(r["event"], dict(r["args"]), _ref(r)))
            for r in conn.execute(
                sa.select(_ACCESSES).where(_ACCESSES.c.grant_id.in_(chunk))
            ).mappings():
                args = {
                    "grantId": r["grant_id"],
                    "custodian": r["custodian"],
                    "fieldsMask": r["fields_mask"],
                    "nonce": r["nonce"],
                }
                replay.append(DecodedEvent("Accessed", args, _ref(r)))
        for chunk in _chunks(sorted(claims)):
            for r in conn.execute(
                sa.select(db.claim_events).where(db.claim_events.c.claim_id.in_(chunk))
            ).mappings():
                replay.append(DecodedEvent(r["event"], dict(r["args"]), _ref(r)))
        unique = {(e.ref.block_number, e.ref.log_index): e for e in replay}
        restrict = {"members": members, "assets": assets, "grants": grants, "claims": claims}
        projector = Projector(conn, restrict=restrict)
        for key in sorted(unique):
            projector.apply(unique[key])
        projector.flush()
        self._advance(conn, cursor, ancestor, ancestor_hash)

    def _advance(self, conn: Connection, cursor: Cursor, block: int, block_hash: str) -> None:
        result = conn.execute(
            sa.update(_CURSOR)
            .where(_CURSOR.c.id == 1, _CURSOR.c.last_block == cursor.last_block)
            .values(last_block=block, last_block_hash=block_hash, updated_at=datetime.now(UTC))
        )
        if result.rowcount != 1:
            raise ConcurrentIndexerError(
                f"cursor moved from block {cursor.last_block} under this indexer"
            )

    # One block range -----------------------------------------------------------------

    def _process_range(
        self, cursor: Cursor, first: int, last: int, logs: list[dict[str, Any]], target: int
    ) -> tuple[Cursor, int]:
        window_start = max(first, target - self._window + 1)
        numbers = {first, last, *range(window_start, last + 1)}
        logs.sort(key=lambda lg: (int(lg["blockNumber"], 16), int(lg["logIndex"], 16)))
        for lg in logs:
            if str(lg.get("address", "")).lower() not in self._log_addresses:
                raise IndexerRpcError(f"eth_getLogs answered with a log of {lg.get('address')}")
            if lg.get("removed"):
                raise ChainMovedError(f"log in block {lg['blockNumber']} was removed")
            if "blockTimestamp" not in lg or lg["blockTimestamp"] is None:
                numbers.add(int(lg["blockNumber"], 16))
        headers: dict[int, dict[str, Any]] = {}
        for number, header in self._rpc.headers(sorted(numbers)).items():
            if header is None:
                raise ChainMovedError(f"block {number} disappeared while indexing")
            headers[number] = header
        if (
            cursor.last_block_hash is not None
            and headers[first]["parentHash"] != cursor.last_block_hash
        ):
            raise ChainMovedError(
                f"block {first} does not extend indexed block {cursor.last_block}"
            )
        for number in range(window_start + 1, last + 1):
            if headers[number]["parentHash"] != headers[number - 1]["hash"]:
                raise ChainMovedError(f"blocks {number - 1}..{number} are not linked")
        decoded, skipped = self._decode(logs, headers)
        accessed = [e for e in decoded if e.name == "Accessed"]
        if accessed:
            senders = self._rpc.senders([e.ref.tx_hash for e in accessed])
            for e in accessed:
                e.args["custodian"] = senders[e.ref.tx_hash]
        last_hash = str(headers[last]["hash"])
        with self._engine.begin() as conn:
            projector = Projector(conn)
            projector.prefetch(decoded)
            for event in decoded:
                projector.apply(event)
            for row in skipped:
                projector.skipped(row)
            projector.flush()
            if self._on_events is not None and decoded:
                # Same transaction: the hook's writes commit (or roll back) with the range.
                self._on_events(conn, decoded)
            kept = [
                {
                    "number": n,
                    "hash": str(h["hash"]),
                    "parent_hash": str(h["parentHash"]),
                    "timestamp": int(h["timestamp"], 16),
                }
                for n, h in headers.items()
                if n >= window_start or n == last
            ]
            ins = dialect_insert(conn, _BLOCKS)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["number"],
                    set_={
                        "hash": ins.excluded.hash,
                        "parent_hash": ins.excluded.parent_hash,
                        "timestamp": ins.excluded.timestamp,
                    },
                ),
                kept,
            )
            conn.execute(sa.delete(_BLOCKS).where(_BLOCKS.c.number <= last - self._window))
            self._advance(conn, cursor, last, last_hash)
        return Cursor(last, last_hash), len(decoded) + len(skipped)

    def _decode(
        self, logs: list[dict[str, Any]], headers: dict[int, dict[str, Any]]
    ) -> tuple[list[DecodedEvent], list[dict[str, Any]]]:
        """The range's logs as events, and the logs of unknown topics kept as skipped rows."""
        decoded: list[DecodedEvent] = []
        skipped: list[dict[str, Any]] = []
        for lg in logs:
            ref = self._ref_of(lg, headers)
            topics = lg["topics"]
            topic0 = topics[0].lower() if topics else None
            spec = self._specs.get(topic0) if topic0 is not None else None
            if spec is None:
                if self._on_unknown == "error":
                    raise UnknownEventError(ref.block_number, ref.tx_hash, ref.log_index, topic0)
                skipped.append(
                    {
                        **ref.row(),
                        "address": str(lg["address"]).lower(),
                        "topic0": topic0,
                        "topics": [t.lower() for t in topics],
                        "data": lg["data"],
                        "reason": "unknown event topic",
                    }
                )
                continue
            try:
                args = spec.decode(topics, lg["data"])
            except ValueError as exc:
                raise EventDecodeError(
                    spec.name, ref.block_number, ref.log_index, str(exc)
                ) from exc
            decoded.append(DecodedEvent(spec.name, args, ref))
        return decoded, skipped

    @staticmethod
    def _ref_of(lg: dict[str, Any], headers: dict[int, dict[str, Any]]) -> LogRef:
        number = int(lg["blockNumber"], 16)
        header = headers.get(number)
        block_hash = str(lg["blockHash"]).lower()
        if header is not None and header["hash"] != block_hash:
            raise ChainMovedError(f"block {number} changed between eth_getLogs and its header")
        ts = lg.get("blockTimestamp")
        if ts is None:
            assert header is not None
            ts = header["timestamp"]
        return LogRef(
            block_number=number,
            block_hash=block_hash,
            block_timestamp=int(ts, 16),
            tx_hash=str(lg["transactionHash"]).lower(),
            log_index=int(lg["logIndex"], 16),
        )


def _ref(row: Any) -> LogRef:
    return LogRef(
        row["block_number"],
        row["block_hash"],
        row["block_timestamp"],
        row["tx_hash"],
        row["log_index"],
    )


def _chunks(keys: list[Any], size: int = 500) -> list[list[Any]]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]
