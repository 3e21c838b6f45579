"""Recall and deletion acknowledgements over HTTP (real anvil, real SQLite and PostgreSQL):
relayed once owed, refused with a typed error for someone else's grant, a live grant, a
version still current, a wrong count and a repeat; listed as owed from the event index."""

from __future__ import annotations

import secrets
from typing import Any

from _api_seed import seed_asset
from _api_server import LiveServer, assert_problem
from _api_world import Actor, World

from api.client import DataSafeClient
from ledger import db
from ledger.eip712 import sign_digest
from ledger.indexer import Indexer
from ledger.lifecycle import Acknowledgement, ack_digest
from ledger.models import AckKind


def _grant(world: World, asset_id: bytes) -> str:
    nonce = secrets.randbits(64)
    # Limited uses: an unlimited grant's counter only marks the first use (0 -> 1), so the
    # "uses" this test compares would stay at 1 after two pulls.
    terms = (asset_id, world.bank.address, 1, 0b11, 0, world.now() + 86_400, 10, 3600)
    world.transact(world.citizen, "grant", terms, nonce)
    return "0x" + bytes(world.ledger.functions.grantIdOf(world.citizen.address, nonce).call()).hex()


def _pull(world: World, gid: str) -> None:
    signed = world.sign_access(world.bank, gid, 0b11)
    request = (bytes.fromhex(gid[2:]), 0b11, int(signed["nonce"]), signed["deadline"])
    world.transact(
        world.custodian,  # type: ignore[attr-defined]
        "recordAccess",
        request,
        bytes.fromhex(signed["signature"][2:]),
    )


def _body(world: World, signer: Actor, kind: str, gid: str, uses: int) -> dict[str, Any]:
    at = world.now()
    ack = Acknowledgement(AckKind[kind.upper()], bytes.fromhex(gid[2:]), uses, at)
    signature = sign_digest(signer.key_bytes, ack_digest(world.domain, ack))
    return {
        "kind": kind,
        "grant_id": gid,
        "uses": uses,
        "at": at,
        "signature": "0x" + signature.hex(),
    }


def _post(server: LiveServer, caller: Actor, body: dict[str, Any]) -> Any:
    with DataSafeClient(server.url, caller.key) as c:
        return c.request("POST", "/v1/acknowledgements", json_body=body)


def _owed(server: LiveServer, caller: Actor, **params: Any) -> list[dict[str, Any]]:
    with DataSafeClient(server.url, caller.key) as c:
        resp = c.request("GET", "/v1/acknowledgements/owed", params=params)
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()
    return rows


def _index(world: World, db_url: str) -> None:
    engine = db.make_engine(db_url)
    indexer = Indexer(
        rpc_url=world.rpc_url,
        ledger_address=world.ledger_address,
        engine=engine,
        start_block=world.deploy_block,
    )
    try:
        indexer.sync_once()
    finally:
        indexer.close()
        engine.dispose()


def test_acknowledgements_relayed_and_refused(
    server: LiveServer, world: World, db_url: str
) -> None:
    asset = seed_asset(world, db_url)
    gid = _grant(world, asset.asset_id)
    idle = _grant(world, asset.asset_id)
    _pull(world, gid)
    _pull(world, gid)
    # A live grant on a current version: neither is owed.
    assert_problem(
        _post(server, world.bank, _body(world, world.bank, "deletion", gid, 2)), 409, "grant_live"
    )
    assert_problem(
        _post(server, world.bank, _body(world, world.bank, "recall", gid, 2)), 409, "not_recalled"
    )
    # Someone else's grant, and a signature that is not the caller's.
    assert_problem(
        _post(server, world.bank2, _body(world, world.bank2, "recall", gid, 2)), 403, "not_grantee"
    )
    assert_problem(
        _post(server, world.bank2, _body(world, world.bank, "recall", gid, 2)), 401, "bad_signature"
    )
    unknown = "0x" + "ab" * 32
    assert_problem(
        _post(server, world.bank, _body(world, world.bank, "recall", unknown, 0)),
        404,
        "grant_not_found",
    )

    # The department corrects the record: the bank that pulled owes a recall, the idle grant not.
    world.transact(
        world.issuer, "supersedeAsset", asset.asset_id, b"\x77" * 32, b"\1" * 32, b"\2" * 32
    )
    assert_problem(
        _post(server, world.bank, _body(world, world.bank, "recall", idle, 0)), 409, "not_recalled"
    )
    assert_problem(
        _post(server, world.bank, _body(world, world.bank, "recall", gid, 1)), 409, "uses_mismatch"
    )
    done = _post(server, world.bank, _body(world, world.bank, "recall", gid, 2))
    assert done.status_code == 200, done.text
    assert done.json()["kind"] == "recall" and done.json()["tx_hash"].startswith("0x")
    assert world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[10] == 1
    replay = _post(server, world.bank, _body(world, world.bank, "recall", gid, 2))
    assert_problem(replay, 409, "already_acknowledged")

    # The subject revokes both grants; the bank deletes and acknowledges one.
    world.transact(world.citizen, "revoke", bytes.fromhex(gid[2:]))
    world.transact(world.citizen, "revoke", bytes.fromhex(idle[2:]))
    assert (
        _post(server, world.bank, _body(world, world.bank, "deletion", gid, 2)).status_code == 200
    )
    assert_problem(
        _post(server, world.bank, _body(world, world.bank, "deletion", gid, 2)),
        409,
        "already_acknowledged",
    )

    _index(world, db_url)
    (open_row,) = _owed(server, world.bank)
    assert open_row["grant_id"] == idle and open_row["recalled_at"] is None
    assert open_row["deletion_due"] == open_row["ended_at"] + 3600
    assert open_row["deletion_acknowledged_at"] is None
    everything = {r["grant_id"]: r for r in _owed(server, world.regulator, outstanding="false")}
    assert set(everything) == {gid, idle}
    settled = everything[gid]
    assert settled["recalled_at"] is not None and settled["recall_acknowledged_at"] is not None
    assert (
        settled["deletion_acknowledged_at"] is not None and "recall_age" not in settled
    ) or settled["recall_age"] is None
    assert _owed(server, world.bank2) == []
    assert {r["grant_id"] for r in _owed(server, world.citizen, outstanding="false")} == {gid, idle}
