"""``verify``: the chain's check at the latest block, reason in words, for the grantee only."""

from __future__ import annotations

from _api_server import LiveServer, assert_problem
from _api_world import World
from eth_abi import encode
from eth_hash.auto import keccak

from api.client import DataSafeClient

FIELDS = ["name", "id_number", "address", "income", "employer"]


def direct_grant(
    world: World, *, fields_mask: int = 0b00011, max_uses: int = 0, expiry_in: int = 86_400
) -> str:
    """Schema + anchor + grant straight on chain (no vault needed for verify)."""
    schema_id = keccak(b"schema:" + world.snapshot().encode())
    world.transact(
        world.issuer,
        "registerSchema",
        schema_id,
        len(FIELDS),
        keccak(encode(["string[]"], [FIELDS])),
    )
    asset_id = keccak(b"asset" + schema_id)
    world.transact(
        world.issuer,
        "anchorAsset",
        asset_id,
        world.citizen.address,
        schema_id,
        b"\x0a" * 32,
        b"\x0b" * 32,
    )
    nonce = int.from_bytes(asset_id[:8], "big")
    terms = (asset_id, world.bank.address, 1, fields_mask, 0, world.now() + expiry_in, max_uses, 0)
    world.transact(world.citizen, "grant", terms, nonce)
    return "0x" + world.ledger.functions.grantIdOf(world.citizen.address, nonce).call().hex()


def test_verify_answers_for_the_grantee(server: LiveServer, world: World) -> None:
    gid = direct_grant(world)
    with DataSafeClient(server.url, world.bank.key) as bank:
        ok = bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 0b00011})
        assert ok["allowed"] is True and ok["code"] == "ok" and ok["reason_code"] == 0
        wider = bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 0b00111})
        assert wider["allowed"] is False and wider["code"] == "fields_not_granted"
        world.transact(world.citizen, "pause", bytes.fromhex(gid[2:]))
        paused = bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 1})
        assert (
            paused["code"] == "grant_paused" and paused["reason"] == "the subject paused the grant"
        )
        world.transact(world.citizen, "revoke", bytes.fromhex(gid[2:]))
        revoked = bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 1})
        assert revoked["allowed"] is False and revoked["code"] == "grant_revoked"
        assert revoked["block"] > ok["block"]


def test_verify_expired_and_exhausted(server: LiveServer, world: World) -> None:
    gid = direct_grant(world, expiry_in=100)
    with DataSafeClient(server.url, world.bank.key) as bank:
        assert bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 1})["allowed"] is True
        world.advance(200)
        assert (
            bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 1})["code"]
            == "grant_expired"
        )


def test_verify_wrong_actors(server: LiveServer, world: World) -> None:
    gid = direct_grant(world)
    with DataSafeClient(server.url, world.bank2.key) as other_bank:
        assert_problem(
            other_bank.request("GET", f"/v1/grants/{gid}/verify", params={"fields_mask": 1}),
            403,
            "not_grantee",
        )
        missing = "0x" + "ee" * 32
        assert_problem(
            other_bank.request("GET", f"/v1/grants/{missing}/verify", params={"fields_mask": 1}),
            404,
            "grant_not_found",
        )
    for actor in (world.citizen, world.issuer, world.regulator):
        with DataSafeClient(server.url, actor.key) as c:
            assert_problem(
                c.request("GET", f"/v1/grants/{gid}/verify", params={"fields_mask": 1}),
                403,
                "role_required",
            )
    with DataSafeClient(server.url, world.outsider.key) as c:
        assert_problem(
            c.request("GET", f"/v1/grants/{gid}/verify", params={"fields_mask": 1}),
            403,
            "not_member",
        )


def test_verify_suspended_bank(server: LiveServer, world: World) -> None:
    gid = direct_grant(world)
    world.suspend(world.bank)
    with DataSafeClient(server.url, world.bank.key) as bank:
        assert_problem(
            bank.request("GET", f"/v1/grants/{gid}/verify", params={"fields_mask": 1}),
            403,
            "member_suspended",
        )


def test_verify_bad_input(server: LiveServer, world: World) -> None:
    with DataSafeClient(server.url, world.bank.key) as bank:
        assert_problem(
            bank.request("GET", "/v1/grants/0x12/verify", params={"fields_mask": 1}),
            422,
            "invalid_request",
        )
        gid = "0x" + "11" * 32
        assert_problem(
            bank.request("GET", f"/v1/grants/{gid}/verify", params={"fields_mask": 0}),
            422,
            "invalid_request",
        )
        assert_problem(bank.request("GET", f"/v1/grants/{gid}/verify"), 422, "invalid_request")
