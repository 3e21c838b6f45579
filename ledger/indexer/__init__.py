"""Chain event indexer: ledger events into the SQL tables of :mod:`ledger.db`.

Usage from a service (background thread)::

    indexer = Indexer.from_settings()
    stop = threading.Event()
    threading.Thread(target=indexer.run, args=(stop,), daemon=True).start()

or ``python -m ledger.indexer`` (see ``--help``).
"""

from ledger.indexer._indexer import TRANSIENT_ERRORS, Cursor, EventHook, Indexer, SyncResult
from ledger.indexer._projection import DecodedEvent, LogRef
from ledger.indexer._ranges import RangeSizer
from ledger.indexer.errors import (
    AbiNotFoundError,
    ChainBehindDatabaseError,
    ChainMismatchError,
    ChainMovedError,
    ConcurrentIndexerError,
    EventDecodeError,
    InconsistentEventError,
    IndexerDatabaseError,
    IndexerError,
    IndexerRpcError,
    LogRangeRefusedError,
    ReorgTooDeepError,
    RpcResponseError,
    UnknownEventError,
)
from ledger.indexer.settings import IndexerSettings, get_settings

__all__ = [
    "TRANSIENT_ERRORS",
    "AbiNotFoundError",
    "ChainBehindDatabaseError",
    "ChainMismatchError",
    "ChainMovedError",
    "ConcurrentIndexerError",
    "Cursor",
    "DecodedEvent",
    "EventDecodeError",
    "EventHook",
    "InconsistentEventError",
    "Indexer",
    "IndexerDatabaseError",
    "IndexerError",
    "IndexerRpcError",
    "IndexerSettings",
    "LogRangeRefusedError",
    "LogRef",
    "RangeSizer",
    "ReorgTooDeepError",
    "RpcResponseError",
    "SyncResult",
    "UnknownEventError",
    "get_settings",
]
