"""Indexer against a real anvil and real SQLite/PostgreSQL databases: events the indexer does
not know, or that do not decode.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from _indexer_world import (
    Ledger,
)
from eth_utils import keccak
from web3 import Web3

from ledger import db
from ledger.indexer import (
    Indexer,
    UnknownEventError,
)
from ledger.indexer._abi import load_abi


def _emitter(ledger: Ledger, topics: list[bytes], data: bytes = b"") -> str:
    """Put code at a fresh address that emits one log with ``topics`` on every call."""
    code = b""
    if data:
        # Store the data word(s) in memory first.
        for i in range(0, len(data), 32):
            code += b"\x7f" + data[i : i + 32].ljust(32, b"\0") + b"\x60" + bytes([i]) + b"\x52"
    for topic in reversed(topics):
        code += b"\x7f" + topic
    code += b"\x60" + bytes([len(data)]) + b"\x60\x00" + bytes([0xA0 + len(topics)]) + b"\x00"
    address = Web3.to_checksum_address(keccak(text=f"emitter{topics!r}")[:20])
    ledger.rpc("anvil_setCode", [address, "0x" + code.hex()])
    ledger.w3.eth.wait_for_transaction_receipt(
        ledger.w3.eth.send_transaction({"from": ledger.governor, "to": address, "gas": 100_000})
    )
    return address


def test_unknown_event_is_a_typed_error_by_default(ledger: Ledger, db_url: str) -> None:
    address = _emitter(ledger, [keccak(text="Surprise(uint256)")])
    indexer = Indexer(
        rpc_url=ledger.url,
        ledger_address=address,
        engine=db.make_engine(db_url),
        start_block=ledger.deploy_block,
    )
    with pytest.raises(UnknownEventError) as info:
        indexer.sync_once()
    assert info.value.topic0 == "0x" + keccak(text="Surprise(uint256)").hex()
    cursor = indexer.cursor()
    assert cursor is not None and cursor.last_block < ledger.w3.eth.block_number
    indexer.close()


def test_unknown_event_is_recorded_when_skipping(ledger: Ledger, db_url: str) -> None:
    address = _emitter(ledger, [keccak(text="Surprise(uint256)")], (7).to_bytes(32, "big"))
    indexer = Indexer(
        rpc_url=ledger.url,
        ledger_address=address,
        engine=db.make_engine(db_url),
        start_block=ledger.deploy_block,
        on_unknown_event="skip",
    )
    indexer.sync_once()
    with indexer.engine.connect() as conn:
        rows = conn.execute(sa.text("select topic0, data from skipped_logs")).all()
    assert rows == [
        ("0x" + keccak(text="Surprise(uint256)").hex(), "0x" + (7).to_bytes(32, "big").hex())
    ]
    indexer.close()


def test_known_topic_with_wrong_layout_is_a_decode_error(ledger: Ledger, db_url: str) -> None:
    from ledger.indexer import EventDecodeError

    revoked = next(
        e for e in load_abi() if e.get("type") == "event" and e["name"] == "ConsentRevoked"
    )
    from eth_utils import event_abi_to_log_topic

    address = _emitter(ledger, [event_abi_to_log_topic(revoked)])  # indexed args missing
    indexer = Indexer(
        rpc_url=ledger.url,
        ledger_address=address,
        engine=db.make_engine(db_url),
        start_block=ledger.deploy_block,
    )
    with pytest.raises(EventDecodeError, match="ConsentRevoked"):
        indexer.sync_once()
    indexer.close()
