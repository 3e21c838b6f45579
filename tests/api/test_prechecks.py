"""The custodian's gas is not a free resource: what the chain would refuse costs nothing.

Every request here is one the ledger would refuse. Each gets its own problem type and none
sends a transaction: the custodian's transaction count and the chain's head are the same
before and after, and no relay or journal row is left behind.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any

from _api_seed import seed_asset
from _api_server import LiveServer, assert_problem, live_server, world_settings
from _api_world import World
from _refusal_helpers import (
    access_body,
    chain_grant,
    custodian_journal,
    custodian_state,
    grant_request,
    issued_asset,
    pull,
    record_directly,
    rows,
)

from api import db as api_db
from api.client import DataSafeClient


def test_refused_pulls_send_no_transaction(server: LiveServer, world: World, db_url: str) -> None:
    asset = issued_asset(server, world)
    retired = seed_asset(world, db_url, tag=b"retired")
    with DataSafeClient(server.url, world.citizen.key) as citizen:  # with its key package
        open_grant = citizen.post("/v1/grants", grant_request(world, asset, world.bank))["grant_id"]
    once = chain_grant(world, asset.asset_id, max_uses=1)
    revoked = chain_grant(world, asset.asset_id)
    paused = chain_grant(world, asset.asset_id)
    early = chain_grant(world, asset.asset_id, not_before=world.now() + 3600)
    short = chain_grant(world, asset.asset_id, expiry=world.now() + 30)
    on_retired = chain_grant(world, retired.asset_id)
    to_bank2 = chain_grant(world, asset.asset_id, grantee=world.bank2)
    # state the requests below meet, all set up before counting
    record_directly(world, access_body(world, world.bank, once, 0b11))
    used = access_body(world, world.bank, open_grant, 0b11)
    record_directly(world, used)
    world.transact(world.citizen, "revoke", bytes.fromhex(revoked[2:]))
    world.transact(world.citizen, "pause", bytes.fromhex(paused[2:]))
    world.transact(world.issuer, "retireAsset", retired.asset_id, b"\x05" * 32)
    world.advance(60)  # past `short`'s expiry
    world.suspend(world.bank2)
    bank, bank2 = world.bank, world.bank2

    cases: list[tuple[str, Any, dict[str, Any], int, str]] = [
        ("deadline passed", bank, access_body(world, bank, open_grant, 0b11,
                                               deadline=world.now() - 1), 403,
         "request_signature_expired"),
        ("nonce used", bank, used, 409, "access_nonce_used"),
        ("exhausted", bank, access_body(world, bank, once, 0b11), 403, "uses_exhausted"),
        ("revoked", bank, access_body(world, bank, revoked, 0b11), 403, "grant_revoked"),
        ("paused", bank, access_body(world, bank, paused, 0b11), 403, "grant_paused"),
        ("not yet valid", bank, access_body(world, bank, early, 0b11), 403,
         "grant_not_yet_valid"),
        ("expired", bank, access_body(world, bank, short, 0b11), 403, "grant_expired"),
        ("asset retired", bank, access_body(world, bank, on_retired, 0b11), 403,
         "asset_retired"),
        ("wrong fields", bank, access_body(world, bank, open_grant, 0b111), 403,
         "fields_not_granted"),
        ("subset of fields", bank, access_body(world, bank, open_grant, 0b01), 400,
         "fields_mask_mismatch"),
        ("not the grantee", bank, access_body(world, bank, to_bank2, 0b11), 403, "not_grantee"),
        ("no such grant", bank, access_body(world, bank, "0x" + "ab" * 32, 0b11), 404,
         "grant_not_found"),
        ("signed by another", bank, access_body(world, bank2, open_grant, 0b11), 403,
         "request_signature_invalid"),
        ("suspended grantee", bank2, access_body(world, bank2, to_bank2, 0b11), 403,
         "member_suspended"),
    ]  # fmt: skip
    before = custodian_state(world)
    for what, actor, body, status, code in cases:
        problem = assert_problem(pull(server, actor, body), status, code)
        assert "access_tx_hash" not in problem, what
    assert custodian_state(world) == before
    relays = [r for r in rows(db_url, api_db.relays) if r["kind"] == "grant"]
    journal = custodian_journal(db_url)
    assert [r["status"] for r in relays] == ["confirmed"]  # the grant's relay only
    assert [r["tx_hash"] for r in journal] == [relays[0]["tx_hash"]]
    # the service still records what the chain allows, in one transaction
    ok = pull(server, bank, access_body(world, bank, open_grant, 0b11))
    assert ok.status_code == 200, ok.text
    assert custodian_state(world)[0] == before[0] + 1


def test_concurrent_pulls_hold_their_nonce_and_the_last_use(
    world: World, db_url: str, tmp_path: Path
) -> None:
    """Pulls admitted together cannot all pass the checks and be refused inside a batch."""
    settings = world_settings(world, db_url, tmp_path, access_batch_window_ms=800)
    with live_server(settings) as server:
        asset = issued_asset(server, world)
        with DataSafeClient(server.url, world.citizen.key) as citizen:
            once = citizen.post("/v1/grants", grant_request(world, asset, world.bank, max_uses=1))
            unlimited = citizen.post("/v1/grants", grant_request(world, asset, world.bank))
        once, unlimited = once["grant_id"], unlimited["grant_id"]
        same_nonce = access_body(world, world.bank, unlimited, 0b11)
        bodies = [access_body(world, world.bank, once, 0b11) for _ in range(4)]
        bodies += [same_nonce, dict(same_nonce)]
        before = custodian_state(world)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            answers = list(pool.map(lambda b: pull(server, world.bank, b), bodies))
        after = custodian_state(world)
    on_once = [a for a, b in zip(answers, bodies, strict=True) if b["grant_id"] == once]
    on_nonce = answers[4:]
    assert sorted(a.status_code for a in on_once) == [200, 403, 403, 403]
    assert sorted(a.status_code for a in on_nonce) == [200, 409]
    for answer in [*on_once, *on_nonce]:
        if answer.status_code != 200:
            problem = answer.json()
            assert problem["code"] in {"uses_exhausted", "access_nonce_used"}
            # refused before the batch: no access transaction carries it
            assert "access_tx_hash" not in problem
    # the refused pulls cost nothing: at most one transaction per recorded access (the two
    # usually share a batch)
    assert 1 <= after[0] - before[0] <= 2
    assert world.uses(bytes.fromhex(once[2:])) == 1


def test_grant_terms_the_chain_would_refuse_are_422(
    server: LiveServer, world: World, db_url: str
) -> None:
    """Precise reasons, before the key package is looked at and before any relay row."""
    asset = seed_asset(world, db_url)
    retired = seed_asset(world, db_url, tag=b"retired")
    world.transact(world.issuer, "retireAsset", retired.asset_id, b"\x05" * 32)
    world.suspend(world.bank2)
    now = world.now()
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("expiry in the past", grant_request(world, asset, world.bank, expiry=now - 10), 422,
         "grant_expiry_past"),
        ("expiry at the head block", grant_request(world, asset, world.bank, expiry=now), 422,
         "grant_expiry_past"),
        ("not-before after expiry",
         grant_request(world, asset, world.bank, not_before=now + 7200, expiry=now + 3600), 422,
         "grant_window_invalid"),
        ("expiry beyond 32 bits", grant_request(world, asset, world.bank, expiry=2**32), 422,
         "grant_window_invalid"),
        ("grantee not a member", grant_request(world, asset, world.outsider), 422,
         "grant_grantee_not_member"),
        ("grantee without the consumer role", grant_request(world, asset, world.citizen2), 422,
         "grant_grantee_not_consumer"),
        ("suspended grantee", grant_request(world, asset, world.bank2), 422,
         "grant_grantee_suspended"),
        ("signature deadline passed",
         grant_request(world, asset, world.bank, deadline=now - 1), 403,
         "request_signature_expired"),
        ("retired asset", grant_request(world, retired, world.bank), 409, "asset_not_active"),
    ]  # fmt: skip
    before = custodian_state(world)
    with DataSafeClient(server.url, world.citizen.key) as citizen:
        for what, body, status, code in cases:
            problem = assert_problem(
                citizen.request("POST", "/v1/grants", json_body=body), status, code
            )
            assert problem["detail"] != problem["title"], what
        assert citizen.get("/v1/grants") == []
    assert custodian_state(world) == before
    assert rows(db_url, api_db.relays) == []
    assert custodian_journal(db_url) == []
    assert rows(db_url, api_db.key_packages) == []


def test_a_refused_relay_leaves_no_failed_row(
    server: LiveServer, world: World, db_url: str
) -> None:
    """A second revocation reverts at pre-flight: the first relay's row stays as it was."""
    asset = seed_asset(world, db_url)
    body = grant_request(world, asset, world.bank)
    with DataSafeClient(server.url, world.citizen.key) as citizen:
        gid = citizen.post("/v1/grants", body)["grant_id"]
        citizen.post(f"/v1/grants/{gid}/revoke", world.sign_action(world.citizen, "revoke", gid))
        before = custodian_state(world)
        again = citizen.request(
            "POST",
            f"/v1/grants/{gid}/revoke",
            json_body=world.sign_action(world.citizen, "revoke", gid),
        )
        assert_problem(again, 409, "contract_rejected")
    assert custodian_state(world) == before
    statuses = {r["id"]: r["status"] for r in rows(db_url, api_db.relays)}
    assert statuses == {f"grant:{gid}": "confirmed", f"revoke:{gid}": "confirmed"}
