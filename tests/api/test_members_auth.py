"""Roles and status come from the chain at the latest block; the directory serves checked keys."""

from __future__ import annotations

import base64
import hashlib

from _api_server import LiveServer, assert_problem
from _api_world import Actor, World
from eth_hash.auto import keccak

from api.client import DataSafeClient
from vault.keys import EncryptionKeyPair, PublicEncryptionKey


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
    public_key = EncryptionKeyPair.generate().public_key.to_bytes()
    b64 = base64.b64encode(public_key).decode()
    with as_(server, world.bank) as c:
        assert_problem(
            c.request("PUT", "/v1/members/me/key", json_body={"public_key": b64}),
            409,
            "key_not_current",
        )
        digest = hashlib.sha256(public_key).digest()  # the vault's digest, by definition
        world.transact(world.bank, "rotateEncryptionKey", digest)
        published = c.put("/v1/members/me/key", {"public_key": b64})
        assert published["encryption_key"] == b64
        assert published["key_version"] == 2
        assert published["enc_key_hash"] == "0x" + digest.hex()
    with as_(server, world.citizen) as c:
        seen = c.get(f"/v1/members/{world.bank.address}")
        assert seen["encryption_key"] == b64
        served = PublicEncryptionKey.from_bytes(base64.b64decode(seen["encryption_key"]))
        assert served.digest() == bytes.fromhex(seen["enc_key_hash"][2:])
        assert [m["address"] for m in c.get("/v1/members")] == [world.bank.address]
    # after a rotation the stale key is no longer served
    world.transact(world.bank, "rotateEncryptionKey", keccak(b"another key"))
    with as_(server, world.citizen) as c:
        assert c.get(f"/v1/members/{world.bank.address}")["encryption_key"] is None


def test_key_that_is_not_a_vault_key_is_refused(server: LiveServer, world: World) -> None:
    good = world.enc_key(world.bank).public_key.to_bytes()
    junk = {
        "raw 32 bytes": b"\x07" * 32,
        "truncated": good[:-1],
        "unknown suite": good[:5] + b"\x09" + good[6:],
        "private key": world.enc_key(world.bank).private_bytes(),
    }
    with as_(server, world.bank) as c:
        for what, key in junk.items():
            body = {"public_key": base64.b64encode(key).decode()}
            problem = assert_problem(
                c.request("PUT", "/v1/members/me/key", json_body=body), 400, "invalid_vault_data"
            )
            assert problem["detail"], what
        assert c.get("/v1/members/me")["encryption_key"] is None
        # the key the chain holds is accepted
        published = c.put("/v1/members/me/key", {"public_key": base64.b64encode(good).decode()})
        assert published["enc_key_hash"] == "0x" + world.enc_key(world.bank).digest().hex()


def test_key_rotation_relayed(server: LiveServer, world: World) -> None:
    new_key = EncryptionKeyPair.generate().public_key
    b64 = base64.b64encode(new_key.to_bytes()).decode()
    digest = new_key.digest()
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
