"""Put an asset on chain and into the service's tables without the vault (for grant tests)."""

from __future__ import annotations

from dataclasses import dataclass

from _api_world import Actor, World
from eth_abi import encode
from eth_hash.auto import keccak

from api import _store
from api.db import make_engine, migrate

FIELDS = ["name", "id_number", "address", "income", "employer"]


@dataclass
class SeededAsset:
    asset_id: bytes
    schema_id: bytes

    @property
    def hex(self) -> str:
        return "0x" + self.asset_id.hex()


def seed_asset(
    world: World, db_url: str, owner: Actor | None = None, tag: bytes = b""
) -> SeededAsset:
    owner = owner or world.citizen
    schema_id = keccak(b"schema" + tag + world.snapshot().encode())
    fields_hash = keccak(encode(["string[]"], [FIELDS]))
    world.transact(world.issuer, "registerSchema", schema_id, len(FIELDS), fields_hash)
    asset_id = keccak(b"asset" + schema_id)
    receipt = world.transact(
        world.issuer, "anchorAsset", asset_id, owner.address, schema_id, b"\x0a" * 32, b"\x0b" * 32
    )
    engine = make_engine(db_url)
    migrate(engine)
    try:
        _store.put_schema(
            engine,
            {
                "schema_id": "0x" + schema_id.hex(),
                "issuer": world.issuer.address.lower(),
                "name": "income statement",
                "fields": FIELDS,
                "fields_hash": "0x" + fields_hash.hex(),
                "tx_hash": None,
                "block": receipt["blockNumber"],
            },
        )
        _store.put_asset(
            engine,
            {
                "asset_id": "0x" + asset_id.hex(),
                "owner": owner.address.lower(),
                "issuer": world.issuer.address.lower(),
                "schema_id": "0x" + schema_id.hex(),
                "version": 1,
                "root": "0x" + "0a" * 32,
                "ciphertext_digest": "0x" + "0b" * 32,
                "previous": None,
                "anchor_tx": "0x" + bytes(receipt["transactionHash"]).hex(),
                "anchor_block": receipt["blockNumber"],
            },
        )
    finally:
        engine.dispose()
    return SeededAsset(asset_id, schema_id)
