"""Typed failures of the indexer; all derive from :class:`ledger.errors.LedgerError`."""

from __future__ import annotations

from ledger.errors import LedgerError


class IndexerError(LedgerError):
    """Root of every indexer failure."""


class IndexerRpcError(IndexerError):
    """The node could not be reached or answered with something that is not JSON-RPC."""


class RpcResponseError(IndexerError):
    """The node answered a JSON-RPC call with an error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method} failed: [{code}] {message}")
        self.method = method
        self.code = code
        self.rpc_message = message


class LogRangeRefusedError(IndexerError):
    """The node refuses ``eth_getLogs`` even for the smallest allowed block range."""

    def __init__(self, from_block: int, to_block: int, cause: RpcResponseError) -> None:
        super().__init__(
            f"node refused eth_getLogs for blocks {from_block}..{to_block} "
            f"even at the minimum range: {cause}"
        )
        self.from_block = from_block
        self.to_block = to_block


class AbiNotFoundError(IndexerError):
    """No ledger ABI artifact could be found to derive event topics from."""


class UnknownEventError(IndexerError):
    """A log from the ledger address carries a topic that is not an event of the ledger ABI.

    The indexer refuses to continue past it (``on_unknown_event="error"``, the default)
    because a regulator's trace built on an index that silently dropped events would be
    wrong without anyone noticing. Set ``on_unknown_event="skip"`` to record it in
    ``skipped_logs`` instead and carry on.
    """

    def __init__(self, block_number: int, tx_hash: str, log_index: int, topic0: str | None) -> None:
        super().__init__(
            f"unknown event topic {topic0} from the ledger address in block {block_number} "
            f"(tx {tx_hash}, log {log_index})"
        )
        self.block_number = block_number
        self.tx_hash = tx_hash
        self.log_index = log_index
        self.topic0 = topic0


class EventDecodeError(IndexerError):
    """A log has a known topic but its topics/data do not decode with the ABI."""

    def __init__(self, event: str, block_number: int, log_index: int, reason: str) -> None:
        super().__init__(f"cannot decode {event} in block {block_number} log {log_index}: {reason}")
        self.event = event
        self.block_number = block_number
        self.log_index = log_index


class InconsistentEventError(IndexerError):
    """An event refers to state the index does not have (e.g. a revocation of an unknown grant).

    Either the indexer started after the ledger's deployment block or the database was
    edited by hand; in both cases the index cannot be trusted and must be rebuilt.
    """


class ChainMismatchError(IndexerError):
    """The database was indexed from another chain (chain id, genesis or ledger address differ)."""


class ChainBehindDatabaseError(IndexerError):
    """The node's head is below the last indexed block, on the same history.

    The node is lagging (still syncing, or a load balancer switched to a slower node);
    nothing is rolled back, the indexer waits until the node catches up.
    """

    def __init__(self, last_indexed: int, chain_head: int) -> None:
        super().__init__(
            f"database indexed up to block {last_indexed} but the node's head is {chain_head}"
        )
        self.last_indexed = last_indexed
        self.chain_head = chain_head


class ReorgTooDeepError(IndexerError):
    """The chain diverged below the oldest block hash the indexer kept.

    No common ancestor is known, so the indexer cannot roll back safely; raise
    ``reorg_window`` / ``confirmations`` and rebuild the index from the deployment block.
    """

    def __init__(self, last_indexed: int, oldest_known: int | None) -> None:
        super().__init__(
            f"chain re-organised below the kept block hashes (last indexed {last_indexed}, "
            f"oldest kept {oldest_known}); rebuild the index"
        )
        self.last_indexed = last_indexed
        self.oldest_known = oldest_known


class ChainMovedError(IndexerError):
    """The chain re-organised while a block range was being fetched; the range was not written."""


class ConcurrentIndexerError(IndexerError):
    """Another indexer advanced the cursor of the same database in the meantime."""


class IndexerDatabaseError(IndexerError):
    """The index database failed (unreachable, locked, constraint violated)."""
