"""A trace-worthy history on the test chain, made with direct contract calls, then indexed.

Two citizens, two banks, two departments: grants with different purposes, accesses,
pause / resume / revoke, and a grant whose expiry the chain passes. The service under test
sees all of it only through the event index (``ledger.indexer`` run here, once).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from _api_seed import SeededAsset, seed_asset
from _api_world import Actor, World

from ledger import db
from ledger.indexer import Indexer

FAR = 4_000_000_000


@dataclass
class TraceHistory:
    world: World
    db_url: str
    assets: dict[str, SeededAsset] = field(default_factory=dict)
    grants: dict[str, str] = field(default_factory=dict)
    #: tx hash -> what it did, for checking that rows cite the right transactions
    txs: dict[str, str] = field(default_factory=dict)
    access_txs: list[str] = field(default_factory=list)

    def grant(
        self,
        name: str,
        owner: Actor,
        asset: SeededAsset,
        grantee: Actor,
        *,
        purpose: int,
        mask: int,
        expiry: int = FAR,
    ) -> str:
        nonce = secrets.randbits(64)
        terms = (asset.asset_id, grantee.address, purpose, mask, 0, expiry, 0, 0)
        receipt = self.world.transact(owner, "grant", terms, nonce)
        gid = self.world.ledger.functions.grantIdOf(owner.address, nonce).call()
        self.grants[name] = "0x" + bytes(gid).hex()
        self.txs["0x" + bytes(receipt["transactionHash"]).hex()] = f"granted {name}"
        return self.grants[name]

    def access(self, name: str, grantee: Actor, mask: int) -> str:
        gid = self.grants[name]
        signed = self.world.sign_access(grantee, gid, mask)
        request = (bytes.fromhex(gid[2:]), mask, int(signed["nonce"]), signed["deadline"])
        custodian = self.world.custodian  # type: ignore[attr-defined]
        receipt = self.world.transact(
            custodian, "recordAccess", request, bytes.fromhex(signed["signature"][2:])
        )
        tx = "0x" + bytes(receipt["transactionHash"]).hex()
        self.txs[tx] = f"access {name}"
        self.access_txs.append(tx)
        return tx

    def status(self, owner: Actor, fn: str, name: str) -> None:
        receipt = self.world.transact(owner, fn, bytes.fromhex(self.grants[name][2:]))
        self.txs["0x" + bytes(receipt["transactionHash"]).hex()] = f"{fn} {name}"

    def index(self) -> int:
        engine = db.make_engine(self.db_url)
        indexer = Indexer(
            rpc_url=self.world.rpc_url,
            ledger_address=self.world.ledger_address,
            engine=engine,
            start_block=self.world.deploy_block,
        )
        try:
            return indexer.sync_once().last_block
        finally:
            indexer.close()
            engine.dispose()


def build_history(world: World, db_url: str) -> TraceHistory:
    """citizen: loan grant to bank (2 accesses, paused, resumed, revoked) and a short KYC
    grant to bank2 (1 access, then expires); citizen2: notary grant to bank2 (1 access)."""
    h = TraceHistory(world, db_url)
    h.assets["a1"] = seed_asset(world, db_url, world.citizen, b"a1")
    h.assets["a2"] = seed_asset(world, db_url, world.citizen2, b"a2")
    h.grant("loan", world.citizen, h.assets["a1"], world.bank, purpose=1, mask=0b01001)
    h.grant(
        "kyc",
        world.citizen,
        h.assets["a1"],
        world.bank2,
        purpose=2,
        mask=0b00011,
        expiry=world.now() + 500,
    )
    h.grant("notary", world.citizen2, h.assets["a2"], world.bank2, purpose=3, mask=0b10000)
    h.access("loan", world.bank, 0b00001)
    h.access("kyc", world.bank2, 0b00011)
    h.access("notary", world.bank2, 0b10000)
    h.access("loan", world.bank, 0b01000)
    h.status(world.citizen, "pause", "loan")
    h.status(world.citizen, "resume", "loan")
    h.status(world.citizen, "revoke", "loan")
    world.advance(1000)  # past the kyc grant's expiry
    h.index()
    return h


def items(resp: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = resp["items"]
    return out
