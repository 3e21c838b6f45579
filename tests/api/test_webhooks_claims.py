"""Claim webhooks over real HTTP (SQLite and PostgreSQL): the department learns of a claim
filed to it, the subject of its claims fulfilled and refused (kind `claim`), signed and
delivered like every webhook; nobody learns of another's claims; an institution-only kind
is refused to a department or a subject and registers nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _api_server import LiveServer, assert_problem, live_server, world_settings
from _api_world import World
from _claims_helpers import SCHEMA, _answer, _body
from eth_utils import keccak
from test_webhooks import Receiver, _wait

from api.client import DataSafeClient


@pytest.fixture
def claim_hooked(
    world: World, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    monkeypatch.setenv("DATASAFE_WEBHOOK_POLL_INTERVAL", "0.1")
    monkeypatch.setenv("DATASAFE_WEBHOOK_BACKOFF_SECONDS", "0.05")
    monkeypatch.setenv("DATASAFE_WEBHOOK_ALLOW_NETWORKS", '["127.0.0.1/32"]')
    settings = world_settings(
        world, db_url, tmp_path, run_indexer=True, indexer_interval_seconds=0.1
    )
    with live_server(settings) as srv:
        yield srv


def test_claim_webhooks_reach_department_and_subject(
    claim_hooked: LiveServer, world: World
) -> None:
    url = claim_hooked.url
    world.transact(world.issuer, "registerSchema", SCHEMA, 4, keccak(text="fields"))
    with (
        Receiver(fail=1) as dept_rx,
        Receiver(fail=0) as subject_rx,
        Receiver(fail=0) as other_rx,
        DataSafeClient(url, world.issuer.key) as dept,
        DataSafeClient(url, world.citizen.key) as citizen,
        DataSafeClient(url, world.citizen2.key) as other,
    ):
        for client, rx in ((dept, dept_rx), (citizen, subject_rx), (other, other_rx)):
            created = client.post("/v1/webhooks", {"url": rx.url, "kinds": ["claim"]})
            rx.secret = created["secret"]
            assert created["kinds"] == ["claim"]
        # Kinds about grants stay an institution's.
        assert_problem(
            citizen.request("POST", "/v1/webhooks", json_body={"url": subject_rx.url}),
            403,
            "role_required",
        )
        assert len(citizen.get("/v1/webhooks")) == 1
        first = citizen.post("/v1/claims", _body(world, world.citizen, world.issuer))
        second = citizen.post("/v1/claims", _body(world, world.citizen, world.issuer))
        asset = keccak(text="webhook-claim-record")
        world.transact(
            world.issuer,
            "anchorAsset",
            asset,
            world.citizen.address,
            SCHEMA,
            b"\1" * 32,
            b"\2" * 32,
        )
        cid, other_id = first["claim_id"], second["claim_id"]
        dept.post(
            f"/v1/claims/{cid}/fulfil", _answer(world, world.issuer, "fulfilClaim", cid, asset)
        )
        dept.post(
            f"/v1/claims/{other_id}/refuse",
            _answer(world, world.issuer, "refuseClaim", other_id, 1, b"\0" * 32),
        )
        _wait(lambda: len(dept_rx.processed) == 2 and len(subject_rx.processed) == 2)
        # the department's receiver failed once: retried, same key, every signature valid
        assert all(r["valid"] for r in dept_rx.requests + subject_rx.requests)
        assert len(dept_rx.requests) == 3
        assert [p["type"] for p in dept_rx.processed] == ["claim.filed", "claim.filed"]
        # (a retried delivery may arrive after the next one: chain order is in the data)
        filed = sorted(dept_rx.processed, key=lambda p: p["data"]["block_number"])
        assert [p["data"]["claim_id"] for p in filed] == [cid, other_id]
        assert filed[0]["data"]["tx_hash"] == first["tx_hash"].lower()
        answered = sorted(subject_rx.processed, key=lambda p: p["data"]["block_number"])
        assert [p["type"] for p in answered] == ["claim.fulfilled", "claim.refused"]
        fulfilled, refused = (p["data"] for p in answered)
        assert fulfilled["asset_id"] == "0x" + asset.hex() and fulfilled["claim_id"] == cid
        assert refused["reason_code"] == 1 and refused["claim_id"] == other_id
        assert fulfilled["subject"] == world.citizen.address.lower()
        assert other_rx.requests == []  # another subject learns nothing of these claims
        hook = citizen.get("/v1/webhooks")[0]["id"]
        keys = [d["event_key"] for d in citizen.get(f"/v1/webhooks/{hook}/deliveries")]
        assert sorted(keys) == sorted(p["id"] for p in answered)
        assert all(k.startswith("claim:") for k in keys)
