"""Every asset/schema route tried as every wrong actor (grants and access have their own)."""

from __future__ import annotations

import pytest
from _api_seed import seed_asset
from _api_server import LiveServer, assert_problem
from _api_world import World

from api.client import DataSafeClient

RAW = {"raw_transaction": "0x02"}


@pytest.fixture
def seeded(server: LiveServer, world: World, db_url: str) -> str:
    return seed_asset(world, db_url).hex


def call(server: LiveServer, actor: object, method: str, path: str, body: object = None) -> object:
    with DataSafeClient(server.url, actor.key) as c:  # type: ignore[attr-defined]
        return c.request(method, path, json_body=body)


def test_asset_reads_by_wrong_actors(server: LiveServer, world: World, seeded: str) -> None:
    for actor in (world.citizen2, world.bank, world.bank2, world.issuer2):
        assert_problem(call(server, actor, "GET", f"/v1/assets/{seeded}"), 403, "forbidden")  # type: ignore[arg-type]
    for actor in (world.citizen2, world.bank, world.issuer2, world.issuer, world.regulator):
        code = "forbidden" if actor in (world.citizen2, world.bank, world.issuer2) else "not_owner"
        assert_problem(call(server, actor, "GET", f"/v1/assets/{seeded}/sealed"), 403, code)  # type: ignore[arg-type]
    assert_problem(call(server, world.outsider, "GET", f"/v1/assets/{seeded}"), 403, "not_member")  # type: ignore[arg-type]


def test_asset_reads_by_right_actors(server: LiveServer, world: World, seeded: str) -> None:
    for actor in (world.citizen, world.issuer, world.regulator):
        with DataSafeClient(server.url, actor.key) as c:
            one = c.get(f"/v1/assets/{seeded}")
            assert one["status"] == "active" and one["owner"] == world.citizen.address
            assert [a["asset_id"] for a in c.get("/v1/assets")] == [seeded]
    for actor in (world.citizen2, world.issuer2):
        with DataSafeClient(server.url, actor.key) as c:
            assert c.get("/v1/assets") == []
    assert_problem(call(server, world.bank, "GET", "/v1/assets"), 403, "role_required")  # type: ignore[arg-type]


def test_asset_writes_by_wrong_actors(server: LiveServer, world: World, seeded: str) -> None:
    # dispute: only the owner (or its agent)
    for actor in (world.citizen2, world.bank, world.issuer, world.regulator):
        assert_problem(
            call(server, actor, "POST", f"/v1/assets/{seeded}/dispute", RAW), 403, "not_owner"
        )  # type: ignore[arg-type]
    # resolution and new versions: only the issuer of this asset
    assert_problem(
        call(server, world.issuer2, "POST", f"/v1/assets/{seeded}/resolution", RAW),
        403,
        "not_issuer",
    )  # type: ignore[arg-type]
    body = {"sealed": "AA==", "raw_transaction": "0x02"}
    assert_problem(
        call(server, world.issuer2, "POST", f"/v1/assets/{seeded}/versions", body),
        403,
        "not_issuer",
    )  # type: ignore[arg-type]
    for actor in (world.citizen, world.bank, world.regulator):
        assert_problem(
            call(server, actor, "POST", f"/v1/assets/{seeded}/resolution", RAW),
            403,
            "role_required",
        )  # type: ignore[arg-type]
        assert_problem(call(server, actor, "POST", "/v1/assets", body), 403, "role_required")  # type: ignore[arg-type]


def test_dispute_and_resolution_relay(server: LiveServer, world: World, seeded: str) -> None:
    aid = bytes.fromhex(seeded[2:])
    with DataSafeClient(server.url, world.citizen.key) as c:
        # a transaction signed by someone else is refused before anything happens
        foreign = world.raw_tx(world.citizen2, "disputeAsset", aid, b"\x01" * 32)
        body = assert_problem(
            c.request(
                "POST", f"/v1/assets/{seeded}/dispute", json_body={"raw_transaction": foreign}
            ),
            422,
            "invalid_request",
        )
        assert "not by the request signer" in str(body["detail"])
        # a transaction calling something else is refused
        other = world.raw_tx(world.citizen, "bindEncryptionKey", b"\x01" * 32, b"\x01")
        body = assert_problem(
            c.request("POST", f"/v1/assets/{seeded}/dispute", json_body={"raw_transaction": other}),
            422,
            "invalid_request",
        )
        assert "does not call disputeAsset" in str(body["detail"])
        disputed = c.post(
            f"/v1/assets/{seeded}/dispute",
            {"raw_transaction": world.raw_tx(world.citizen, "disputeAsset", aid, b"\x01" * 32)},
        )
        assert disputed["status"] == "disputed"
        # disputing twice: the contract refuses at pre-flight, nothing is sent
        again = world.raw_tx(world.citizen, "disputeAsset", aid, b"\x02" * 32)
        assert_problem(
            c.request("POST", f"/v1/assets/{seeded}/dispute", json_body={"raw_transaction": again}),
            409,
            "contract_rejected",
        )
    with DataSafeClient(server.url, world.issuer.key) as c:
        resolved = c.post(
            f"/v1/assets/{seeded}/resolution",
            {"raw_transaction": world.raw_tx(world.issuer, "resolveDispute", aid, b"\x03" * 32)},
        )
        assert resolved["status"] == "active"


def test_schema_registration(server: LiveServer, world: World) -> None:
    from eth_abi import encode
    from eth_hash.auto import keccak

    fields = ["name", "dob", "salary"]
    sid = keccak(b"payslip v1")
    body = {"schema_id": "0x" + sid.hex(), "name": "payslip", "fields": fields}
    with DataSafeClient(server.url, world.issuer.key) as c:
        # wrong field count in the signed transaction
        bad = world.raw_tx(
            world.issuer, "registerSchema", sid, 2, keccak(encode(["string[]"], [fields]))
        )
        problem = assert_problem(
            c.request("POST", "/v1/schemas", json_body=body | {"raw_transaction": bad}),
            422,
            "invalid_request",
        )
        assert "arguments do not match" in str(problem["detail"])
        good = world.raw_tx(
            world.issuer, "registerSchema", sid, 3, keccak(encode(["string[]"], [fields]))
        )
        created = c.post("/v1/schemas", body | {"raw_transaction": good})
        assert created["fields"] == fields and created["issuer"] == world.issuer.address.lower()
        assert created["tx_hash"] is not None
    with DataSafeClient(server.url, world.issuer2.key) as c:
        # another issuer cannot claim the schema's field list
        assert_problem(c.request("POST", "/v1/schemas", json_body=body), 403, "not_issuer")
    with DataSafeClient(server.url, world.bank.key) as c:
        assert c.get(f"/v1/schemas/{created['schema_id']}")["fields"] == fields
        assert_problem(c.request("GET", "/v1/schemas/0x" + "00" * 32), 404, "not_found")
