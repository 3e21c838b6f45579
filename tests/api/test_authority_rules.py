"""Issue 12's authority rules over HTTP: the service agrees with the contract.

- a suspended subject can still revoke and pause (never grant or resume) and see her grants;
- an agent stops acting when its enterprise is suspended;
- only the department that registered a schema, or one it authorised on chain, anchors under it.
"""

from __future__ import annotations

import base64

from _api_seed import FIELDS, SeededAsset, key_package, seal_for, seed_asset
from _api_server import LiveServer, assert_problem
from _api_world import ENTERPRISE, INDIVIDUAL, SUBJECT, Actor, World
from eth_abi import encode
from eth_hash.auto import keccak

from api import db as api_db
from api._vault import VaultAdapter
from api.client import DataSafeClient


def _signed_grant(world: World, grantor: Actor, asset: SeededAsset, mask: int) -> dict[str, object]:
    signed = world.sign_grant(
        grantor, asset_id=asset.asset_id, grantee=world.bank.address, fields_mask=mask
    )
    gid = str(signed.pop("grant_id"))
    package = key_package(world, asset, gid, mask).to_bytes()
    return signed | {"key_package": base64.b64encode(package).decode(), "_grant_id": gid}


def _post_grant(c: DataSafeClient, body: dict[str, object]) -> object:
    payload = {k: v for k, v in body.items() if not k.startswith("_")}
    return c.request("POST", "/v1/grants", json_body=payload)


def _package(db_url: str, grant_id: str) -> bytes | None:
    engine = api_db.make_engine(db_url)
    try:
        return VaultAdapter(engine, None).get_key_package(grant_id)  # type: ignore[arg-type]
    finally:
        engine.dispose()


def _action(c: DataSafeClient, world: World, signer: Actor, action: str, gid: str) -> object:
    msg = world.sign_action(signer, action, gid)
    return c.request("POST", f"/v1/grants/{gid}/{action}", json_body=msg)


def _status(world: World, gid: str) -> int:
    return int(world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[8])


def _new_actor(world: World, name: str, roles: int, kind: int) -> Actor:
    actor = Actor(name, "0x" + keccak(name.encode()).hex())
    world.w3.provider.make_request("anvil_setBalance", [actor.address, hex(10**20)])
    world.admit(actor, roles, kind)
    return actor


def test_suspended_subject_withdraws_but_never_gives(
    server: LiveServer, world: World, db_url: str
) -> None:
    asset = seed_asset(world, db_url)
    to_pause = _signed_grant(world, world.citizen, asset, 0b011)
    to_revoke = _signed_grant(world, world.citizen, asset, 0b001)
    with DataSafeClient(server.url, world.citizen.key) as c:
        for body in (to_pause, to_revoke):
            resp = _post_grant(c, body)
            assert resp.status_code == 201, resp.text  # type: ignore[attr-defined]
    paused, revoked = str(to_pause["_grant_id"]), str(to_revoke["_grant_id"])
    world.suspend(world.citizen)

    with DataSafeClient(server.url, world.citizen.key) as c:
        # never gives: a new grant and a resumption are refused before any transaction
        block = world.w3.eth.block_number
        later = _signed_grant(world, world.citizen, asset, 0b100)
        assert_problem(_post_grant(c, later), 403, "member_suspended")
        # sees what she may withdraw
        assert {g["grant_id"] for g in c.get("/v1/grants")} == {paused, revoked}
        assert c.get(f"/v1/grants/{paused}")["status"] == "active"
        # withdraws: pause and revoke are relayed
        resp = _action(c, world, world.citizen, "pause", paused)
        assert resp.status_code == 200, resp.text  # type: ignore[attr-defined]
        assert resp.json()["status"] == "paused"  # type: ignore[attr-defined]
        assert_problem(_action(c, world, world.citizen, "resume", paused), 403, "member_suspended")
        resp = _action(c, world, world.citizen, "revoke", revoked)
        assert resp.status_code == 200, resp.text  # type: ignore[attr-defined]
    assert _status(world, paused) == 2 and _status(world, revoked) == 3  # PAUSED, REVOKED
    assert _package(db_url, revoked) is None
    assert _package(db_url, str(later["_grant_id"])) is None
    # two relayed withdrawals, nothing else mined for the refused requests
    assert world.w3.eth.block_number == block + 2

    with DataSafeClient(server.url, world.bank.key) as c:
        verdict = c.get(f"/v1/grants/{paused}/verify", params={"fields_mask": 1})
        assert verdict["allowed"] is False and verdict["code"] == "grant_paused"

    # a suspended institution gets nothing, not even the listing a suspended subject gets
    world.suspend(world.bank)
    with DataSafeClient(server.url, world.bank.key) as c:
        assert_problem(c.request("GET", "/v1/grants"), 403, "member_suspended")
        assert_problem(c.request("GET", f"/v1/grants/{paused}"), 403, "member_suspended")


def test_agent_stops_with_its_enterprise(server: LiveServer, world: World, db_url: str) -> None:
    acme = _new_actor(world, "acme ltd", SUBJECT, ENTERPRISE)
    agent = _new_actor(world, "acme's clerk", SUBJECT, INDIVIDUAL)
    world.transact(acme, "addAgent", agent.address, world.now() + 86_400)
    asset = seed_asset(world, db_url, owner=acme)

    first = _signed_grant(world, agent, asset, 0b011)
    with DataSafeClient(server.url, agent.key) as c:
        resp = _post_grant(c, first)
        assert resp.status_code == 201, resp.text  # type: ignore[attr-defined]
    gid = str(first["_grant_id"])

    world.suspend(acme)
    with DataSafeClient(server.url, agent.key) as c:
        assert_problem(_post_grant(c, _signed_grant(world, agent, asset, 0b1)), 403, "not_owner")
        assert_problem(_action(c, world, agent, "pause", gid), 403, "not_owner")
        assert_problem(_action(c, world, agent, "revoke", gid), 403, "not_owner")
    assert _status(world, gid) == 1  # still ACTIVE: the agent changed nothing
    # the enterprise itself, suspended, may still take its consent back
    with DataSafeClient(server.url, acme.key) as c:
        resp = _action(c, world, acme, "revoke", gid)
        assert resp.status_code == 200, resp.text  # type: ignore[attr-defined]
    assert _status(world, gid) == 3


def _register_schema(server: LiveServer, world: World) -> bytes:
    sid = keccak(b"owned schema" + world.snapshot().encode())
    raw = world.raw_tx(
        world.issuer, "registerSchema", sid, len(FIELDS), keccak(encode(["string[]"], [FIELDS]))
    )
    with DataSafeClient(server.url, world.issuer.key) as c:
        c.post(
            "/v1/schemas",
            {
                "schema_id": "0x" + sid.hex(),
                "name": "owned",
                "fields": FIELDS,
                "raw_transaction": raw,
            },
        )
    return sid


def _issue_as(server: LiveServer, world: World, issuer: Actor, sid: bytes, tag: bytes) -> object:
    sealed = seal_for(world, world.citizen, keccak(b"asset under owned schema" + tag))
    raw = world.raw_tx(
        issuer,
        "anchorAsset",
        sealed.asset_id,
        world.citizen.address,
        sid,
        sealed.root,
        sealed.ciphertext_digest,
    )
    body = {"sealed": base64.b64encode(sealed.to_bytes()).decode(), "raw_transaction": raw}
    with DataSafeClient(server.url, issuer.key) as c:
        return c.request("POST", "/v1/assets", json_body=body)


def test_schemas_are_owned(server: LiveServer, world: World) -> None:
    sid = _register_schema(server, world)
    block = world.w3.eth.block_number
    resp = _issue_as(server, world, world.issuer2, sid, b"1")
    body = assert_problem(resp, 403, "not_issuer")  # type: ignore[arg-type]
    assert "authorised" in str(body["detail"])
    assert world.w3.eth.block_number == block  # refused before anything was mined

    world.transact(world.issuer, "setSchemaIssuer", sid, world.issuer2.address, True)
    resp = _issue_as(server, world, world.issuer2, sid, b"2")
    assert resp.status_code == 201, resp.text  # type: ignore[attr-defined]
    assert resp.json()["issuer"] == world.issuer2.address  # type: ignore[attr-defined]

    world.transact(world.issuer, "setSchemaIssuer", sid, world.issuer2.address, False)
    assert_problem(_issue_as(server, world, world.issuer2, sid, b"3"), 403, "not_issuer")  # type: ignore[arg-type]
    # the registrant itself always may
    resp = _issue_as(server, world, world.issuer, sid, b"4")
    assert resp.status_code == 201, resp.text  # type: ignore[attr-defined]
