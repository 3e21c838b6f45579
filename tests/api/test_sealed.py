"""Sealed accesses over HTTP (SQLite and PostgreSQL): a department records one, the subject
sees at once that it exists, a regulator extends it and finds it overdue, the department
reveals it and the subject's view is checked against the chain; every refusal is a typed
problem that changes nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _api_server import LiveServer, assert_problem, live_server, world_settings
from _api_world import World
from _sealed_helpers import DAY, anchored_asset, companion_tx, seal_body

from api.client import NEXT_CURSOR_HEADER, DataSafeClient
from ledger import db
from ledger import sealed as sl
from ledger.rpc import RpcClient
from ledger.sealed_audit import verify_sealed_index
from ledger.trust import ServiceContradictedError


def _opening(world: World, asset: bytes) -> sl.Opening:
    return sl.Opening.new(world.bank.address, asset, 0b101, "criminal procedure law art. 52")


def test_sealed_story(server: LiveServer, world: World) -> None:
    asset = anchored_asset(world, world.citizen)
    opening = _opening(world, asset)
    unseal_at = world.now() + 30 * DAY
    with DataSafeClient(server.url, world.issuer.key) as dept:
        made = dept.post("/v1/sealed", seal_body(world, opening, unseal_at))
    assert made["subject"] == world.citizen.address and made["status"] == "sealed"
    assert made["department"] == world.issuer.address and made["opening"] is None
    seal_id = int(made["seal_id"])

    # The subject learns at once: who, when, until when; nothing of the opening.
    with DataSafeClient(server.url, world.citizen.key) as me:
        (mine,) = me.get_all("/v1/sealed")
        assert mine["seal_id"] == seal_id and mine["unseal_at"] == unseal_at
        with RpcClient(world.rpc_url) as rpc:
            sl.check_listing(rpc, world.ledger_address, world.citizen.address, [mine])
        # Early reveal by anyone but the department: refused, nothing changes.
        early = {
            "raw_transaction": companion_tx(
                world, world.citizen, sl.encode_unseal(seal_id, opening)
            )
        }
        assert_problem(
            me.request("POST", f"/v1/sealed/{seal_id}/unseal", json_body=early),
            409,
            "seal_too_early",
        )

    with DataSafeClient(server.url, world.regulator.key) as reg:
        reason = os.urandom(32)
        later = unseal_at + 30 * DAY
        body = {
            "raw_transaction": companion_tx(
                world, world.regulator, sl.encode_extend(seal_id, later, reason)
            )
        }
        extended = reg.post(f"/v1/sealed/{seal_id}/extend", body)
        assert extended["unseal_at"] == later and extended["extensions"] == 1
        assert reg.get_all("/v1/sealed/overdue") == []
        world.advance(61 * DAY)
        (late,) = reg.get_all("/v1/sealed/overdue")
        assert late["seal_id"] == seal_id and late["overdue"] is True

    # After the date: a forged opening is refused; the real one opens it.
    forged = sl.Opening(
        world.bank2.address, asset, opening.fields_mask, opening.legal_basis_ref, opening.salt
    )
    with DataSafeClient(server.url, world.issuer.key) as dept:
        bad = {
            "raw_transaction": companion_tx(world, world.issuer, sl.encode_unseal(seal_id, forged))
        }
        assert_problem(
            dept.request("POST", f"/v1/sealed/{seal_id}/unseal", json_body=bad),
            422,
            "seal_opening_mismatch",
        )
        good = {
            "raw_transaction": companion_tx(world, world.issuer, sl.encode_unseal(seal_id, opening))
        }
        opened = dept.post(f"/v1/sealed/{seal_id}/unseal", good)
    assert opened["status"] == "unsealed" and opened["opening"] == opening.to_json()
    with DataSafeClient(server.url, world.citizen.key) as me, RpcClient(world.rpc_url) as rpc:
        items = me.get_all("/v1/sealed")
        (record,) = sl.check_listing(rpc, world.ledger_address, world.citizen.address, items)
        assert record.status == sl.SealStatus.UNSEALED
    with DataSafeClient(server.url, world.regulator.key) as reg:
        assert reg.get_all("/v1/sealed/overdue") == []


def test_sealed_refusals_change_nothing(server: LiveServer, world: World) -> None:
    asset = anchored_asset(world, world.citizen)
    opening = _opening(world, asset)
    at = world.now() + 10 * DAY
    companion = sl.sealed_address(world.ledger_address)
    before = world.w3.eth.call(
        {"to": companion, "data": "0x" + sl.sealed_abi().fn("sealCount").selector.hex()}
    )
    with DataSafeClient(server.url, world.issuer2.key) as other:
        # A department that did not issue the data cannot seal an access to it.
        assert_problem(
            other.request(
                "POST", "/v1/sealed", json_body=seal_body(world, opening, at, world.issuer2)
            ),
            403,
            "not_issuer",
        )
    with DataSafeClient(server.url, world.issuer.key) as dept:
        # Beyond the longest seal, and a transaction to the ledger instead of the companion.
        far = world.now() + sl.MAX_SEAL_PERIOD + 10 * DAY
        assert_problem(
            dept.request("POST", "/v1/sealed", json_body=seal_body(world, opening, far)),
            422,
            "seal_invalid",
        )
        wrong = {
            "raw_transaction": companion_tx(
                world,
                world.issuer,
                sl.encode_seal(asset, opening.commitment(), at),
                to=world.ledger_address,
            )
        }
        assert_problem(dept.request("POST", "/v1/sealed", json_body=wrong), 422, "invalid_request")
        made = dept.post("/v1/sealed", seal_body(world, opening, at))
        seal_id = int(made["seal_id"])
        # The department is not the second authority: the route wants a regulator.
        ext = {
            "raw_transaction": companion_tx(
                world, world.issuer, sl.encode_extend(seal_id, at + DAY, b"r" * 32)
            )
        }
        assert_problem(
            dept.request("POST", f"/v1/sealed/{seal_id}/extend", json_body=ext),
            403,
            "role_required",
        )
    with DataSafeClient(server.url, world.regulator.key) as reg:
        no_reason = {
            "raw_transaction": companion_tx(
                world, world.regulator, sl.encode_extend(seal_id, at + DAY, b"\0" * 32)
            )
        }
        assert_problem(
            reg.request("POST", f"/v1/sealed/{seal_id}/extend", json_body=no_reason),
            409,
            "seal_extension_refused",
        )
        other_id = {
            "raw_transaction": companion_tx(
                world, world.regulator, sl.encode_extend(seal_id + 1, at + DAY, b"r" * 32)
            )
        }
        assert_problem(
            reg.request("POST", f"/v1/sealed/{seal_id}/extend", json_body=other_id),
            422,
            "invalid_request",
        )
        assert_problem(reg.request("GET", "/v1/sealed/999"), 404, "seal_not_found")
    with DataSafeClient(server.url, world.citizen2.key) as stranger:
        assert stranger.get_all("/v1/sealed") == []
        assert_problem(stranger.request("GET", f"/v1/sealed/{seal_id}"), 404, "seal_not_found")
        assert_problem(
            stranger.request("GET", "/v1/sealed", params={"subject": world.citizen.address}),
            403,
            "role_required",
        )
        assert_problem(stranger.request("GET", "/v1/sealed/overdue"), 403, "role_required")
    with DataSafeClient(server.url, world.bank.key) as bank:
        assert_problem(bank.request("GET", "/v1/sealed"), 403, "role_required")
    after = world.w3.eth.call(
        {"to": companion, "data": "0x" + sl.sealed_abi().fn("sealCount").selector.hex()}
    )
    assert int.from_bytes(after, "big") == int.from_bytes(before, "big") + 1


def test_sealed_listing_pages(server: LiveServer, world: World) -> None:
    asset = anchored_asset(world, world.citizen)
    with DataSafeClient(server.url, world.issuer.key) as dept:
        ids = [
            int(
                dept.post(
                    "/v1/sealed", seal_body(world, _opening(world, asset), world.now() + DAY)
                )["seal_id"]
            )
            for _ in range(3)
        ]
    with DataSafeClient(server.url, world.citizen.key) as me:
        first = me.request("GET", "/v1/sealed", params={"limit": 2})
        assert [i["seal_id"] for i in first.json()] == ids[:2]
        cursor = first.headers[NEXT_CURSOR_HEADER]
        rest = me.request("GET", "/v1/sealed", params={"limit": 2, "cursor": cursor})
        assert [i["seal_id"] for i in rest.json()] == ids[
            2:
        ] and NEXT_CURSOR_HEADER not in rest.headers
        assert_problem(
            me.request("GET", "/v1/sealed", params={"cursor": "bm9wZQ"}), 422, "invalid_cursor"
        )
        assert_problem(
            me.request("GET", "/v1/sealed", params={"limit": 201}), 422, "invalid_request"
        )
    world.advance(2 * DAY)
    with DataSafeClient(server.url, world.regulator.key) as reg:
        page = reg.request("GET", "/v1/sealed/overdue", params={"limit": 2})
        assert [i["seal_id"] for i in page.json()] == ids[:2]
        assert [i["seal_id"] for i in reg.get_all("/v1/sealed/overdue", page_size=1)] == ids


@pytest.mark.parametrize("lie", ["hide", "alter", "invent"])
def test_check_listing_notices_a_lying_list(server: LiveServer, world: World, lie: str) -> None:
    asset = anchored_asset(world, world.citizen)
    with DataSafeClient(server.url, world.issuer.key) as dept:
        for _ in range(2):
            dept.post("/v1/sealed", seal_body(world, _opening(world, asset), world.now() + DAY))
    with DataSafeClient(server.url, world.citizen.key) as me:
        items = me.get_all("/v1/sealed")
    with RpcClient(world.rpc_url) as rpc:
        sl.check_listing(rpc, world.ledger_address, world.citizen.address, items)
        if lie == "hide":
            items = items[1:]
        elif lie == "alter":
            items[0]["unseal_at"] += DAY
        else:
            items.append(items[0] | {"seal_id": 999})
        with pytest.raises(ServiceContradictedError):
            sl.check_listing(rpc, world.ledger_address, world.citizen.address, items)


def test_indexer_learns_sealed_events(world: World, db_url: str, tmp_path: Path) -> None:
    """The service's indexer reads the companion's logs into ``sealed_events``, one row per
    log, and keeps indexing the ledger's events after them."""
    settings = world_settings(
        world, db_url, tmp_path, run_indexer=True, indexer_interval_seconds=0.2
    )
    asset = anchored_asset(world, world.citizen)
    opening = _opening(world, asset)
    with live_server(settings) as srv, DataSafeClient(srv.url, world.issuer.key) as dept:
        seal_id = int(
            dept.post("/v1/sealed", seal_body(world, opening, world.now() + DAY))["seal_id"]
        )
        raw = companion_tx(world, world.issuer, sl.encode_unseal(seal_id, opening))
        dept.post(f"/v1/sealed/{seal_id}/unseal", {"raw_transaction": raw})
        world.transact(world.issuer, "retireAsset", asset, b"r" * 32)
        engine = db.make_engine(db_url)
        deadline = time.monotonic() + 30
        rows: list[Any] = []
        retired = None
        while True:
            # The indexer thread migrates its tables as it starts, maybe after the requests above.
            with engine.connect() as conn:
                if sa.inspect(conn).has_table(db.sealed_events.name):
                    rows = list(
                        conn.execute(
                            sa.select(db.sealed_events).where(db.sealed_events.c.seal_id == seal_id)
                        )
                        .mappings()
                        .all()
                    )
                    retired = conn.execute(
                        sa.select(db.assets.c.status).where(
                            db.assets.c.asset_id == "0x" + asset.hex()
                        )
                    ).scalar()
            if len(rows) == 2 and retired == "retired":
                break
            assert time.monotonic() < deadline, f"not indexed: {rows} {retired}"
            time.sleep(0.3)
        # audit: the index re-derived from the companion's logs; then a tampered and a lost row
        last = world.w3.eth.block_number
        with RpcClient(world.rpc_url) as rpc:
            report = verify_sealed_index(rpc, world.ledger_address, engine, 0, last)
            assert report.ok and report.chain_rows == report.index_rows >= 2, report.to_json()
            t = db.sealed_events
            with engine.begin() as conn:
                conn.execute(
                    sa.update(t)
                    .where(t.c.id == rows[0]["id"])
                    .values(actor=world.bank.address.lower())
                )
                conn.execute(sa.delete(t).where(t.c.id == rows[1]["id"]))
            report = verify_sealed_index(rpc, world.ledger_address, engine, 0, last)
        first_key = (rows[0]["block_number"], rows[0]["log_index"])
        assert report.altered == {first_key: ["actor"]}
        assert report.missing == [(rows[1]["block_number"], rows[1]["log_index"])]
        # the regulator's audit route reports the same drift
        with DataSafeClient(srv.url, world.regulator.key) as reg:
            out = reg.get("/v1/audit/verify", params={"from_block": 0, "to_block": last})
        assert out["ok"] is False and out["sealed"]["altered"][0]["fields"] == ["actor"]
        assert out["sealed"]["missing"] == [list(report.missing[0])]
        engine.dispose()
    sealed_row, unsealed_row = sorted(rows, key=lambda r: (r["block_number"], r["log_index"]))
    assert (
        sealed_row["event"] == "AccessSealed"
        and sealed_row["actor"] == world.issuer.address.lower()
    )
    assert sealed_row["subject"] == world.citizen.address.lower()
    assert sealed_row["args"]["commitment"] == "0x" + opening.commitment().hex()
    assert (
        unsealed_row["event"] == "AccessUnsealed"
        and unsealed_row["args"]["salt"] == "0x" + opening.salt.hex()
    )
