"""The indexer tests' chain driver: the forge-built DataSafeLedger deployed on the session's
anvil (``anvil_chain``), and every kind of ledger event produced through its public functions.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from eth_utils import keccak
from web3 import Web3

from ledger import db
from ledger.eip712 import pack_access_batch
from ledger.indexer import (
    Indexer,
)
from ledger.models import AccessRequest
from ledger.uses import accessed_topic

ROOT = Path(__file__).resolve().parents[3]

ISSUER, CONSUMER, SUBJECT = 2, 4, 32
KIND_INDIVIDUAL, KIND_ENTERPRISE, KIND_BANK, KIND_DEPARTMENT = 1, 2, 3, 6

EVENT_TABLES = (
    "member_events",
    "schemas",
    "asset_events",
    "grant_events",
    "accesses",
    "access_refusals",
    "skipped_logs",
)


def _artifact() -> dict[str, Any]:
    # forge may be rewriting out/ concurrently: retry a missing/partial file for a while.
    deadline = time.monotonic() + 120
    while True:
        try:
            return _read_artifact()
        except (OSError, ValueError, KeyError):
            if time.monotonic() > deadline:
                pytest.fail("DataSafeLedger artifact missing (forge build / gen_artifacts.py)")
            time.sleep(1)


def _read_artifact() -> dict[str, Any]:
    for path in (
        ROOT / "ledger" / "artifacts" / "DataSafeLedger.json",
        ROOT / "out" / "DataSafeLedger.sol" / "DataSafeLedger.json",
    ):
        if path.is_file():
            data = json.loads(path.read_text())
            bytecode = data.get("bytecode")
            if isinstance(bytecode, dict):
                bytecode = bytecode["object"]
            return {"abi": data["abi"], "bytecode": bytecode}
    raise OSError("no artifact")


@dataclass
class Ledger:
    w3: Web3
    address: str
    deploy_block: int
    contract: Any
    governor: str
    issuer: str
    subject: str
    bank_key: Any
    url: str

    def tx(self, fn: Any, sender: str) -> Any:
        tx_hash = fn.transact({"from": sender})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        return receipt

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        return self.w3.provider.make_request(method, params or [])["result"]  # type: ignore[arg-type]

    def mine(self, n: int = 1) -> None:
        self.rpc("anvil_mine", [hex(n)])

    # Domain actions ------------------------------------------------------------------

    def anchor(self, tag: str) -> str:
        asset_id = keccak(text=f"asset:{tag}")
        self.tx(
            self.contract.functions.anchorAsset(
                asset_id, self.subject, SCHEMA_ID, keccak(text=f"root:{tag}"), keccak(text=tag)
            ),
            self.issuer,
        )
        return "0x" + asset_id.hex()

    def grant(self, asset_id: str, nonce: int, max_uses: int = 0) -> str:
        now = self.w3.eth.get_block("latest")["timestamp"]
        terms = (bytes.fromhex(asset_id[2:]), self.bank, 1, 0b11, 0, now + 10**6, max_uses, 0)
        self.tx(self.contract.functions.grant(terms, nonce), self.subject)
        gid = self.contract.functions.grantIdOf(self.subject, nonce).call()
        return "0x" + bytes(gid).hex()

    def access(self, grant_ids: list[str], first_nonce: int) -> None:
        requests, sigs = [], []
        for i, gid in enumerate(grant_ids):
            req = AccessRequest(bytes.fromhex(gid[2:]), 0b01, first_nonce + i, 2**40)
            digest = self.contract.functions.hashAccessRequest(req.as_tuple()).call()
            sigs.append(bytes(self.bank_key.unsafe_sign_hash(digest).signature))
            requests.append(req)
        packed = pack_access_batch(requests, sigs)
        self.tx(self.contract.functions.recordAccessBatch(packed), self.governor)

    @property
    def bank(self) -> str:
        return str(self.bank_key.address)


SCHEMA_ID = keccak(text="schema:identity")


def make_indexer(ledger: Ledger, db_url: str, **kw: Any) -> Indexer:
    return Indexer(
        rpc_url=kw.pop("rpc_url", ledger.url),
        ledger_address=ledger.address,
        engine=db.make_engine(db_url),
        start_block=ledger.deploy_block,
        **kw,
    )


def chain_logs(ledger: Ledger) -> set[tuple[int, int, str, str]]:
    logs = ledger.rpc(
        "eth_getLogs",
        [{"address": ledger.address, "fromBlock": hex(ledger.deploy_block), "toBlock": "latest"}],
    )
    return {
        (
            int(lg["blockNumber"], 16),
            int(lg["logIndex"], 16),
            lg["blockHash"],
            lg["transactionHash"],
        )
        for lg in logs
    }


def db_logs(engine: sa.Engine) -> list[tuple[int, int, str, str]]:
    rows: list[tuple[int, int, str, str]] = []
    with engine.connect() as conn:
        for name in EVENT_TABLES:
            table = db.INDEXER_METADATA.tables[name]
            rows.extend(
                (r.block_number, r.log_index, r.block_hash, r.tx_hash)
                for r in conn.execute(
                    sa.select(
                        table.c.block_number, table.c.log_index, table.c.block_hash, table.c.tx_hash
                    )
                )
            )
    return rows


def assert_index_matches_chain(ledger: Ledger, engine: sa.Engine) -> None:
    rows = db_logs(engine)
    assert len(rows) == len(set(rows)), "duplicate event rows"
    assert set(rows) == chain_logs(ledger)
    # Current-state rows agree with the contract's storage; uses with the grant's Accessed
    # events (the chain counts only grants with a use limit, and those two agree).
    accessed = ledger.rpc(
        "eth_getLogs",
        [
            {
                "address": ledger.address,
                "fromBlock": hex(ledger.deploy_block),
                "toBlock": "latest",
                "topics": [accessed_topic()],
            }
        ],
    )
    events = Counter(str(lg["topics"][1]).lower() for lg in accessed)
    with engine.connect() as conn:
        for g in conn.execute(sa.select(db.grants)).mappings():
            onchain = ledger.contract.functions.getGrant(bytes.fromhex(g["grant_id"][2:])).call()
            assert g["uses"] == events[g["grant_id"]]
            assert g["uses"] == onchain[7] or onchain[6] == 0
            assert g["status"] == {1: "active", 2: "paused", 3: "revoked"}[onchain[8]]
            assert g["fields_mask"] == onchain[3]
        # Accessed names no grantee: the index takes the grant's, and the chain agrees.
        for r in conn.execute(sa.select(db.accesses)).mappings():
            onchain = ledger.contract.functions.getGrant(bytes.fromhex(r["grant_id"][2:])).call()
            assert r["grantee"] == onchain[1].lower()
        for m in conn.execute(sa.select(db.members)).mappings():
            onchain = ledger.contract.functions.getMember(
                Web3.to_checksum_address(m["address"])
            ).call()
            assert (m["roles"], m["kind"]) == (onchain[0], onchain[1])
            assert m["status"] == {1: "active", 2: "suspended"}[onchain[2]]
        for a in conn.execute(sa.select(db.assets)).mappings():
            onchain = ledger.contract.functions.getAsset(bytes.fromhex(a["asset_id"][2:])).call()
            assert (
                a["status"]
                == {1: "active", 2: "disputed", 3: "superseded", 4: "retired"}[onchain[1]]
            )


def busy_history(ledger: Ledger) -> list[str]:
    """One of every kind of event: assets, grants, status changes, accesses, refusals."""
    c = ledger.contract
    a1 = ledger.anchor("a1")
    a2 = ledger.anchor("a2")
    new_a1 = keccak(text="asset:a1v2")
    ledger.tx(
        c.functions.supersedeAsset(
            bytes.fromhex(a1[2:]), new_a1, keccak(text="r2"), keccak(text="d2")
        ),
        ledger.issuer,
    )
    ledger.tx(c.functions.disputeAsset(bytes.fromhex(a2[2:]), keccak(text="wrong")), ledger.subject)
    ledger.tx(
        c.functions.resolveDispute(bytes.fromhex(a2[2:]), keccak(text="fixed")), ledger.issuer
    )
    g1 = ledger.grant("0x" + new_a1.hex(), 1)
    g2 = ledger.grant(a2, 2, max_uses=5)
    ledger.access([g1, g2, g1], 100)
    ledger.tx(c.functions.pause(bytes.fromhex(g2[2:])), ledger.subject)
    ledger.access([g2], 200)  # refused: paused
    ledger.tx(c.functions.resume(bytes.fromhex(g2[2:])), ledger.subject)
    ledger.tx(c.functions.revoke(bytes.fromhex(g1[2:])), ledger.subject)
    ledger.tx(c.functions.bindEncryptionKey(keccak(text="enc2"), b"proof"), ledger.subject)
    ledger.tx(c.functions.suspendMember(ledger.bank, keccak(text="audit")), ledger.governor)
    ledger.tx(c.functions.reinstateMember(ledger.bank, keccak(text="ok")), ledger.governor)
    return [g1, g2]
