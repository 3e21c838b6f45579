"""A citizen opens her data, grants a bank two fields, the bank verifies and pulls with every
field verified against the chain, the citizen sees the access, the regulator traces it, the
citizen revokes and the bank is refused — every step through the CLI against the real stack.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from _stack import FIELDS, VALUES, Stack


@pytest.fixture(scope="module")
def stack(any_db_stack: Stack) -> Stack:
    return any_db_stack


def test_data_list_and_open(stack: Stack, tmp_path: Path) -> None:
    aid = stack.issue("open")
    rows = stack.citizen.json("data", "list")
    mine = [r for r in rows if r["asset_id"] == aid]
    assert len(mine) == 1
    assert mine[0]["type"] == "income statement" and mine[0]["status"] == "active"
    assert mine[0]["chain"]["source"] == "chain"
    opened = stack.citizen.json("data", "open", aid, "--out", str(tmp_path / "mine.json"))
    assert opened["fields"] == dict(zip(FIELDS, VALUES, strict=True))
    assert opened["verified_against"] == "chain"
    assert opened["issuer"] == stack.world.issuer.address
    assert opened["anchored_at"] > 0
    human = stack.citizen.ok("data", "open", aid).stdout
    assert "Li Wei" in human and "taxbureau" in human and "the chain" in human
    # without --rpc the wallet says it only checked the service's anchor
    no_rpc = stack.citizen.json("--no-chain", "data", "open", aid)
    assert no_rpc["verified_against"] == "service"
    # the bank cannot open the citizen's data
    line = stack.bank.fails(3, "data", "open", aid)
    assert "forbidden" in line or "not_owner" in line


def test_grant_verify_pull_history_trace_revoke(stack: Stack, tmp_path: Path) -> None:
    aid = stack.issue("grant")
    receipt = stack.citizen.json(
        "grant",
        "create",
        "--asset",
        aid,
        "--to",
        "citybank",
        "--fields",
        "name,income",
        "--purpose",
        "loan",
        "--days",
        "30",
        "--max-uses",
        "3",
        "--yes",
    )
    gid = receipt["grant_id"]
    assert receipt["fields"] == ["name", "income"]
    assert Path(receipt["saved_to"]).exists()
    assert "name, income" in receipt["terms_text"]
    listed = {g["grant_id"]: g for g in stack.citizen.json("grant", "list")}
    assert listed[gid]["status"] == "active" and listed[gid]["uses"] == 0

    verdict = stack.bank.json("verify", gid)
    assert verdict["allowed"] is True and verdict["checked_on_chain"] is True
    assert stack.bank.json("verify", gid, "--fields", "income")["allowed"] is True
    assert "does not cover 'address'" in stack.bank.fails(2, "verify", gid, "--fields", "address")

    line = stack.bank.fails(2, "pull", gid, "--fields", "income", "--out", str(tmp_path / "x"))
    assert "releases every granted field together" in line and not (tmp_path / "x").exists()
    pulled = stack.bank.json("pull", gid, "--out", str(tmp_path / "loan"))
    assert pulled["fields"] == {"name": "Li Wei", "income": "182000"}
    assert pulled["use"] == 1 and len(pulled["checks"]) == 5
    saved = json.loads(Path(pulled["saved_to"]).read_text())
    assert saved["fields"] == pulled["fields"] and "id_number" not in saved["fields"]

    history = stack.citizen.json("history", "list")
    assert history["source"] == "chain"
    mine = [r for r in history["accesses"] if r["grant_id"] == gid]
    assert [(r["event"], r["use"], r["tx_hash"]) for r in mine] == [
        ("accessed", 1, pulled["access_tx"])
    ]
    assert mine[0]["institution"] == stack.world.bank.address and mine[0]["purpose"] == 1
    human = stack.citizen.ok("history", "list").stdout
    assert "citybank" in human and "name, income" in human and pulled["access_tx"] in human

    trace = json.loads(
        stack.regulator.ok("audit", "trace", "--grant", gid, "--format", "json").stdout
    )
    assert [r["event"] for r in trace] == ["granted", "accessed"]
    assert trace[1]["tx_hash"] == pulled["access_tx"]
    out = stack.regulator.ok(
        "audit",
        "trace",
        "--institution",
        stack.world.bank.address,
        "--purpose",
        "1",
        "--format",
        "csv",
    ).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["grant_id"] for r in rows} >= {gid}
    assert all(r["institution"] == stack.world.bank.address for r in rows)

    stack.citizen.ok("grant", "revoke", gid, "--yes")
    assert {g["grant_id"]: g for g in stack.citizen.json("grant", "list")}[gid]["status"] == (
        "revoked"
    )
    assert "grant_revoked" in stack.bank.fails(3, "verify", gid)
    before = list((tmp_path / "loan").iterdir())
    assert "grant_revoked" in stack.bank.fails(3, "pull", gid, "--out", str(tmp_path / "loan"))
    assert list((tmp_path / "loan").iterdir()) == before
    events = [
        r["event"]
        for r in json.loads(
            stack.regulator.ok("audit", "trace", "--grant", gid, "--format", "json").stdout
        )
    ]
    assert events == ["granted", "accessed", "revoked"]


def test_directory_contacts_and_audit_verify(stack: Stack) -> None:
    directory = {m["address"]: m for m in stack.citizen.json("contacts", "directory")}
    bank = directory[stack.world.bank.address]
    assert bank["kind"] == "bank" and "consumer" in bank["roles"] and bank["encryption_key"]
    assert "citybank" in stack.citizen.ok("contacts", "directory").stdout
    stack.citizen.ok("contacts", "add", "spare", stack.world.bank2.address)
    assert {"name": "spare", "address": stack.world.bank2.address} in stack.citizen.json(
        "contacts", "list"
    )
    stack.citizen.ok("contacts", "remove", "spare")
    assert "no contact named" in stack.citizen.fails(2, "contacts", "remove", "spare")
    assert "cannot itself be an address" in stack.citizen.fails(
        2, "contacts", "add", stack.world.bank.address, stack.world.bank.address
    )

    # the regulator re-derives the service's grant list from chain events: no drift
    report = stack.regulator.json("audit", "verify")
    assert report["drift"] == [] and report["grants_served"] == report["grants_on_chain"] >= 1
    # the companions too; this service runs no indexer, so it lists no claims: said, not drift
    assert report["sealed"] == {"records": 0, "drift": []}
    assert report["claims"]["drift"] == [] and "not_ready" in report["claims"]["not_checked"]
    # and traces straight from the chain with only a manifest (no service at all)
    manifest = str(stack.server.settings.manifest_path)
    rows = json.loads(
        stack.regulator.ok(
            "--manifest", manifest, "audit", "trace", "--format", "json", DATASAFE_API=""
        ).stdout
    )
    assert {r["event"] for r in rows} >= {"granted", "accessed", "revoked"}
    table = stack.regulator.ok("--manifest", manifest, "audit", "trace", DATASAFE_API="").stdout
    assert "Trace (" in table and "from chain" in table
    assert "--format must be" in stack.regulator.fails(2, "audit", "trace", "--format", "xml")
