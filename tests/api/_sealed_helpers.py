"""Shared by the sealed-access tests: members' own transactions to the companion."""

from __future__ import annotations

import os
from typing import Any

from _api_world import Actor, World
from eth_account import Account

from ledger import sealed as sl

DAY = 86_400


def companion_tx(world: World, actor: Actor, data: bytes, to: str | None = None) -> str:
    """``actor``'s signed (not sent) transaction to the sealed-access companion."""
    tx = {
        "from": actor.address,
        "to": to or sl.sealed_address(world.ledger_address),
        "data": "0x" + data.hex(),
        "nonce": world.w3.eth.get_transaction_count(actor.address, "pending"),
        "chainId": world.chain_id,
        "gas": 400_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "type": 2,
    }
    return "0x" + bytes(Account.sign_transaction(tx, actor.key).raw_transaction).hex()


def anchored_asset(world: World, owner: Actor) -> bytes:
    schema, asset = os.urandom(32), os.urandom(32)
    world.transact(world.issuer, "registerSchema", schema, 4, os.urandom(32))
    world.transact(world.issuer, "anchorAsset", asset, owner.address, schema, b"r" * 32, b"d" * 32)
    return asset


def seal_body(world: World, opening: sl.Opening, unseal_at: int, by: Actor | None = None) -> Any:
    data = sl.encode_seal(opening.asset_id, opening.commitment(), unseal_at)
    return {"raw_transaction": companion_tx(world, by or world.issuer, data)}
