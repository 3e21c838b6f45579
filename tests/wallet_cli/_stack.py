"""The wallet tests' stack: anvil, the ledger, uvicorn serving the API, and wallets of a
citizen, a bank and a regulator whose keys are registered through the CLI itself.

Reuses tests/api's World (deploy + admit with anvil dev keys) and live server helpers.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _api_server import LiveServer, live_server, world_settings
from _api_world import DEV_KEYS, Actor, World
from _wallet import Wallet
from eth_abi import encode
from eth_hash.auto import keccak

from api.client import DataSafeClient, verified_member_key
from ledger.client import LedgerClient
from ledger.rpc import RpcClient
from ledger.trust import PinnedDeployment, read_deployment
from vault.sealing import SealedAsset, seal_asset

FIELDS = ["name", "id_number", "address", "income", "employer"]
VALUES = ["Li Wei", "110101199003070000", "1 Century Ave, Shanghai", "182000", "Acme Ltd"]


@dataclass
class Stack:
    world: World
    server: LiveServer
    citizen: Wallet
    bank: Wallet
    regulator: Wallet
    schema_id: bytes

    @property
    def rpc(self) -> str:
        return self.world.rpc_url

    def issue(self, tag: str, owner: Actor | None = None, values: list[str] | None = None) -> str:
        """The department seals an asset to the key the owner bound itself, and anchors it."""
        return self.issue_sealed(tag, owner, values)[0]

    def issue_sealed(
        self, tag: str, owner: Actor | None = None, values: list[str] | None = None
    ) -> tuple[str, SealedAsset]:
        """:meth:`issue`, with the sealed asset (to build key packages for it)."""
        world = self.world
        owner = owner or world.citizen
        with DataSafeClient(self.server.url, world.issuer.key) as c:
            entry = c.get(f"/v1/members/{owner.address}")
            with LedgerClient(world.rpc_url, world.ledger_address) as lc:
                key = verified_member_key(lc, entry)  # the issuer's check of the binding
            asset_id = keccak(f"asset {tag}".encode() + world.snapshot().encode())
            sealed = seal_asset(
                list(zip(FIELDS, [v.encode() for v in (values or VALUES)], strict=True)),
                asset_id=asset_id,
                version=1,
                owner_key=key,
            )
            raw = world.raw_tx(
                world.issuer,
                "anchorAsset",
                asset_id,
                owner.address,
                self.schema_id,
                sealed.root,
                sealed.ciphertext_digest,
            )
            out: dict[str, Any] = c.post(
                "/v1/assets",
                {"sealed": base64.b64encode(sealed.to_bytes()).decode(), "raw_transaction": raw},
            )
        return str(out["asset_id"]), sealed

    def publish_version(self, old_id: str, values: list[str], owner: Actor | None = None) -> str:
        """The department publishes the next version of ``old_id`` (sealed to the owner's own
        key, relayed through ``/versions``): the new asset id."""
        world = self.world
        owner = owner or world.citizen
        with DataSafeClient(self.server.url, world.issuer.key) as c:
            entry = c.get(f"/v1/members/{owner.address}")
            with LedgerClient(world.rpc_url, world.ledger_address) as lc:
                key = verified_member_key(lc, entry)
                version = lc.get_asset(bytes.fromhex(old_id[2:])).version + 1
            new_id = keccak(f"version of {old_id}".encode() + world.snapshot().encode())
            fields = list(zip(FIELDS, [v.encode() for v in values], strict=True))
            sealed = seal_asset(fields, asset_id=new_id, version=version, owner_key=key)
            raw = world.raw_tx(
                world.issuer,
                "supersedeAsset",
                bytes.fromhex(old_id[2:]),
                new_id,
                sealed.root,
                sealed.ciphertext_digest,
            )
            out: dict[str, Any] = c.post(
                f"/v1/assets/{old_id}/versions",
                {"sealed": base64.b64encode(sealed.to_bytes()).decode(), "raw_transaction": raw},
            )
        return str(out["asset_id"])


def _register_schema(server: LiveServer, world: World) -> bytes:
    sid = keccak(b"income statement" + world.snapshot().encode())
    raw = world.raw_tx(
        world.issuer, "registerSchema", sid, len(FIELDS), keccak(encode(["string[]"], [FIELDS]))
    )
    with DataSafeClient(server.url, world.issuer.key) as c:
        c.post(
            "/v1/schemas",
            {
                "schema_id": "0x" + sid.hex(),
                "name": "income statement",
                "fields": FIELDS,
                "raw_transaction": raw,
            },
        )
    return sid


def pin_of(world: World) -> PinnedDeployment:
    """The world's deployment as a wallet pins it (what its operator publishes out of band)."""
    with RpcClient(world.rpc_url) as rpc:
        return read_deployment(rpc, world.ledger_address)


def make_stack(anvil_url: str, db_url: str, tmp: Path, **overrides: object) -> Iterator[Stack]:
    """``overrides`` go to the service's settings (e.g. ``run_indexer=True``)."""
    world = World(anvil_url)
    custodian = Actor("custodian", DEV_KEYS[9])
    world.admit(custodian, 16, 8)  # CUSTODIAN, OPERATOR
    world.custodian = custodian  # type: ignore[attr-defined]
    with live_server(world_settings(world, db_url, tmp, **overrides)) as server:
        env = {
            "DATASAFE_API": server.url,
            "DATASAFE_RPC": world.rpc_url,
            "DATASAFE_PIN": pin_of(world).fingerprint,
        }
        citizen = Wallet(tmp / "citizen-wallet", env=dict(env))
        bank = Wallet(tmp / "bank-wallet", env=dict(env))
        regulator = Wallet(tmp / "regulator-wallet", env=dict(env))
        for wallet, name, actor in (
            (citizen, "li", world.citizen),
            (bank, "citybank", world.bank),
            (regulator, "regulator", world.regulator),
        ):
            wallet.ok(
                "account", "import", name, "--kind", "individual", DATASAFE_IMPORT_KEY=actor.key
            )
            wallet.ok("account", "register-key")
        citizen.ok("contacts", "add", "citybank", world.bank.address)
        citizen.ok("contacts", "add", "otherbank", world.bank2.address)
        citizen.ok("contacts", "add", "taxbureau", world.issuer.address)
        yield Stack(world, server, citizen, bank, regulator, _register_schema(server, world))


def make_indexed_stack(anvil_url: str, pg_databases: Any, tmp: Path, name: str) -> Iterator[Stack]:
    """The stack with the service's event indexer running, on PostgreSQL (trace, history)."""
    db_url = pg_databases.create(name)
    yield from make_stack(anvil_url, db_url, tmp, run_indexer=True, indexer_interval_seconds=0.2)


def governor_wallet(stack: Stack) -> Wallet:
    """A new wallet holding the governor's key (it names members in the directory)."""
    gov = Wallet(stack.citizen.home.parent / "governor-wallet", env=dict(stack.citizen.env))
    gov.env["DATASAFE_HOME"] = str(gov.home)
    gov.ok(
        "account", "import", "gov", "--kind", "regulator",
        DATASAFE_IMPORT_KEY=stack.world.governor.key,
    )  # fmt: skip
    return gov
