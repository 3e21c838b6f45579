"""``datasafe audit verify`` (the regulator's whole-ledger check) covers the companions too: a
service that hides a sealed access record or alters a claim is reported as drift (exit 3),
by the wallet's one check of each (``ledger.sealed.check_listing``, the claims re-derived
from the claims contract's logs)."""

from __future__ import annotations

import json
import time
from typing import Any

from _liar import LyingProxy
from _sealed_helpers import DAY, seal_body
from _stack import Stack

from api.client import DataSafeClient
from ledger import sealed as sl
from wallet_cli.errors import EXIT_REFUSED


def _settled(stack: Stack) -> dict[str, Any]:
    """The honest audit, once the service's claims index has caught up with the chain."""
    deadline = time.monotonic() + 30
    while True:
        r = stack.regulator.run("--json", "audit", "verify")
        if r.exit_code == 0 or time.monotonic() > deadline:
            assert r.exit_code == 0, r.stdout
            return dict(json.loads(r.stdout))
        time.sleep(0.3)


def _drift(stack: Stack, liar: LyingProxy) -> dict[str, Any]:
    r = stack.regulator.run("--json", "audit", "verify", DATASAFE_API=liar.url)
    assert r.exit_code == EXIT_REFUSED, f"exit {r.exit_code}\n{r.stdout}\n{r.stderr}"
    return dict(json.loads(r.stdout))


def test_hidden_seals_and_altered_claims_are_drift(stack: Stack, liar: LyingProxy) -> None:
    world = stack.world
    aid = bytes.fromhex(stack.issue("audited")[2:])
    with DataSafeClient(stack.server.url, world.issuer.key) as dept:
        for _ in range(2):
            opening = sl.Opening.new(world.bank.address, aid, 0b1, "public security law art. 9")
            dept.post("/v1/sealed", seal_body(world, opening, world.now() + 5 * DAY))
    schema = "0x" + stack.schema_id.hex()
    claim = stack.citizen.json("claims", "file", "taxbureau", schema, "--reference", "audited")
    honest = _settled(stack)
    assert honest["sealed"] == {"records": 2, "drift": []}
    assert honest["claims"]["on_chain"] == 1 and honest["claims"]["drift"] == []

    # 1. The service leaves the second sealed access out of the regulator's list.
    liar.rewrite("GET", "/v1/sealed", lambda _m, _p, _q, _b, items: items[:1])
    report = _drift(stack, liar)
    assert report["drift"] == [] and report["claims"]["drift"] == []
    (line,) = report["sealed"]["drift"]
    assert "hid 1 sealed access record" in line

    # 2. The service says the department fulfilled the claim, which is still open on chain.
    liar.honest()

    def fulfilled(_m: str, _p: str, _q: str, _b: bytes, rows: Any) -> Any:
        return [r | {"status": "fulfilled", "asset_id": "0x" + "ab" * 32} for r in rows]

    liar.rewrite("GET", "/v1/claims", fulfilled)
    report = _drift(stack, liar)
    assert report["sealed"]["drift"] == []
    assert f"altered: {claim['claim_id']} status" in "; ".join(report["claims"]["drift"])
    human = stack.regulator.run("audit", "verify", DATASAFE_API=liar.url)
    assert human.exit_code == EXIT_REFUSED and claim["claim_id"] in human.stdout
