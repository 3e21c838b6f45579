"""Pulls that must be refused, with the chain's reason, before any record or data."""

from __future__ import annotations

import secrets

from _api_seed import seed_asset
from _api_server import LiveServer, assert_problem
from _api_world import World

from api.client import DataSafeClient


def chain_grant(
    world: World, asset_id: bytes, *, max_uses: int = 0, expiry_in: int = 86_400
) -> str:
    nonce = secrets.randbits(64)
    terms = (asset_id, world.bank.address, 1, 0b11, 0, world.now() + expiry_in, max_uses, 0)
    world.transact(world.citizen, "grant", terms, nonce)
    return "0x" + bytes(world.ledger.functions.grantIdOf(world.citizen.address, nonce).call()).hex()


def uses(world: World, gid: str) -> int:
    return world.uses(bytes.fromhex(gid[2:]))


def pull(server: LiveServer, actor: object, body: dict[str, object]) -> object:
    with DataSafeClient(server.url, actor.key) as c:  # type: ignore[attr-defined]
        return c.request("POST", "/v1/access", json_body=body)


def test_refusals_carry_the_chain_reason(server: LiveServer, world: World, db_url: str) -> None:
    asset = seed_asset(world, db_url)
    gid = chain_grant(world, asset.asset_id)
    # fields beyond the grant
    body = world.sign_access(world.bank, gid, 0b111)
    problem = assert_problem(pull(server, world.bank, body), 403, "fields_not_granted")
    assert problem["reason_code"] == 12
    # a strict subset of the grant: the key package would open more than the record names
    subset = assert_problem(
        pull(server, world.bank, world.sign_access(world.bank, gid, 0b01)),
        400,
        "fields_mask_mismatch",
    )
    assert subset["grant_fields_mask"] == 0b11
    # another bank, with its own signature
    assert_problem(
        pull(server, world.bank2, world.sign_access(world.bank2, gid, 1)), 403, "not_grantee"
    )
    # another bank relaying the grantee's signed request as its own
    assert_problem(
        pull(server, world.bank2, world.sign_access(world.bank, gid, 1)),
        403,
        "request_signature_invalid",
    )
    # unknown grant
    missing = "0x" + "ab" * 32
    assert_problem(
        pull(server, world.bank, world.sign_access(world.bank, missing, 1)), 404, "grant_not_found"
    )
    # wrong roles
    for actor in (world.citizen, world.issuer, world.regulator):
        assert_problem(pull(server, actor, world.sign_access(actor, gid, 1)), 403, "role_required")
    # paused, then revoked
    world.transact(world.citizen, "pause", bytes.fromhex(gid[2:]))
    assert_problem(
        pull(server, world.bank, world.sign_access(world.bank, gid, 1)), 403, "grant_paused"
    )
    world.transact(world.citizen, "revoke", bytes.fromhex(gid[2:]))
    assert_problem(
        pull(server, world.bank, world.sign_access(world.bank, gid, 1)), 403, "grant_revoked"
    )
    assert uses(world, gid) == 0


def test_expired_and_exhausted_refused_from_chain_state(
    server: LiveServer, world: World, db_url: str
) -> None:
    """The index is not consulted (the service runs without an indexer here): the chain decides."""
    asset = seed_asset(world, db_url)
    short = chain_grant(world, asset.asset_id, expiry_in=60)
    once = chain_grant(world, asset.asset_id, max_uses=1)
    # use up the single use directly on chain (another custodian path), unseen by any index
    req = world.sign_access(world.bank, once, 1)
    world.transact(
        world.custodian,  # type: ignore[attr-defined]
        "recordAccess",
        (bytes.fromhex(once[2:]), 1, int(req["nonce"]), req["deadline"]),
        bytes.fromhex(str(req["signature"])[2:]),
    )
    assert_problem(
        pull(server, world.bank, world.sign_access(world.bank, once, 1)), 403, "uses_exhausted"
    )
    world.advance(120)
    assert_problem(
        pull(server, world.bank, world.sign_access(world.bank, short, 1)), 403, "grant_expired"
    )
    assert uses(world, short) == 0


def test_suspended_bank_and_bad_envelope(server: LiveServer, world: World, db_url: str) -> None:
    asset = seed_asset(world, db_url)
    gid = chain_grant(world, asset.asset_id)
    world.suspend(world.bank)
    assert_problem(
        pull(server, world.bank, world.sign_access(world.bank, gid, 1)), 403, "member_suspended"
    )
    world.reinstate(world.bank)
    with DataSafeClient(server.url, world.bank.key) as c:
        body = world.sign_access(world.bank, gid, 1)
        resp = c.request("POST", "/v1/access", json_body=body, sign_overrides={"chain_id": 1})
        assert_problem(resp, 401, "bad_signature")
        assert_problem(
            c.request("POST", "/v1/access", json_body={"grant_id": gid}), 422, "invalid_request"
        )
    assert uses(world, gid) == 0
