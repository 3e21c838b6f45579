"""Claims in the index: the companion's events become ``claims`` rows that follow the chain,
on SQLite and PostgreSQL, through a re-org that swaps a fulfilment for a refusal."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from _indexer_world import SCHEMA_ID, Ledger, make_indexer
from eth_utils import keccak

from ledger import claims as cl
from ledger import db
from ledger.chain import DEV_PRIVATE_KEYS
from ledger.rpc import RpcClient


def _claims_contract(ledger: Ledger) -> Any:
    address = cl.claims_address(ledger.address)
    return ledger.w3.eth.contract(address=address, abi=cl.claims_abi().abi)


def _file(ledger: Ledger, tag: str) -> str:
    contract = _claims_contract(ledger)
    nonce = contract.functions.nonces(ledger.subject).call()
    request = cl.ClaimRequest(
        ledger.subject,
        ledger.issuer,
        SCHEMA_ID,
        cl.reference_hash(ledger.issuer, SCHEMA_ID, f"case {tag}"),
        nonce,
        2**40,
    )
    sig = cl.sign_request(bytes.fromhex(DEV_PRIVATE_KEYS[2][2:]), 31337, ledger.address, request)
    ledger.tx(contract.functions.fileClaim(request.as_tuple(), sig), ledger.governor)
    return "0x" + cl.request_digest(31337, ledger.address, request).hex()


def _rows(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {r["claim_id"]: dict(r) for r in conn.execute(sa.select(db.claims)).mappings()}


def test_claims_follow_the_chain_through_a_reorg(ledger: Ledger, db_url: str) -> None:
    contract = _claims_contract(ledger)
    first = _file(ledger, "1")
    second = _file(ledger, "2")
    asset = ledger.anchor("claimed")
    ledger.tx(contract.functions.fulfilClaim(first, asset), ledger.issuer)
    indexer = make_indexer(ledger, db_url, batch_size=3)
    indexer.sync_once()
    rows = _rows(indexer.engine)
    assert rows[first]["status"] == "fulfilled" and rows[first]["asset_id"] == asset
    assert rows[second]["status"] == "open" and rows[second]["closed_at"] is None
    assert rows[first]["subject"] == ledger.subject.lower()
    assert rows[first]["department"] == ledger.issuer.lower()
    with indexer.engine.connect() as conn:
        events = conn.execute(sa.select(db.claim_events.c.event)).scalars().all()
    assert sorted(events) == ["ClaimFiled", "ClaimFiled", "ClaimFulfilled"]
    # Branch A answers the second claim with a fulfilment; branch B refuses it instead.
    fork = ledger.rpc("evm_snapshot")
    other = ledger.anchor("branch-a")
    ledger.tx(contract.functions.fulfilClaim(second, other), ledger.issuer)
    indexer.sync_once()
    assert _rows(indexer.engine)[second]["status"] == "fulfilled"
    head_a = ledger.w3.eth.block_number
    ledger.rpc("evm_revert", [fork])
    ledger.tx(contract.functions.refuseClaim(second, 1, keccak(text="no record")), ledger.issuer)
    third = _file(ledger, "3")
    ledger.mine(head_a - ledger.w3.eth.block_number + 2)
    assert indexer.sync_once().rolled_back_to is not None
    rows = _rows(indexer.engine)
    assert rows[second]["status"] == "refused" and rows[second]["asset_id"] is None
    assert rows[second]["reason_code"] == 1
    assert rows[second]["reason_hash"] == "0x" + keccak(text="no record").hex()
    assert rows[first]["status"] == "fulfilled", "a claim answered before the fork stays answered"
    assert rows[third]["status"] == "open"
    # Every row agrees with the contract's storage.
    with RpcClient(ledger.url) as rpc:
        ids = [bytes.fromhex(c[2:]) for c in (first, second, third)]
        for claim in cl.read_claims(rpc, ledger.address, ids):
            assert rows["0x" + claim.claim_id.hex()]["status"] == claim.status.label
        # The audit re-derives the same claims from the companion's logs alone.
        truth = cl.derive_claims(rpc, ledger.address, ledger.deploy_block)
    assert cl.diff_claims(truth, rows.values()) == []
    altered = dict(rows[third], status="refused", reason_code=1)
    assert cl.diff_claims(truth, [*(r for k, r in rows.items() if k != third), altered]) == [
        f"altered: {third} status (chain 'open', answer 'refused')",
        f"altered: {third} reason_code (chain None, answer 1)",
    ]
    assert cl.diff_claims(truth, [rows[first]]) == sorted(
        [f"missing: {second}", f"missing: {third}"]
    )
