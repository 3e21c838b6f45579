"""Names ``api.batcher`` imports, as views of :mod:`ledger.abi` (nothing here is hand-written).

Everything else in the api takes its encoders from ``ledger.abi.ledger_abi()`` directly;
this module goes once the batcher does the same.
"""

from __future__ import annotations

from ledger.abi import ledger_abi

_ABI = ledger_abi()

RECORD_ACCESS_BATCH = _ABI.fn("recordAccessBatch")
#: ``topics[0]`` of the batch's events, as the 0x-hex strings JSON-RPC logs carry.
ACCESSED = "0x" + _ABI.events_by_name["Accessed"].topic0.hex()
ACCESS_REFUSED = "0x" + _ABI.events_by_name["AccessRefused"].topic0.hex()
