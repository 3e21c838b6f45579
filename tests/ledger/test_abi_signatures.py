"""ledger.abi's selectors and topics against eth-utils' (which it no longer imports)."""

from __future__ import annotations

import pytest
from eth_utils.abi import (
    collapse_if_tuple,
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
)

from ledger.abi import canonical_type, signature_hash
from ledger.artifacts import FORWARDER_CONTRACT, LEDGER_CONTRACT, load_artifact


@pytest.mark.parametrize("contract", [LEDGER_CONTRACT, FORWARDER_CONTRACT])
def test_every_selector_and_topic_matches_eth_utils(contract: str) -> None:
    items = [dict(i) for i in load_artifact(contract).abi]
    kinds = {"function": 0, "event": 0, "error": 0}
    for item in items:
        kind = item.get("type")
        if kind not in kinds:
            continue
        kinds[kind] += 1
        for param in [*item.get("inputs", []), *item.get("outputs", [])]:
            assert canonical_type(param) == collapse_if_tuple(dict(param))
        if kind == "event":
            assert signature_hash(item) == event_abi_to_log_topic(item)  # type: ignore[arg-type]
        else:
            assert signature_hash(item)[:4] == function_abi_to_4byte_selector(item)  # type: ignore[arg-type]
    assert kinds["function"] and kinds["event"], kinds


def test_tuple_arrays_are_spelled_as_eth_utils_does() -> None:
    param = {
        "type": "tuple[2][]",
        "components": [
            {"type": "address"},
            {"type": "tuple[]", "components": [{"type": "bytes32"}, {"type": "uint64"}]},
        ],
    }
    assert canonical_type(param) == collapse_if_tuple(param) == "(address,(bytes32,uint64)[])[2][]"
