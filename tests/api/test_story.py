"""A department issues, a citizen grants two of five fields, a bank verifies and pulls, the
citizen revokes — all through real HTTP against a real uvicorn, anvil and database.

The sealed bundle here is opaque bytes standing in for a vault bundle: the service never
looks inside one (it checks the anchor's ciphertextDigest = SHA-256 of the bytes).
"""

from __future__ import annotations

import base64
import hashlib
import os

from _api_server import LiveServer, assert_problem
from _api_world import World
from eth_abi import encode
from eth_hash.auto import keccak

from api.client import DataSafeClient

FIELDS = ["name", "id_number", "address", "income", "employer"]


def register_schema(server: LiveServer, world: World) -> bytes:
    sid = keccak(b"income statement v1")
    raw = world.raw_tx(
        world.issuer, "registerSchema", sid, 5, keccak(encode(["string[]"], [FIELDS]))
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


def issue(server: LiveServer, world: World, sid: bytes, sealed: bytes, tag: bytes = b"1") -> str:
    aid = keccak(b"asset" + tag)
    raw = world.raw_tx(
        world.issuer,
        "anchorAsset",
        aid,
        world.citizen.address,
        sid,
        keccak(b"root" + tag),
        hashlib.sha256(sealed).digest(),
    )
    with DataSafeClient(server.url, world.issuer.key) as c:
        out = c.post(
            "/v1/assets", {"sealed": base64.b64encode(sealed).decode(), "raw_transaction": raw}
        )
    assert out["asset_id"] == "0x" + aid.hex()
    assert out["status"] == "active" and out["version"] == 1
    return str(out["asset_id"])


def test_issue_grant_verify_revoke_story(server: LiveServer, world: World) -> None:
    sid = register_schema(server, world)
    sealed = os.urandom(4096)
    # a bad upload changes nothing: digest mismatch, or an anchor the contract would refuse
    aid_bad = keccak(b"bad")
    wrong_digest = world.raw_tx(
        world.issuer, "anchorAsset", aid_bad, world.citizen.address, sid, b"\x01" * 32, b"\x02" * 32
    )
    not_subject = world.raw_tx(
        world.issuer,
        "anchorAsset",
        aid_bad,
        world.bank.address,
        sid,
        b"\x01" * 32,
        hashlib.sha256(sealed).digest(),
    )
    with DataSafeClient(server.url, world.issuer.key) as c:
        b64 = base64.b64encode(sealed).decode()
        assert_problem(
            c.request(
                "POST", "/v1/assets", json_body={"sealed": b64, "raw_transaction": wrong_digest}
            ),
            422,
            "invalid_request",
        )
        assert_problem(
            c.request(
                "POST", "/v1/assets", json_body={"sealed": b64, "raw_transaction": not_subject}
            ),
            409,
            "contract_rejected",
        )
        assert c.get("/v1/assets") == []
    aid = issue(server, world, sid, sealed)

    # the citizen sees its asset and fetches the sealed bundle to open locally
    with DataSafeClient(server.url, world.citizen.key) as citizen:
        mine = citizen.get("/v1/assets")
        assert [a["asset_id"] for a in mine] == [aid]
        fetched = citizen.get(f"/v1/assets/{aid}/sealed")
        assert base64.b64decode(fetched["sealed"]) == sealed
        # grants two of five fields (name, income)
        signed = world.sign_grant(
            world.citizen,
            asset_id=bytes.fromhex(aid[2:]),
            grantee=world.bank.address,
            fields_mask=0b01001,
            max_uses=5,
        )
        gid = signed.pop("grant_id")
        receipt = citizen.post(
            "/v1/grants", signed | {"key_package": base64.b64encode(b"kp").decode()}
        )
        assert receipt["grant_id"] == gid
        assert "name, income" in receipt["terms_text"]

    with DataSafeClient(server.url, world.bank.key) as bank:
        ok = bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 0b01001})
        assert ok["allowed"] is True
        assert (
            bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 0b01011})["code"]
            == "fields_not_granted"
        )
        assert bank.get(f"/v1/grants/{gid}")["fields"] == ["name", "income"]
        assert_problem(bank.request("GET", f"/v1/assets/{aid}/sealed"), 403, "forbidden")
        # pull: recorded on chain first, then the data
        request = world.sign_access(world.bank, gid, 0b01001)
        pulled = bank.post("/v1/access", request)
        assert base64.b64decode(pulled["key_package"]) == b"kp"
        assert base64.b64decode(pulled["disclosure"]) == sealed
        assert pulled["fields"] == ["name", "income"]
        assert pulled["use"] == 1
        anchor = pulled["anchor"]
        on_chain = world.ledger.functions.getAsset(bytes.fromhex(aid[2:])).call()
        assert anchor["root"] == "0x" + bytes(on_chain[5]).hex()
        assert anchor["issuer"] == on_chain[3].lower() == world.issuer.address.lower()
        assert anchor["version"] == on_chain[2] == 1
        assert anchor["ciphertext_digest"] == "0x" + hashlib.sha256(sealed).hexdigest()
        receipt_ = world.w3.eth.get_transaction_receipt(pulled["access"]["tx_hash"])
        accessed = world.ledger.events.Accessed().process_receipt(receipt_)
        assert [(e.args.grantee, e.args.nonce) for e in accessed] == [
            (world.bank.address, int(request["nonce"]))
        ]
        assert world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[7] == 1
        # the same signed access request again: the chain refuses, no data
        resent = bank.request("POST", "/v1/access", json_body=request)
        assert_problem(resent, 409, "access_nonce_used")
        assert "disclosure" not in resent.json()

    with DataSafeClient(server.url, world.citizen.key) as citizen:
        citizen.post(f"/v1/grants/{gid}/revoke", world.sign_action(world.citizen, "revoke", gid))
    with DataSafeClient(server.url, world.bank.key) as bank:
        revoked = bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 1})
        assert revoked["code"] == "grant_revoked"
        body = world.sign_access(world.bank, gid, 0b01001)
        assert_problem(bank.request("POST", "/v1/access", json_body=body), 403, "grant_revoked")
    assert world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[7] == 1


def test_new_version_supersedes(server: LiveServer, world: World) -> None:
    sid = register_schema(server, world)
    aid = issue(server, world, sid, b"version one")
    v2 = b"version two"
    new_id = keccak(b"asset v2")
    raw = world.raw_tx(
        world.issuer,
        "supersedeAsset",
        bytes.fromhex(aid[2:]),
        new_id,
        keccak(b"root2"),
        hashlib.sha256(v2).digest(),
    )
    with DataSafeClient(server.url, world.issuer.key) as c:
        out = c.post(
            f"/v1/assets/{aid}/versions",
            {"sealed": base64.b64encode(v2).decode(), "raw_transaction": raw},
        )
        assert out["version"] == 2 and out["previous"] == aid
        assert c.get(f"/v1/assets/{aid}")["status"] == "superseded"
    with DataSafeClient(server.url, world.citizen.key) as c:
        assert base64.b64decode(c.get(f"/v1/assets/{out['asset_id']}/sealed")["sealed"]) == v2
        assert len(c.get("/v1/assets")) == 2


def test_concurrent_pulls_are_batched_and_exhaust(
    world: World, db_url: str, tmp_path: object
) -> None:
    import concurrent.futures

    from _api_server import live_server, world_settings

    settings = world_settings(world, db_url, tmp_path, access_batch_window_ms=500)  # type: ignore[arg-type]
    with live_server(settings) as server:
        sid = register_schema(server, world)
        aid = issue(server, world, sid, os.urandom(1024))
        signed = world.sign_grant(
            world.citizen,
            asset_id=bytes.fromhex(aid[2:]),
            grantee=world.bank.address,
            fields_mask=0b11,
            max_uses=6,
        )
        gid = signed.pop("grant_id")
        with DataSafeClient(server.url, world.citizen.key) as citizen:
            citizen.post("/v1/grants", signed | {"key_package": base64.b64encode(b"kp").decode()})
        requests = [world.sign_access(world.bank, gid, 0b11) for _ in range(8)]

        def pull(body: dict[str, object]) -> tuple[int, dict[str, object]]:
            with DataSafeClient(server.url, world.bank.key) as bank:
                resp = bank.request("POST", "/v1/access", json_body=body)
                return resp.status_code, resp.json()

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(pull, requests))
    ok = [body for status, body in results if status == 200]
    refused = [body for status, body in results if status != 200]
    # six uses: six pulls get data, two are refused by the chain inside the same batches
    assert len(ok) == 6 and len(refused) == 2
    assert {b["code"] for b in refused} == {"uses_exhausted"}
    assert all("disclosure" not in b for b in refused)
    assert sorted(b["use"] for b in ok) == [1, 2, 3, 4, 5, 6]  # type: ignore[type-var]
    tx_hashes = {b["access"]["tx_hash"] for b in ok}  # type: ignore[index]
    assert len(tx_hashes) < len(ok)
    assert world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[7] == 6
