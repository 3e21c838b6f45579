"""Roles and status come from the chain at the latest block; the directory serves checked keys."""

from __future__ import annotations

import base64

from _api_server import LiveServer, assert_problem
from _api_world import Actor, World
from eth_hash.auto import keccak

from api.client import DataSafeClient


def as_(server: LiveServer, actor: Actor) -> DataSafeClient:
    return DataSafeClient(server.url, actor.key)


def test_member_reads_itself_with_roles_from_chain(server: LiveServer, world: World) -> None:
    with as_(server, world.bank) as c:
        me = c.get("/v1/members/me")
    assert me["address"] == world.bank.address
    assert me["roles"] == ["consumer"]
    assert me["kind"] == "bank"
    assert me["status"] == "active"
    assert me["encryption_key"] is None


def test_non_member_is_refused(server: LiveServer, world: World) -> None:
    with as_(server, world.outsider) as c:
        assert_problem(c.request("GET", "/v1/members/me"), 403, "not_member")
        # signature-only routes still answer
        assert c.get("/v1/whoami")["address"] == world.outsider.address


def test_suspension_takes_effect_at_the_next_block(server: LiveServer, world: World) -> None:
    with as_(server, world.bank) as c:
        assert c.request("GET", "/v1/members/me").status_code == 200
        world.suspend(world.bank)
        body = assert_problem(c.request("GET", "/v1/members/me"), 403, "member_suspended")
        assert "suspended" in str(body["detail"])
        world.reinstate(world.bank)
        assert c.request("GET", "/v1/members/me").status_code == 200


def test_role_required_for_issuer_routes(server: LiveServer, world: World) -> None:
    body = {"schema_id": "0x" + "11" * 32, "name": "x", "fields": ["a"]}
    for actor in (world.citizen, world.bank, world.regulator):
        with as_(server, actor) as c:
            assert_problem(c.request("POST", "/v1/schemas", json_body=body), 403, "role_required")


def test_key_is_published_only_when_its_hash_is_on_chain(server: LiveServer, world: World) -> None:
    public_key = b"\x07" * 32
    b64 = base64.b64encode(public_key).decode()
    with as_(server, world.bank) as c:
        assert_problem(
            c.request("PUT", "/v1/members/me/key", json_body={"public_key": b64}),
            409,
            "key_not_current",
        )
        digest = world_key_digest(server, public_key)
        world.transact(world.bank, "rotateEncryptionKey", digest)
        published = c.put("/v1/members/me/key", {"public_key": b64})
        assert published["encryption_key"] == b64
        assert published["key_version"] == 2
    with as_(server, world.citizen) as c:
        seen = c.get(f"/v1/members/{world.bank.address}")
        assert seen["encryption_key"] == b64
        assert [m["address"] for m in c.get("/v1/members")] == [world.bank.address]
    # after a rotation the stale key is no longer served
    world.transact(world.bank, "rotateEncryptionKey", keccak(b"another key"))
    with as_(server, world.citizen) as c:
        assert c.get(f"/v1/members/{world.bank.address}")["encryption_key"] is None


def world_key_digest(server: LiveServer, public_key: bytes) -> bytes:
    from api._vault import VaultAdapter

    return VaultAdapter.key_digest_of(public_key)


def test_key_rotation_relayed(server: LiveServer, world: World) -> None:
    new_key = b"\x42" * 32
    b64 = base64.b64encode(new_key).decode()
    digest = world_key_digest(server, new_key)
    with as_(server, world.citizen) as c:
        # a rotation for another key than the one published is refused, nothing relayed
        wrong = world.raw_tx(world.citizen, "rotateEncryptionKey", keccak(b"other"))
        body = {"public_key": b64, "raw_transaction": wrong}
        problem = assert_problem(
            c.request("PUT", "/v1/members/me/key", json_body=body), 422, "invalid_request"
        )
        assert "not for this public key" in str(problem["detail"])
        # someone else's signed rotation is refused
        foreign = world.raw_tx(world.citizen2, "rotateEncryptionKey", digest)
        body = {"public_key": b64, "raw_transaction": foreign}
        assert_problem(
            c.request("PUT", "/v1/members/me/key", json_body=body), 422, "invalid_request"
        )
        assert world.ledger.functions.getMember(world.citizen.address).call()[3] == 1
        raw = world.raw_tx(world.citizen, "rotateEncryptionKey", digest)
        published = c.put("/v1/members/me/key", {"public_key": b64, "raw_transaction": raw})
        assert published["key_version"] == 2
        assert published["encryption_key"] == b64
        assert published["enc_key_hash"] == "0x" + digest.hex()
