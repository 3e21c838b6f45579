"""Relays left pending by a crash are settled on start-up by what the chain holds."""

from __future__ import annotations

import base64
from pathlib import Path

import sqlalchemy as sa
from _api_seed import seed_asset
from _api_server import live_server, world_settings
from _api_world import World

from api import db as api_db
from api._vault import VaultAdapter
from api.outbox import Outbox


def _pending_grant(world: World, db_url: str, *, relay_it: bool) -> tuple[str, bytes]:
    asset = seed_asset(world, db_url)
    signed = world.sign_grant(
        world.citizen, asset_id=asset.asset_id, grantee=world.bank.address, fields_mask=0b11
    )
    gid = signed["grant_id"]
    package = b"package bytes"
    row = {
        "grant_id": gid,
        "asset_id": asset.hex,
        "owner": world.citizen.address.lower(),
        "grantor": world.citizen.address.lower(),
        "grantee": world.bank.address.lower(),
        "terms": signed["terms"],
        "nonce": signed["nonce"],
        "deadline": signed["deadline"],
        "signature": signed["signature"],
    }
    engine = api_db.make_engine(db_url)
    outbox = Outbox(engine)
    outbox.begin(
        f"grant:{gid}", "grant", {"row": row, "key_package": base64.b64encode(package).decode()}
    )
    if relay_it:
        t = signed["terms"]
        terms = (
            bytes.fromhex(t["asset_id"][2:]),
            t["grantee"],
            t["purpose"],
            t["fields_mask"],
            t["not_before"],
            t["expiry"],
            t["max_uses"],
            t.get("retention", 0),
        )
        receipt = world.transact(
            world.custodian,  # type: ignore[attr-defined]
            "grantBySig",
            (
                terms,
                world.citizen.address,
                int(signed["nonce"]),
                signed["deadline"],
                bytes.fromhex(signed["signature"][2:]),
            ),
        )
        outbox.sent(f"grant:{gid}", "0x" + bytes(receipt["transactionHash"]).hex())
    engine.dispose()
    return gid, package


def _state(db_url: str, gid: str) -> tuple[str | None, bytes | None, int]:
    engine = api_db.make_engine(db_url)
    try:
        status = Outbox(engine).status(f"grant:{gid}")
        package = VaultAdapter(engine, None).get_key_package(gid)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(sa.func.count())
                .select_from(api_db.grants)
                .where(api_db.grants.c.grant_id == gid)
            ).scalar_one()
        return status, package, int(rows)
    finally:
        engine.dispose()


def test_confirmed_relay_is_completed_on_restart(world: World, db_url: str, tmp_path: Path) -> None:
    gid, package = _pending_grant(world, db_url, relay_it=True)
    assert _state(db_url, gid) == ("pending", None, 0)
    with live_server(world_settings(world, db_url, tmp_path)):
        pass
    assert _state(db_url, gid) == ("confirmed", package, 1)


def test_unsent_relay_is_failed_on_restart(world: World, db_url: str, tmp_path: Path) -> None:
    gid, _ = _pending_grant(world, db_url, relay_it=False)
    with live_server(world_settings(world, db_url, tmp_path)):
        pass
    assert _state(db_url, gid) == ("failed", None, 0)
