"""Claims over real HTTP (SQLite and PostgreSQL): a subject files her signed claim (the
custodian relays it), the department fulfils one with the record it issued and refuses
another, the regulator sees the queue per department; every refusal is a typed problem and
changes nothing on chain."""

from __future__ import annotations

import time
from typing import Any

import pytest
from _api_server import LiveServer, assert_problem
from _api_world import Actor, World
from eth_account import Account
from eth_utils import keccak

from api.client import DataSafeClient
from ledger import claims as cl
from ledger.rpc import RpcClient
from ledger.trust import ServiceContradictedError

SCHEMA = keccak(text="claims:birth-certificate/v1")
INDEX_WAIT_SECONDS = 30.0


def _claims(world: World) -> Any:
    return world.w3.eth.contract(
        address=cl.claims_address(world.ledger_address), abi=cl.claims_abi().abi
    )


def _body(world: World, signer: Actor, department: Actor, **over: Any) -> dict[str, Any]:
    subject = over.pop("subject", signer.address)
    nonce = over.pop("nonce", None)
    if nonce is None:
        nonce = _claims(world).functions.nonces(subject).call()
    request = cl.ClaimRequest(
        subject,
        department.address,
        over.pop("schema", SCHEMA),
        cl.reference_hash(department.address, SCHEMA, "BC-2025-0042"),
        nonce,
        over.pop("deadline", world.now() + 600),
    )
    sig = cl.sign_request(signer.key_bytes, world.chain_id, world.ledger_address, request)
    return {"request": request.to_json(), "signature": "0x" + sig.hex()}


def _answer(world: World, department: Actor, fn: str, *args: Any) -> dict[str, str]:
    call = getattr(_claims(world).functions, fn)(*args)
    tx = call.build_transaction(
        {
            "from": department.address,
            "nonce": world.w3.eth.get_transaction_count(department.address, "pending"),
            "chainId": world.chain_id,
            "gas": 300_000,
        }
    )
    raw = bytes(Account.sign_transaction(tx, department.key).raw_transaction)
    return {"raw_transaction": "0x" + raw.hex()}


def _indexed(c: DataSafeClient, path: str, want: int, **params: Any) -> list[Any]:
    """The listing once the index shows ``want`` claims, all answered (one row per page)."""
    deadline = time.monotonic() + INDEX_WAIT_SECONDS
    while True:
        rows: list[Any] = c.get_all(path, params=params, page_size=1)
        settled = len(rows) >= want and all(r["status"] != "open" for r in rows)
        if settled or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_claim_filed_fulfilled_refused_and_seen_per_department(
    indexed_server: LiveServer, world: World
) -> None:
    url = indexed_server.url
    world.transact(world.issuer, "registerSchema", SCHEMA, 4, keccak(text="fields"))
    citizen = world.citizen
    with DataSafeClient(url, citizen.key) as c:
        first = c.post("/v1/claims", _body(world, citizen, world.issuer))
        second = c.post("/v1/claims", _body(world, citizen, world.issuer))
    assert first["status"] == "open" and first["department"] == world.issuer.address
    assert first["subject"] == citizen.address and first["tx_hash"]
    claim_id, other_id = first["claim_id"], second["claim_id"]
    # The department issues the record into her safe, then links it; refuses the other.
    asset = keccak(text="claimed-record")
    world.transact(
        world.issuer, "anchorAsset", asset, citizen.address, SCHEMA, b"\1" * 32, b"\2" * 32
    )
    with DataSafeClient(url, world.issuer2.key) as c:
        assert_problem(
            c.request(
                "POST",
                f"/v1/claims/{claim_id}/fulfil",
                json_body=_answer(world, world.issuer2, "fulfilClaim", claim_id, asset),
            ),
            403,
            "claim_not_department",
        )
    with DataSafeClient(url, world.issuer.key) as c:
        done = c.post(
            f"/v1/claims/{claim_id}/fulfil",
            _answer(world, world.issuer, "fulfilClaim", claim_id, asset),
        )
        assert done["status"] == "fulfilled" and done["asset_id"] == "0x" + asset.hex()
        assert_problem(
            c.request(
                "POST",
                f"/v1/claims/{claim_id}/refuse",
                json_body=_answer(world, world.issuer, "refuseClaim", claim_id, 1, b"\0" * 32),
            ),
            409,
            "claim_closed",
        )
        # The same record cannot close a second claim.
        assert_problem(
            c.request(
                "POST",
                f"/v1/claims/{other_id}/fulfil",
                json_body=_answer(world, world.issuer, "fulfilClaim", other_id, asset),
            ),
            422,
            "claim_rejected",
        )
        reason = keccak(text="no birth registered under this reference")
        refused = c.post(
            f"/v1/claims/{other_id}/refuse",
            _answer(world, world.issuer, "refuseClaim", other_id, 1, reason),
        )
        assert refused["status"] == "refused" and refused["reason"] == "no_record"
        assert refused["reason_hash"] == "0x" + reason.hex()
        queue = _indexed(c, "/v1/claims", 2)
    assert {r["claim_id"]: r["status"] for r in queue} == {
        claim_id: "fulfilled",
        other_id: "refused",
    }
    with DataSafeClient(url, citizen.key) as c:
        mine = _indexed(c, "/v1/claims", 2)
        assert c.get(f"/v1/claims/{claim_id}")["asset_id"] == "0x" + asset.hex()
        page = c.request("GET", "/v1/claims", params={"limit": 1})
        assert len(page.json()) == 1 and page.headers["x-next-cursor"]
        assert_problem(c.request("GET", "/v1/claims/stats"), 403, "role_required")
    with DataSafeClient(url, world.citizen2.key) as c:
        assert c.get("/v1/claims") == []
        assert_problem(c.request("GET", f"/v1/claims/{claim_id}"), 403, "forbidden")
    with DataSafeClient(url, world.regulator.key) as c:
        stats = c.get("/v1/claims/stats")
        everything = c.get_all("/v1/claims", params={"department": world.issuer.address})
    assert len(everything) == 2
    (row,) = stats
    assert row["department"] == world.issuer.address.lower()
    assert (row["filed"], row["open"], row["fulfilled"], row["refused"]) == (2, 0, 1, 1)
    assert row["max_seconds_to_close"] is not None and row["oldest_open_at"] is None
    # What the service listed is what the chain holds; a doctored row is caught.
    with RpcClient(world.rpc_url) as rpc:
        assert len(cl.verify_claims(rpc, world.ledger_address, mine)) == 2
        lie = [dict(mine[0], status="open", asset_id=None)]
        with pytest.raises(ServiceContradictedError, match="status"):
            cl.verify_claims(rpc, world.ledger_address, lie)


def test_claim_refusals_change_nothing(server: LiveServer, world: World) -> None:
    world.transact(world.issuer, "registerSchema", SCHEMA, 4, keccak(text="fields"))
    citizen = world.citizen
    claims = _claims(world)
    with DataSafeClient(server.url, world.citizen2.key) as c:
        # Signed by the citizen, sent by another subject: nobody files for another.
        assert_problem(
            c.request("POST", "/v1/claims", json_body=_body(world, citizen, world.issuer)),
            403,
            "claim_signature_invalid",
        )
        # Claimed for the citizen, signed by the other subject.
        forged = _body(world, world.citizen2, world.issuer, subject=citizen.address)
        assert_problem(
            c.request("POST", "/v1/claims", json_body=forged), 403, "claim_signature_invalid"
        )
    with DataSafeClient(server.url, world.bank.key) as c:  # not a subject
        assert_problem(
            c.request("POST", "/v1/claims", json_body=_body(world, world.bank, world.issuer)),
            403,
            "role_required",
        )
    with DataSafeClient(server.url, citizen.key) as c:
        # A department that does not issue the schema.
        assert_problem(
            c.request("POST", "/v1/claims", json_body=_body(world, citizen, world.issuer2)),
            422,
            "claim_rejected",
        )
        expired = _body(world, citizen, world.issuer, deadline=world.now() - 1)
        assert_problem(c.request("POST", "/v1/claims", json_body=expired), 403, "claim_expired")
        body = _body(world, citizen, world.issuer)
        c.post("/v1/claims", body)
        assert_problem(c.request("POST", "/v1/claims", json_body=body), 409, "claim_nonce_invalid")
        missing = "0x" + "ab" * 32
        assert_problem(c.request("GET", f"/v1/claims/{missing}"), 404, "claim_not_found")
        assert_problem(
            c.request("GET", "/v1/claims", params={"status": "lost"}), 422, "invalid_request"
        )
    assert claims.functions.nonces(citizen.address).call() == 1
    world.suspend(citizen)
    with DataSafeClient(server.url, citizen.key) as c:
        assert_problem(
            c.request("POST", "/v1/claims", json_body=_body(world, citizen, world.issuer)),
            403,
            "member_suspended",
        )
    assert claims.functions.nonces(citizen.address).call() == 1
