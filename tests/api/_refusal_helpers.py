"""Grants made straight on chain, access requests with any deadline, and the custodian's
transaction count: what the pre-check and chain-time tests measure."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import sqlalchemy as sa
from _api_seed import SeededAsset, key_package
from _api_server import LiveServer
from _api_world import Actor, World
from test_story import issue, publish_key, register_schema

from api import db as api_db
from api.client import DataSafeClient
from api.envelope import sign_digest
from ledger import eip712
from ledger.models import AccessRequest


def chain_grant(
    world: World,
    asset_id: bytes,
    *,
    grantee: Actor | None = None,
    mask: int = 0b11,
    not_before: int = 0,
    expiry: int | None = None,
    max_uses: int = 0,
) -> str:
    """A grant by the citizen, sent directly (not through the service)."""
    nonce = secrets.randbits(64)
    expiry = expiry if expiry is not None else world.now() + 86_400
    who = (grantee or world.bank).address
    world.transact(
        world.citizen, "grant", (asset_id, who, 1, mask, not_before, expiry, max_uses, 0), nonce
    )
    return "0x" + bytes(world.ledger.functions.grantIdOf(world.citizen.address, nonce).call()).hex()


def access_body(
    world: World,
    grantee: Actor,
    grant_id: str,
    mask: int,
    *,
    nonce: int | None = None,
    deadline: int | None = None,
) -> dict[str, Any]:
    """The grantee's signed ``AccessRequest`` (deadline: an hour after the chain's head)."""
    nonce = nonce if nonce is not None else secrets.randbits(32)
    deadline = deadline if deadline is not None else world.now() + 3600
    request = AccessRequest(bytes.fromhex(grant_id[2:]), mask, nonce, deadline)
    digest = eip712.access_digest(world.domain, request)
    return {
        "grant_id": grant_id,
        "fields_mask": mask,
        "nonce": str(nonce),
        "deadline": deadline,
        "signature": "0x" + sign_digest(grantee.key_bytes, digest).hex(),
    }


def record_directly(world: World, body: dict[str, Any]) -> None:
    """Record an access with the custodian's key outside the service (uses the nonce)."""
    world.transact(
        world.custodian,  # type: ignore[attr-defined]
        "recordAccess",
        (
            bytes.fromhex(str(body["grant_id"])[2:]),
            body["fields_mask"],
            int(body["nonce"]),
            body["deadline"],
        ),
        bytes.fromhex(str(body["signature"])[2:]),
    )


def custodian_state(world: World) -> tuple[int, int]:
    """(custodian's transaction count, head block): both unchanged means nothing was sent."""
    custodian = world.custodian.address  # type: ignore[attr-defined]
    return world.w3.eth.get_transaction_count(custodian), world.w3.eth.block_number


def pull(server: LiveServer, actor: Actor, body: dict[str, Any]) -> Any:
    with DataSafeClient(server.url, actor.key) as c:
        return c.request("POST", "/v1/access", json_body=body)


def verify(server: LiveServer, actor: Actor, grant_id: str, mask: int) -> dict[str, Any]:
    with DataSafeClient(server.url, actor.key) as c:
        verdict: dict[str, Any] = c.get(
            f"/v1/grants/{grant_id}/verify", params={"fields_mask": mask}
        )
        return verdict


def rows(db_url: str, table: sa.Table) -> list[dict[str, Any]]:
    engine = api_db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    finally:
        engine.dispose()


def grant_request(
    world: World, asset: SeededAsset, grantee: Actor, mask: int = 0b11, **kw: Any
) -> dict[str, Any]:
    """A citizen-signed grant to ``grantee`` with a key package wrapped to its key."""
    signed = world.sign_grant(
        world.citizen, asset_id=asset.asset_id, grantee=grantee.address, fields_mask=mask, **kw
    )
    gid = signed.pop("grant_id")
    package = key_package(world, asset, gid, mask, grantee).to_bytes()
    return signed | {"key_package": base64.b64encode(package).decode()}


def issued_asset(server: LiveServer, world: World, tag: bytes = b"1") -> SeededAsset:
    """An asset issued through the service (its ciphertext stored), owned by the citizen."""
    schema_id = register_schema(server, world)
    publish_key(server, world, world.citizen)
    sealed = issue(server, world, schema_id, tag=tag)
    return SeededAsset(sealed.asset_id, schema_id, sealed, world.citizen)


def custodian_journal(db_url: str) -> list[dict[str, Any]]:
    return [r for r in rows(db_url, api_db.tx_journal) if r["kind"] == "custodian"]
