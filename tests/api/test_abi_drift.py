"""The api's calldata comes from ledger's generated ABI; the one hand-encoded hot-path call
(``check``) and the names the batcher imports must equal what ledger.abi produces."""

from __future__ import annotations

from typing import Any

import pytest
from _api_world import load_artifact

from api import batcher as _ledger_abi
from api import chain
from ledger.abi import ledger_abi


def _canonical(param: dict[str, Any]) -> str:
    t = str(param["type"])
    if t.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in param["components"])
        return f"({inner}){t[5:]}"
    return t


@pytest.mark.parametrize("mask", [1, 0b1011, 2**64 - 1])
@pytest.mark.parametrize("grantee", ["0x90F79bf6EB2c4f870365E785982E1f101E93b906", "0x" + "0" * 40])
def test_hand_encoded_check_equals_ledger_encoder(grantee: str, mask: int) -> None:
    check = ledger_abi().fn("check")
    ours = chain.LedgerReads.check_calldata(b"\x42" * 32, grantee, mask)
    assert ours == check.encode(b"\x42" * 32, grantee, mask)


def test_batcher_names_come_from_the_artifact() -> None:
    abi = load_artifact()["abi"]
    (fn,) = [e for e in abi if e.get("type") == "function" and e["name"] == "recordAccessBatch"]
    signature = f"recordAccessBatch({','.join(_canonical(p) for p in fn['inputs'])})"
    assert _ledger_abi.RECORD_ACCESS_BATCH.signature == signature
    from eth_hash.auto import keccak

    for name, topic in (
        ("Accessed", _ledger_abi.ACCESSED),
        ("AccessRefused", _ledger_abi.ACCESS_REFUSED),
    ):
        (ev,) = [e for e in abi if e.get("type") == "event" and e["name"] == name]
        sig = f"{name}({','.join(_canonical(p) for p in ev['inputs'])})"
        assert topic == "0x" + keccak(sig.encode()).hex()


def test_known_errors_exist_in_artifact() -> None:
    from api._translate import KNOWN_ERRORS

    errors_in_abi = {
        f"{e['name']}({','.join(_canonical(p) for p in e['inputs'])})"
        for e in load_artifact()["abi"]
        if e.get("type") == "error"
    }
    assert set(KNOWN_ERRORS) <= errors_in_abi, set(KNOWN_ERRORS) - errors_in_abi
