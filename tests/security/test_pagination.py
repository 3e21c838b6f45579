"""Every list route pages with a keyset cursor and a bounded limit; the SDK follows it.

Real rows: assets anchored on chain, grants relayed by the service, members of the chain
with published keys; the access index rows are written as the indexer writes them.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from _api_seed import key_package, seed_asset
from _api_world import Actor, World
from _edge import ApiProcess, api_for

from api import _store
from api._paging import PAGE_MAX, encode_cursor
from api.client import DataSafeClient
from api.db import make_engine, migrate
from ledger.db import accesses, create_tables

N_ASSETS = 5
N_GRANTS = 3
N_ACCESSES = 7


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, edge_world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiProcess, list[Any]]]:
    tmp = tmp_path_factory.mktemp("pages")
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp / 'datasafe.db'}"
    else:
        db_url = request.getfixturevalue("pg_databases").create()
    world = edge_world
    snap = world.snapshot()
    assets = [seed_asset(world, db_url, tag=secrets.token_bytes(8)) for _ in range(N_ASSETS)]
    engine = make_engine(db_url)
    migrate(engine)
    create_tables(engine)
    members: list[Actor] = [world.citizen, world.citizen2, world.bank, world.bank2, world.regulator]
    for m in members:
        _store.put_member_key(
            engine,
            {
                "address": m.address.lower(),
                "key_version": 0,
                "public_key": "unused",
                "key_hash": "0x" + "00" * 32,
                "updated_block": 0,
            },
        )
    with engine.begin() as conn:
        for i in range(N_ACCESSES):
            conn.execute(
                sa.insert(accesses),
                {
                    "block_number": 10 + i // 3,
                    "block_hash": "0x" + "11" * 32,
                    "block_timestamp": 1_700_000_000 + i,
                    "tx_hash": "0x" + f"{i:064x}",
                    "log_index": i % 3,
                    "grant_id": "0x" + "22" * 32,
                    "grantee": world.bank.address.lower(),
                    "custodian": world.custodian.address.lower(),  # type: ignore[attr-defined]
                    "owner": world.citizen.address.lower(),
                    "asset_id": assets[0].hex,
                    "fields_mask": 1,
                    "purpose": 1,
                    "use": i + 1,
                    "nonce": str(i),
                },
            )
    engine.dispose()
    for api in api_for(world, db_url, tmp):
        with DataSafeClient(api.url, world.citizen.key) as c:
            for asset in assets[:N_GRANTS]:
                signed = world.sign_grant(
                    world.citizen,
                    asset_id=asset.asset_id,
                    grantee=world.bank.address,
                    fields_mask=0b11,
                )
                gid = signed.pop("grant_id")
                package = key_package(world, asset, gid, 0b11).to_bytes()
                c.post("/v1/grants", signed | {"key_package": base64.b64encode(package).decode()})
        yield api, assets
    world.revert(snap)


def walk(c: DataSafeClient, path: str, limit: int) -> tuple[list[Any], int]:
    """Follow the cursor by hand: (rows, pages)."""
    rows: list[Any] = []
    params: dict[str, Any] = {"limit": limit}
    for pages in range(1, 100):
        resp = c.request("GET", path, params=params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page) <= limit
        rows += page
        cursor = resp.headers.get("x-next-cursor")
        if cursor is None:
            assert "link" not in resp.headers
            return rows, pages
        assert resp.headers["link"].endswith('rel="next"') and cursor in resp.headers["link"]
        params["cursor"] = cursor
    raise AssertionError("no last page")


CASES = [
    ("/v1/assets", "citizen", "asset_id", N_ASSETS),
    ("/v1/grants", "citizen", "grant_id", N_GRANTS),
    ("/v1/members", "citizen", "address", 5),
    ("/v1/access", "regulator", "use", N_ACCESSES),
    ("/v1/schemas", "citizen", "schema_id", N_ASSETS),  # seed_asset registers one each
]


@pytest.mark.parametrize(("path", "who", "key", "total"), CASES, ids=[c[0] for c in CASES])
def test_pages_cover_every_row_once_in_order(
    seeded: tuple[ApiProcess, list[Any]],
    edge_world: World,
    path: str,
    who: str,
    key: str,
    total: int,
) -> None:
    api, _ = seeded
    actor: Actor = getattr(edge_world, who)
    with DataSafeClient(api.url, actor.key) as c:
        everything = c.get(path, params={"limit": PAGE_MAX})
        assert len(everything) == total
        paged, pages = walk(c, path, 2)
        assert [r[key] for r in paged] == [r[key] for r in everything]
        assert len({str(r[key]) for r in paged}) == total
        assert pages == (total + 1) // 2
        assert c.get_all(path, page_size=2) == everything  # the SDK follows the cursor


@pytest.mark.parametrize("path", [c[0] for c in CASES])
def test_limits_are_bounded(
    seeded: tuple[ApiProcess, list[Any]], edge_world: World, path: str
) -> None:
    api, _ = seeded
    with DataSafeClient(api.url, edge_world.regulator.key) as c:
        for limit in (0, PAGE_MAX + 1):
            resp = c.request("GET", path, params={"limit": limit})
            assert resp.status_code == 422, resp.text
            assert resp.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"[1,2").decode(),
        encode_cursor("assets", (1, "0x00")),  # a cursor of another listing
        encode_cursor("members", (1,)),  # right listing, wrong key type
    ],
)
def test_foreign_or_forged_cursors_are_refused(
    seeded: tuple[ApiProcess, list[Any]], edge_world: World, cursor: str
) -> None:
    api, _ = seeded
    with DataSafeClient(api.url, edge_world.citizen.key) as c:
        resp = c.request("GET", "/v1/members", params={"cursor": cursor})
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "invalid_cursor"
