"""The hand-encoded calls in api._ledger_abi match the compiled ledger ABI (fails on drift)."""

from __future__ import annotations

from typing import Any

import pytest
from _api_world import load_artifact

from api import _ledger_abi as abi
from api import chain


def _canonical(param: dict[str, Any]) -> str:
    t = str(param["type"])
    if t.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in param["components"])
        return f"({inner}){t[5:]}"
    return t


FNS = [v for v in vars(abi).values() if isinstance(v, abi.Fn)]


@pytest.mark.parametrize("fn", FNS, ids=lambda f: f.name)
def test_function_matches_artifact(fn: abi.Fn) -> None:
    entries = [
        e for e in load_artifact()["abi"] if e.get("type") == "function" and e["name"] == fn.name
    ]
    assert entries, f"{fn.name} not in the ledger ABI"
    (entry,) = entries
    assert tuple(_canonical(p) for p in entry["inputs"]) == fn.inputs
    if fn.outputs:
        assert tuple(_canonical(p) for p in entry["outputs"]) == fn.outputs


def test_get_member_layout_matches_artifact() -> None:
    (entry,) = [e for e in load_artifact()["abi"] if e.get("name") == "getMember"]
    assert _canonical(entry["outputs"][0]) == chain.MEMBER_ABI


@pytest.mark.parametrize("event_topic", ["Accessed", "AccessRefused", "ConsentGranted"])
def test_event_topics_match_artifact(event_topic: str) -> None:
    from eth_hash.auto import keccak

    (entry,) = [
        e for e in load_artifact()["abi"] if e.get("type") == "event" and e["name"] == event_topic
    ]
    sig = f"{entry['name']}({','.join(_canonical(p) for p in entry['inputs'])})"
    ours = {
        "Accessed": abi.ACCESSED,
        "AccessRefused": abi.ACCESS_REFUSED,
        "ConsentGranted": abi.CONSENT_GRANTED,
    }
    assert ours[event_topic] == "0x" + keccak(sig.encode()).hex()


def test_known_errors_exist_in_artifact() -> None:
    from api._translate import KNOWN_ERRORS

    errors_in_abi = {
        f"{e['name']}({','.join(_canonical(p) for p in e['inputs'])})"
        for e in load_artifact()["abi"]
        if e.get("type") == "error"
    }
    assert set(KNOWN_ERRORS) <= errors_in_abi, set(KNOWN_ERRORS) - errors_in_abi
