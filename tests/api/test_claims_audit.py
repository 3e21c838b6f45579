"""The claims index audited against the claims companion's logs (SQLite and PostgreSQL):
``ledger.claims_audit`` and ``GET /v1/audit/verify`` re-derive ``claim_events`` and ``claims``
from ``eth_getLogs`` and report a tampered, a deleted and an invented row."""

from __future__ import annotations

import contextlib
import time

import sqlalchemy as sa
from _api_server import LiveServer
from _api_world import World
from _claims_helpers import SCHEMA, _answer, _body
from eth_utils import keccak

from api.client import DataSafeClient
from ledger import db
from ledger.claims_audit import verify_claims_index
from ledger.rpc import RpcClient

INDEX_WAIT_SECONDS = 30.0


def _wait_indexed(engine: sa.Engine, want_events: int) -> None:
    deadline = time.monotonic() + INDEX_WAIT_SECONDS
    while True:
        n = None
        with engine.connect() as conn, contextlib.suppress(sa.exc.DBAPIError):
            # (the indexer creates its tables on its first pass: until then, nothing)
            n = conn.execute(sa.select(sa.func.count()).select_from(db.claim_events)).scalar()
        if n == want_events:
            return
        assert time.monotonic() < deadline, f"{n} claim events indexed, {want_events} expected"
        time.sleep(0.2)


def _row(conn: sa.Connection, claim_id: str) -> dict[str, object]:
    return dict(
        conn.execute(sa.select(db.claims).where(db.claims.c.claim_id == claim_id)).mappings().one()
    )


def test_audit_verify_rederives_claims(
    indexed_server: LiveServer, world: World, db_url: str
) -> None:
    url = indexed_server.url
    world.transact(world.issuer, "registerSchema", SCHEMA, 4, keccak(text="fields"))
    with DataSafeClient(url, world.citizen.key) as c:
        first = c.post("/v1/claims", _body(world, world.citizen, world.issuer))["claim_id"]
        second = c.post("/v1/claims", _body(world, world.citizen, world.issuer))["claim_id"]
    asset = keccak(text="audited-claim-record")
    world.transact(
        world.issuer, "anchorAsset", asset, world.citizen.address, SCHEMA, b"\1" * 32, b"\2" * 32
    )
    with DataSafeClient(url, world.issuer.key) as c:
        c.post(
            f"/v1/claims/{first}/fulfil",
            _answer(world, world.issuer, "fulfilClaim", first, asset),
        )
    engine = db.make_engine(db_url)
    try:
        _wait_indexed(engine, 3)
        last = world.w3.eth.block_number
        with RpcClient(world.rpc_url) as rpc:
            clean = verify_claims_index(rpc, world.ledger_address, engine, 0, last)
            assert clean.ok and (clean.chain_rows, clean.chain_claims) == (3, 2), clean.to_json()
            # A range that ends before the fulfilment: the closed row is audited on its filing.
            with engine.connect() as conn:
                filed_at = conn.execute(
                    sa.select(db.claims.c.block_number).where(db.claims.c.claim_id == first)
                ).scalar_one()
            assert verify_claims_index(rpc, world.ledger_address, engine, 0, filed_at).ok
            e, t = db.claim_events, db.claims
            with engine.begin() as conn:
                fulfilled = (
                    conn.execute(sa.select(e).where(e.c.event == "ClaimFulfilled")).mappings().one()
                )
                filed_second = (
                    conn.execute(
                        sa.select(e).where(e.c.event == "ClaimFiled", e.c.claim_id == second)
                    )
                    .mappings()
                    .one()
                )
                # the operator rewrites the fulfilled claim as refused, hides the other claim's
                # filing and the claim itself
                conn.execute(
                    sa.update(t)
                    .where(t.c.claim_id == first)
                    .values(status="refused", asset_id=None, reason_code=1)
                )
                conn.execute(
                    sa.update(e)
                    .where(e.c.id == fulfilled["id"])
                    .values(actor=world.bank.address.lower())
                )
                conn.execute(sa.delete(e).where(e.c.id == filed_second["id"]))
                conn.execute(sa.delete(t).where(t.c.claim_id == second))
                invented = "0x" + "ee" * 32
                conn.execute(sa.insert(t).values(dict(_row(conn, first), claim_id=invented)))
            report = verify_claims_index(rpc, world.ledger_address, engine, 0, last)
        assert not report.ok
        assert report.claims_altered == {first: ["status", "asset_id", "reason_code"]}
        assert report.claims_missing == [second] and report.claims_extra == [invented]
        assert report.missing == [(filed_second["block_number"], filed_second["log_index"])]
        assert report.altered == {(fulfilled["block_number"], fulfilled["log_index"]): ["actor"]}
        with DataSafeClient(url, world.regulator.key) as reg:
            out = reg.get("/v1/audit/verify", params={"from_block": 0, "to_block": last})
        assert out["ok"] is False and out["sealed"]["ok"] is True
        assert out["claims"] == report.to_json()
        assert out["claims"]["claims"]["missing"] == [second]
    finally:
        engine.dispose()
