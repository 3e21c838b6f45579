"""Roles and status come from the chain at the latest block; the directory serves checked keys."""

from __future__ import annotations

import base64

import pytest
from _api_server import LiveServer, assert_problem
from _api_world import INDIVIDUAL, SUBJECT, Actor, World
from eth_hash.auto import keccak

from api.client import DataSafeClient, key_binding_body, verified_member_key
from ledger import eip712
from ledger.client import LedgerClient
from ledger.keybinding import KeyBindingError
from vault.keyproof import make_key_proof
from vault.keys import EncryptionKeyPair


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


def test_key_is_published_only_when_the_member_bound_it(server: LiveServer, world: World) -> None:
    kp = EncryptionKeyPair.generate()
    b64 = base64.b64encode(kp.public_key.to_bytes()).decode()
    body = {
        "public_key": b64,
        "key_proof": base64.b64encode(world.key_proof(world.bank, kp)).decode(),
    }
    with as_(server, world.bank) as c:
        # a proven key that the chain does not hold is not published
        assert_problem(
            c.request("PUT", "/v1/members/me/key", json_body=body), 409, "key_not_current"
        )
        world.bind_key(world.bank, kp)  # the bank's own transaction (version 2)
        published = c.put("/v1/members/me/key", body)
        assert published["encryption_key"] == b64
        assert published["key_proof"] == body["key_proof"]
        assert published["key_version"] == 2
        assert published["enc_key_hash"] == "0x" + kp.digest().hex()
    with as_(server, world.citizen) as c:
        seen = c.get(f"/v1/members/{world.bank.address}")
        with LedgerClient(world.rpc_url, world.ledger_address) as lc:
            assert verified_member_key(lc, seen).digest() == kp.digest()
        assert [m["address"] for m in c.get("/v1/members")] == [world.bank.address]
    # after a rotation the stale key is no longer served
    world.bind_key(world.bank, EncryptionKeyPair.generate())
    with as_(server, world.citizen) as c:
        assert c.get(f"/v1/members/{world.bank.address}")["encryption_key"] is None


def test_key_that_is_not_a_vault_key_is_refused(server: LiveServer, world: World) -> None:
    good = world.key_body(world.bank)
    raw_good = base64.b64decode(good["public_key"])
    junk = {
        "raw 32 bytes": b"\x07" * 32,
        "truncated": raw_good[:-1],
        "unknown suite": raw_good[:5] + b"\x09" + raw_good[6:],
        "private key": world.enc_key(world.bank).private_bytes(),
    }
    with as_(server, world.bank) as c:
        for what, key in junk.items():
            body = {"public_key": base64.b64encode(key).decode(), "key_proof": good["key_proof"]}
            problem = assert_problem(
                c.request("PUT", "/v1/members/me/key", json_body=body), 400, "invalid_vault_data"
            )
            assert problem["detail"], what
        assert c.get("/v1/members/me")["encryption_key"] is None
        # the key the bank bound, with its proof, is accepted
        published = c.put("/v1/members/me/key", good)
        assert published["enc_key_hash"] == "0x" + world.enc_key(world.bank).digest().hex()


def test_key_proof_for_another_account_or_key_is_refused(server: LiveServer, world: World) -> None:
    good = world.key_body(world.bank)
    others = {
        "citizen's proof": world.key_proof(world.citizen),
        "proof of another key": world.key_proof(world.bank, EncryptionKeyPair.generate()),
        "garbage": b"DSKP\x01" + b"\0" * 96,
        "empty": b"",
    }
    with as_(server, world.bank) as c:
        for what, proof in others.items():
            body = good | {"key_proof": base64.b64encode(proof).decode()}
            problem = assert_problem(
                c.request("PUT", "/v1/members/me/key", json_body=body), 400, "invalid_vault_data"
            )
            assert "proof" in str(problem["detail"]), what
        assert c.get("/v1/members/me")["encryption_key"] is None


def test_key_binding_relayed_citizen_pays_no_gas(server: LiveServer, world: World) -> None:
    kp = EncryptionKeyPair.generate()
    deadline = world.now() + 600

    def body_for(signer: Actor, version: int) -> dict[str, object]:
        if signer is world.citizen:
            return key_binding_body(
                signer.key,
                kp,
                chain_id=world.chain_id,
                ledger=world.ledger_address,
                key_version=version,
                deadline=deadline,
            )
        # someone else signs a binding of the citizen's key and proof
        proof = world.key_proof(world.citizen, kp)
        signed = eip712.sign_key_binding(
            signer.key, world.domain, kp.digest(), proof, version, deadline
        )
        return {
            "public_key": base64.b64encode(kp.public_key.to_bytes()).decode(),
            "key_proof": base64.b64encode(proof).decode(),
            "binding": {
                "key_version": version,
                "deadline": deadline,
                "signature": "0x" + signed.signature.hex(),
            },
        }

    balance = world.w3.eth.get_balance(world.citizen.address)
    with as_(server, world.citizen) as c:
        # a binding signed by someone else (here: another member) is refused by the chain
        problem = assert_problem(
            c.request("PUT", "/v1/members/me/key", json_body=body_for(world.citizen2, 2)),
            409,
            "contract_rejected",
        )
        assert problem["contract_error"] == "MembershipKeySignerMismatch"
        # a replayed or skipped version is refused
        assert_problem(
            c.request("PUT", "/v1/members/me/key", json_body=body_for(world.citizen, 5)),
            409,
            "contract_rejected",
        )
        assert world.ledger.functions.getMember(world.citizen.address).call()[3] == 1
        published = c.put("/v1/members/me/key", body_for(world.citizen, 2))
        assert published["key_version"] == 2
        assert published["enc_key_hash"] == "0x" + kp.digest().hex()
    assert world.w3.eth.get_balance(world.citizen.address) == balance, "the custodian paid"
    member = world.ledger.functions.getMember(world.citizen.address).call()
    assert member[6] == kp.digest()
    assert member[7] == keccak(world.key_proof(world.citizen, kp))


def test_client_refuses_a_key_the_member_did_not_bind(server: LiveServer, world: World) -> None:
    """A lying service (holding the operator's keys) serves its own key for the citizen."""
    operator_key = EncryptionKeyPair.generate()
    with as_(server, world.citizen) as c:
        c.put("/v1/members/me/key", world.key_body(world.citizen))
    with as_(server, world.bank) as c:
        honest = c.get(f"/v1/members/{world.citizen.address}")
    forged_proof = make_key_proof(
        operator_key,
        chain_id=world.chain_id,
        ledger=world.ledger_address,
        account=world.citizen.address,
    )
    lies = {
        "key_mismatch": honest
        | {
            "encryption_key": base64.b64encode(operator_key.public_key.to_bytes()).decode(),
            "key_proof": base64.b64encode(forged_proof).decode(),
        },
        "proof_mismatch": honest | {"key_proof": base64.b64encode(forged_proof).decode()},
    }
    with LedgerClient(world.rpc_url, world.ledger_address) as lc:
        assert verified_member_key(lc, honest).digest() == world.enc_key(world.citizen).digest()
        for reason, served in lies.items():
            with pytest.raises(KeyBindingError) as err:
                verified_member_key(lc, served)
            assert err.value.reason == reason
        # a member admitted without binding a key has no usable key, whatever is served
        world.admit(world.outsider, SUBJECT, INDIVIDUAL, bind_key=False)
        with pytest.raises(KeyBindingError) as err:
            verified_member_key(lc, honest | {"address": world.outsider.address})
        assert err.value.reason == "no_key"
