"""Grant relay: consent receipts, revoke/pause/resume by signature, and every wrong actor."""

from __future__ import annotations

import base64

from _api_seed import SeededAsset, key_package, seed_asset
from _api_server import LiveServer, assert_problem
from _api_world import World

from api import db as api_db
from api._vault import VaultAdapter
from api.client import DataSafeClient


def grant_body(world: World, asset: SeededAsset | str, **kw: object) -> dict[str, object]:
    """A signed grant plus a real key package bound to it (opaque bytes when given a bare id:
    for refusals that must happen before the package is looked at)."""
    asset_hex = asset if isinstance(asset, str) else asset.hex
    mask = int(kw.pop("fields_mask", 0b00011))  # type: ignore[call-overload]
    signed = world.sign_grant(
        world.citizen,
        asset_id=bytes.fromhex(asset_hex[2:]),
        grantee=world.bank.address,
        fields_mask=mask,
        **kw,  # type: ignore[arg-type]
    )
    gid = signed.pop("grant_id")
    if isinstance(asset, str):
        package = b"no package: the asset is unknown"
    else:
        package = key_package(world, asset, gid, mask).to_bytes()
    return signed | {"key_package": base64.b64encode(package).decode(), "_grant_id": gid}


def post_grant(c: DataSafeClient, body: dict[str, object]) -> object:
    payload = {k: v for k, v in body.items() if not k.startswith("_")}
    return c.request("POST", "/v1/grants", json_body=payload)


def package_of(db_url: str, grant_id: str) -> bytes | None:
    engine = api_db.make_engine(db_url)
    try:
        return VaultAdapter(engine, None).get_key_package(grant_id)  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_grant_receipt_and_revoke_deletes_package(
    server: LiveServer, world: World, db_url: str
) -> None:
    asset = seed_asset(world, db_url)
    body = grant_body(world, asset, max_uses=3, purpose=1)
    with DataSafeClient(server.url, world.citizen.key) as citizen:
        resp = post_grant(citizen, body)
        assert resp.status_code == 201, resp.text
        receipt = resp.json()
        assert receipt["grant_id"] == body["_grant_id"]
        assert receipt["tx_hash"].startswith("0x") and receipt["block"] > 0
        assert receipt["signature"] == body["signature"]
        assert "name, id_number" in receipt["terms_text"]
        assert "loan underwriting" in receipt["terms_text"]
        assert "at most 3" in receipt["terms_text"]
        gid = receipt["grant_id"]
        on_chain = world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()
        assert on_chain[1] == world.bank.address and on_chain[3] == 0b00011 and on_chain[8] == 1
        assert package_of(db_url, gid) == base64.b64decode(str(body["key_package"]))

        # the same signed grant cannot be relayed twice
        again = post_grant(citizen, body)
        assert_problem(again, 409, "conflict")

        listed = citizen.get("/v1/grants")
        assert [g["grant_id"] for g in listed] == [gid]
        assert listed[0]["fields"] == ["name", "id_number"]

        paused = citizen.post(
            f"/v1/grants/{gid}/pause", world.sign_action(world.citizen, "pause", gid)
        )
        assert paused["status"] == "paused" and paused["action"] == "pause"
        resumed = citizen.post(
            f"/v1/grants/{gid}/resume", world.sign_action(world.citizen, "resume", gid)
        )
        assert resumed["status"] == "active"
        revoked = citizen.post(
            f"/v1/grants/{gid}/revoke", world.sign_action(world.citizen, "revoke", gid)
        )
        assert revoked["status"] == "revoked"
        assert world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[8] == 3
        assert package_of(db_url, gid) is None
    with DataSafeClient(server.url, world.bank.key) as bank:
        seen = bank.get(f"/v1/grants/{gid}")
        assert seen["status"] == "revoked"
        assert [g["grant_id"] for g in bank.get("/v1/grants")] == [gid]


def test_grantee_submits_a_grant_signed_for_it(
    server: LiveServer, world: World, db_url: str
) -> None:
    """A counter code hands the grantee the grantor's signed grant: the grantee may relay it."""
    asset = seed_asset(world, db_url)
    body = grant_body(world, asset, max_uses=1)
    with DataSafeClient(server.url, world.bank.key) as bank:
        resp = post_grant(bank, body)
        assert resp.status_code == 201, resp.text  # type: ignore[attr-defined]
        gid = str(body["_grant_id"])
        grantor = resp.json()["grantor"]  # type: ignore[attr-defined]
        assert grantor.lower() == world.citizen.address.lower()
    on_chain = world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()
    assert on_chain[1] == world.bank.address and on_chain[8] == 1
    assert package_of(db_url, gid) == base64.b64decode(str(body["key_package"]))


def test_grant_wrong_actors_and_bad_input(server: LiveServer, world: World, db_url: str) -> None:
    asset = seed_asset(world, db_url)
    body = grant_body(world, asset)
    # somebody else relaying the citizen's consent as if it were theirs (only the grantor and
    # the grantee, redeeming a counter code, may submit it: tests/wallet_cli/test_wallet_counter)
    for actor, code in ((world.citizen2, "not_owner"), (world.bank2, "not_owner")):
        with DataSafeClient(server.url, actor.key) as c:
            assert_problem(post_grant(c, body), 403, code)
    # another subject signing a grant over the citizen's asset
    forged = world.sign_grant(
        world.citizen2, asset_id=asset.asset_id, grantee=world.bank.address, fields_mask=1
    )
    forged.pop("grant_id")
    with DataSafeClient(server.url, world.citizen2.key) as c:
        package = body["key_package"]
        assert_problem(post_grant(c, forged | {"key_package": package}), 403, "not_owner")
    with DataSafeClient(server.url, world.citizen.key) as c:
        # tampered terms: the signature no longer matches
        tampered = dict(body)
        tampered["terms"] = dict(body["terms"]) | {"fields_mask": 0b11111}  # type: ignore[arg-type]
        assert_problem(post_grant(c, tampered), 401, "bad_signature")
        # unknown asset
        other = grant_body(world, "0x" + "99" * 32)
        assert_problem(post_grant(c, other), 404, "asset_not_found")
        # mask outside the schema: refused before any relay, nothing stored
        wide = grant_body(world, asset.hex, fields_mask=1 << 40)  # opaque package: never read
        assert_problem(post_grant(c, wide), 422, "invalid_request")
        assert package_of(db_url, str(wide["_grant_id"])) is None
        # malformed body
        assert_problem(
            c.request("POST", "/v1/grants", json_body={"terms": {}}), 422, "invalid_request"
        )
        assert c.get("/v1/grants") == []


def test_grant_visibility(server: LiveServer, world: World, db_url: str) -> None:
    asset = seed_asset(world, db_url)
    body = grant_body(world, asset)
    with DataSafeClient(server.url, world.citizen.key) as c:
        gid = post_grant(c, body).json()["grant_id"]  # type: ignore[attr-defined]
    for actor in (world.citizen2, world.bank2, world.issuer):
        with DataSafeClient(server.url, actor.key) as c:
            assert_problem(c.request("GET", f"/v1/grants/{gid}"), 403, "forbidden")
    with DataSafeClient(server.url, world.bank2.key) as c:
        assert c.get("/v1/grants") == []
    with DataSafeClient(server.url, world.citizen2.key) as c:
        assert c.get("/v1/grants") == []
    with DataSafeClient(server.url, world.issuer.key) as c:
        assert_problem(c.request("GET", "/v1/grants"), 403, "role_required")
    with DataSafeClient(server.url, world.regulator.key) as c:
        assert c.get(f"/v1/grants/{gid}")["grantee"] == world.bank.address
        assert [g["grant_id"] for g in c.get("/v1/grants")] == [gid]


def test_revoke_wrong_actors(server: LiveServer, world: World, db_url: str) -> None:
    asset = seed_asset(world, db_url)
    with DataSafeClient(server.url, world.citizen.key) as c:
        gid = post_grant(c, grant_body(world, asset)).json()["grant_id"]  # type: ignore[attr-defined]
    for actor in (world.bank, world.citizen2, world.regulator):
        with DataSafeClient(server.url, actor.key) as c:
            msg = world.sign_action(actor, "revoke", gid)
            assert_problem(
                c.request("POST", f"/v1/grants/{gid}/revoke", json_body=msg), 403, "not_owner"
            )
    with DataSafeClient(server.url, world.bank.key) as c:
        # relaying the citizen's signed revocation as someone else is refused too
        msg = world.sign_action(world.citizen, "revoke", gid)
        assert_problem(
            c.request("POST", f"/v1/grants/{gid}/revoke", json_body=msg), 403, "not_owner"
        )
    with DataSafeClient(server.url, world.citizen.key) as c:
        missing = "0x" + "77" * 32
        msg = world.sign_action(world.citizen, "revoke", missing)
        assert_problem(
            c.request("POST", f"/v1/grants/{missing}/revoke", json_body=msg), 404, "grant_not_found"
        )
        # a signature over a stale nonce is refused by the contract at pre-flight
        stale = world.sign_action(world.citizen, "revoke", gid)
        c.post(f"/v1/grants/{gid}/pause", world.sign_action(world.citizen, "pause", gid))
        assert_problem(
            c.request("POST", f"/v1/grants/{gid}/revoke", json_body=stale), 401, "bad_signature"
        )
    assert package_of(db_url, gid) is not None


def test_key_package_must_be_bound_to_the_grant(
    server: LiveServer, world: World, db_url: str
) -> None:
    """Packages that would not open for this grant are refused; nothing relayed or stored."""
    asset = seed_asset(world, db_url)
    body = grant_body(world, asset, fields_mask=0b00011)
    gid = str(body["_grant_id"])
    other_gid = "0x" + "42" * 32

    def with_package(package: bytes) -> dict[str, object]:
        return body | {"key_package": base64.b64encode(package).decode()}

    cases = {
        "another grant": key_package(world, asset, other_gid, 0b00011).to_bytes(),
        "more fields than granted": key_package(world, asset, gid, 0b00111).to_bytes(),
        "fewer fields than granted": key_package(world, asset, gid, 0b00001).to_bytes(),
        "another grantee's key": key_package(world, asset, gid, 0b00011, world.bank2).to_bytes(),
    }
    with DataSafeClient(server.url, world.citizen.key) as c:
        for what, package in cases.items():
            problem = assert_problem(
                post_grant(c, with_package(package)), 400, "key_package_mismatch"
            )
            assert problem["grant_id"] == gid, what
        # bytes that are not a key package at all
        for junk in (b"\x00" * 40, key_package(world, asset, gid, 0b11).to_bytes()[:-1]):
            problem = assert_problem(post_grant(c, with_package(junk)), 400, "invalid_vault_data")
            assert problem["vault_error"] in {"MalformedInputError", "UnsupportedVersionError"}
        assert c.get("/v1/grants") == []
    assert package_of(db_url, gid) is None
    assert world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[8] == 0
    # the right package is accepted (the refusals did not consume the signed consent)
    with DataSafeClient(server.url, world.citizen.key) as c:
        assert post_grant(c, body).status_code == 201  # type: ignore[attr-defined]
    assert package_of(db_url, gid) == base64.b64decode(str(body["key_package"]))
