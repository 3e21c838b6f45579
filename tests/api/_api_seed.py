"""Put a really sealed asset on chain and into the service's tables (for grant/pull tests).

The asset is sealed with the vault to the owner's registered key and anchored with the
sealed asset's own root and ciphertext digest, so tests can build real key packages for it.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from _api_world import Actor, World
from eth_abi import encode
from eth_hash.auto import keccak

from api import _store
from api.db import make_engine, migrate
from ledger import eip712
from ledger.calls import grant_id_of
from ledger.models import GrantTerms
from vault.packages import KeyPackage, build_key_package
from vault.sealing import SealedAsset, seal_asset

FIELDS = ["name", "id_number", "address", "income", "employer"]
VALUES = [b"Li Wei", b"110101199001011234", b"1 Chang'an Ave, Beijing", b"21000", b"ACME Ltd"]


@dataclass
class SeededAsset:
    asset_id: bytes
    schema_id: bytes
    sealed: SealedAsset
    owner: Actor

    @property
    def hex(self) -> str:
        return "0x" + self.asset_id.hex()


def seal_for(world: World, owner: Actor, asset_id: bytes, version: int = 1) -> SealedAsset:
    return seal_asset(
        list(zip(FIELDS, VALUES, strict=True)),
        asset_id=asset_id,
        version=version,
        owner_key=world.enc_key(owner).public_key,
    )


def key_package(
    world: World,
    asset: SeededAsset,
    grant_id: str,
    fields_mask: int,
    grantee: Actor | None = None,
) -> KeyPackage:
    """The owner's key package for ``fields_mask``, wrapped to the grantee's registered key."""
    names: Sequence[str] = [n for i, n in enumerate(FIELDS) if fields_mask >> i & 1]
    return build_key_package(
        asset.sealed,
        world.enc_key(asset.owner),
        grant_id=bytes.fromhex(grant_id[2:]),
        fields=names,
        grantee_key=world.enc_key(grantee or world.bank).public_key,
    )


def seed_asset(
    world: World, db_url: str, owner: Actor | None = None, tag: bytes = b""
) -> SeededAsset:
    owner = owner or world.citizen
    schema_id = keccak(b"schema" + tag + world.snapshot().encode())
    fields_hash = keccak(encode(["string[]"], [FIELDS]))
    world.transact(world.issuer, "registerSchema", schema_id, len(FIELDS), fields_hash)
    asset_id = keccak(b"asset" + schema_id)
    sealed = seal_for(world, owner, asset_id)
    receipt = world.transact(
        world.issuer,
        "anchorAsset",
        asset_id,
        owner.address,
        schema_id,
        sealed.root,
        sealed.ciphertext_digest,
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
                "root": "0x" + sealed.root.hex(),
                "ciphertext_digest": "0x" + sealed.ciphertext_digest.hex(),
                "previous": None,
                "anchor_tx": "0x" + bytes(receipt["transactionHash"]).hex(),
                "anchor_block": receipt["blockNumber"],
            },
        )
    finally:
        engine.dispose()
    return SeededAsset(asset_id, schema_id, sealed, owner)


def proposal_payload(
    world: World, agent: Actor, enterprise: Actor, asset: SeededAsset, retention: int = 0
) -> dict[str, Any]:
    """``agent``'s proposal (POST /v1/proposals body) of a grant of ``enterprise``'s ``asset``
    to ``bank`` for a day, with a real key package and its own approval of the terms."""
    nonce = secrets.randbits(64)
    gid = "0x" + grant_id_of(enterprise.address, nonce).hex()
    body: dict[str, Any] = {
        "terms": {
            "asset_id": asset.hex,
            "grantee": world.bank.address,
            "purpose": 1,
            "fields_mask": 0b011,
            "not_before": 0,
            "expiry": world.now() + 86_400,
            "max_uses": 0,
            # Signed like every term: the approvals' digest covers it.
            "retention": retention,
        },
        "nonce": str(nonce),
        "deadline": int(time.time()) + 3600,
        "key_package": base64.b64encode(key_package(world, asset, gid, 0b011).to_bytes()).decode(),
    }
    return body | {"approval": approval_signature(world, agent, enterprise, body)}


def approval_signature(
    world: World, signer: Actor, enterprise: Actor, proposal: dict[str, Any]
) -> str:
    """``signer``'s approval of ``proposal`` (its terms, nonce and deadline) for ``enterprise``,
    in the enterprise's current epoch for the terms' purpose."""
    terms = proposal["terms"]
    epoch = world.ledger.functions.approvalPolicy(enterprise.address, terms["purpose"]).call()[1]
    digest = eip712.approval_digest(
        world.domain,
        enterprise.address,
        epoch,
        GrantTerms.from_json(terms),
        int(proposal["nonce"]),
        proposal["deadline"],
    )
    return "0x" + eip712.sign_digest(signer.key_bytes, digest).hex()
