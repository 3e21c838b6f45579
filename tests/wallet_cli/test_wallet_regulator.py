"""History, trace, audit verify and suspension through the CLI against the real service with
its event indexer running (anvil + PostgreSQL + uvicorn): a subject's history and the
regulator's trace come from the index, audit verify re-derives the rows from the chain and
catches a row tampered in the database, and a suspended bank is refused until reinstated.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _stack import Stack

from ledger.client import LedgerClient
from ledger.models import Reason
from ledger.trace import CSV_COLUMNS
from wallet_cli.member import reason_hash

DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def stack(indexed_stack: Stack) -> Stack:
    return indexed_stack


@pytest.fixture(scope="module")
def story(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One grant to the bank (name, income; loan), pulled once, then indexed."""
    tmp = tmp_path_factory.mktemp("regulator-story")
    aid = stack.issue("regulator")
    gid = stack.citizen.json(
        "grant", "create", "--asset", aid, "--to", "citybank", "--fields", "name,income",
        "--purpose", "loan", "--days", "30", "--max-uses", "5", "--yes",
    )["grant_id"]  # fmt: skip
    pulled = stack.bank.json("pull", gid, "--out", str(tmp / "pulled"))
    _until_indexed(stack, pulled["access_tx"])
    return {"asset": aid, "grant": gid, "pull": pulled, "tmp": tmp}


def _until_indexed(stack: Stack, tx_hash: str) -> dict[str, Any]:
    """Poll the citizen's history until the access with this transaction is in the index."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        out = stack.citizen.json("history", "list")
        if out["source"] == "service":
            hits = [r for r in out["accesses"] if r["tx_hash"] == tx_hash]
            if hits:
                return out
        assert time.monotonic() < deadline, f"access {tx_hash} not indexed: {out}"
        time.sleep(0.3)


def test_history_from_the_service_since_and_follow(stack: Stack, story: dict[str, Any]) -> None:
    gid, pulled = story["grant"], story["pull"]
    out = _until_indexed(stack, pulled["access_tx"])
    mine = [r for r in out["accesses"] if r["grant_id"] == gid]
    assert len(mine) == 1
    row = mine[0]
    assert row["event"] == "accessed" and row["use"] == 1
    assert row["fields"] == ["name", "income"] and row["purpose"] == 1
    assert row["institution"].lower() == stack.world.bank.address.lower()
    assert row["tx_hash"] == pulled["access_tx"] and row["block"] > 0
    assert [c["event"] for c in out["changes"] if c["grant_id"] == gid] == ["granted"]
    cursor = out["cursor"]
    assert cursor
    # an institution has no subject history at the service: its own accesses, from the chain
    theirs = stack.bank.json("history", "list")
    assert theirs["source"] == "chain"
    assert pulled["access_tx"] in {r["tx_hash"] for r in theirs["accesses"]}
    human = stack.citizen.ok("history", "list").stdout
    assert "from the service" in human and "citybank" in human and pulled["access_tx"] in human

    # nothing new since the cursor; a malformed cursor is one clear line, exit 2
    again = stack.citizen.json("history", "list", "--since", cursor)
    assert again["accesses"] == [] and again["changes"] == [] and again["cursor"] == cursor
    line = stack.citizen.fails(2, "history", "list", "--since", "not-a-cursor")
    assert "invalid_cursor" in line

    # --follow in a real process: once it has printed the page, a second pull arrives
    # through the event stream (SSE from the cursor) and it stops after --follow-for
    proc = subprocess.Popen(
        [sys.executable, "-m", "wallet_cli", "--json", "history", "list", "--since", cursor,
         "--follow", "--follow-for", "12"],
        env={**os.environ, **stack.citizen.env}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first_page = []
        for line in proc.stdout:
            first_page.append(line)
            if line.rstrip("\n") == "}":
                break
        assert json.loads("".join(first_page))["accesses"] == []
        second = stack.bank.json("pull", gid, "--out", str(story["tmp"] / "second"))
        deadline = time.monotonic() + DEADLINE_S
        streamed: list[dict[str, Any]] = []
        for line in proc.stdout:
            streamed.append(json.loads(line))
            if streamed[-1]["tx_hash"] == second["access_tx"] or time.monotonic() > deadline:
                break
    finally:
        proc.kill()
        proc.wait()
    got = [d for d in streamed if d["tx_hash"] == second["access_tx"]]
    assert len(got) == 1, streamed
    assert got[0]["event"] == "accessed" and got[0]["use"] == 2
    assert got[0]["fields"] == ["name", "income"]


def test_trace_from_the_service(stack: Stack, story: dict[str, Any]) -> None:
    gid, pulled = story["grant"], story["pull"]
    reg = stack.regulator
    rows = json.loads(reg.ok("audit", "trace", "--grant", gid, "--format", "json").stdout)
    assert [r["kind"] for r in rows][:2] == ["granted", "access"]
    assert rows[1]["tx_hash"] == pulled["access_tx"] and rows[1]["fields"] == ["name", "income"]
    assert all(r["block_number"] > 0 and r["tx_hash"].startswith("0x") for r in rows)

    # paging by cursor (one row per page) gives the same rows as one big page
    table_small = reg.ok("audit", "trace", "--grant", gid, "--page-size", "1").stdout
    table_big = reg.ok("audit", "trace", "--grant", gid).stdout
    assert table_small == table_big and "from the service's index" in table_big
    assert pulled["access_tx"] in table_big

    # filters: institution + purpose + subject + asset + issuer + time range
    today = time.strftime("%Y-%m-%d", time.gmtime(stack.world.now()))
    csv_out = reg.ok(
        "audit", "trace", "--kind", "accesses", "--institution", stack.world.bank.address,
        "--subject", stack.world.citizen.address, "--asset", story["asset"],
        "--issuer", stack.world.issuer.address, "--purpose", "loan",
        "--since", today, "--until", today, "--format", "csv",
    ).stdout  # fmt: skip
    parsed = list(csv.DictReader(io.StringIO(csv_out)))
    assert list(parsed[0].keys()) == [*CSV_COLUMNS, "fields"]
    assert {r["kind"] for r in parsed} == {"access"}
    assert pulled["access_tx"] in {r["tx_hash"] for r in parsed}
    assert {r["fields"] for r in parsed} == {"name;income"}
    other_purpose = json.loads(
        reg.ok("audit", "trace", "--grant", gid, "--purpose", "7", "--format", "json").stdout
    )
    assert other_purpose == []
    yesterday = json.loads(
        reg.ok("audit", "trace", "--grant", gid, "--until", "2020-01-01", "--format", "json").stdout
    )
    assert yesterday == []
    # a citizen is not a regulator: one line, refused, exit 3
    assert "role_required" in stack.citizen.fails(3, "audit", "trace")
    assert "not a date" in reg.fails(2, "audit", "trace", "--since", "yesterday")
    assert "--kind must be" in reg.fails(2, "audit", "trace", "--kind", "both")


def test_audit_verify_clean_then_tampered(stack: Stack, story: dict[str, Any]) -> None:
    reg = stack.regulator
    manifest = str(stack.server.settings.manifest_path)
    first = str(stack.world.deploy_block)
    report = reg.json("--manifest", manifest, "audit", "verify", "--from-block", first)
    assert report["ok"] is True and report["chain_rows"] == report["claimed_rows"] >= 2
    assert report["missing"] == report["extra"] == report["altered"] == []
    human = reg.ok("--manifest", manifest, "audit", "verify", "--from-block", first).stdout
    assert "everything matches" in human

    # with only an RPC URL and the manifest: check an exported file (no service at all)
    export = story["tmp"] / "export.json"
    export.write_text(reg.ok("audit", "trace", "--format", "json").stdout)
    offline = reg.json(
        "--manifest", manifest, "audit", "verify", "--from-block", first,
        "--to-block", str(report["to_block"]), "--rows", str(export), DATASAFE_API="",
    )  # fmt: skip
    assert offline["ok"] is True and offline["claimed_rows"] == report["claimed_rows"]

    engine = sa.create_engine(stack.server.settings.database_url)
    try:
        with engine.begin() as conn:
            row_id, purpose = conn.execute(
                sa.text("SELECT id, purpose FROM accesses WHERE tx_hash = :tx"),
                {"tx": story["pull"]["access_tx"]},
            ).one()
            conn.execute(sa.text("UPDATE accesses SET purpose = 99 WHERE id = :id"), {"id": row_id})
        r = reg.run("--json", "--manifest", manifest, "audit", "verify", "--from-block", first)
        assert r.exit_code == 3, r.stdout + r.stderr
        bad = json.loads(r.stdout)
        assert bad["ok"] is False and bad["missing"] == [] and bad["extra"] == []
        assert len(bad["altered"]) == 1
        assert bad["altered"][0]["fields"]["purpose"] == {"chain": 1, "claimed": 99}
        assert bad["altered"][0]["chain"]["tx_hash"] == story["pull"]["access_tx"]
        human = reg.run("--manifest", manifest, "audit", "verify", "--from-block", first)
        assert human.exit_code == 3 and "1 difference(s)" in human.stdout
        assert "purpose: chain 1 vs claimed 99" in human.stdout
    finally:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE accesses SET purpose = :p WHERE id = :id"),
                {"p": purpose, "id": row_id},
            )
        engine.dispose()
    assert reg.json("--manifest", manifest, "audit", "verify", "--from-block", first)["ok"]

    # bad input: one line, exit 2, nothing checked
    # the profile's pinned deployment stands in for --manifest
    assert reg.json("audit", "verify", "--from-block", first)["ok"]
    assert "not a JSON trace export" in reg.fails(
        2, "--manifest", manifest, "audit", "verify", "--rows", str(story["tmp"] / "nope.json")
    )
    assert "is after" in reg.fails(
        2, "--manifest", manifest, "audit", "verify", "--from-block", "50", "--to-block", "10"
    )


def test_suspend_blocks_verify_and_pull_until_reinstated(
    stack: Stack, story: dict[str, Any], tmp_path: Path
) -> None:
    gid = story["grant"]
    bank = stack.world.bank.address
    reason = "case 2026-17: unauthorised resale"
    # a bank or a citizen cannot suspend anyone: one line, refused, nothing changed
    head = stack.world.w3.eth.block_number
    for who in (stack.bank, stack.citizen):
        line = who.fails(3, "member", "suspend", bank, "--reason", "x")
        assert "refused by the ledger: MembershipUnauthorized" in line
    assert stack.world.w3.eth.block_number == head
    assert stack.bank.json("verify", gid)["allowed"] is True
    assert "--reason must not be empty" in stack.regulator.fails(
        2, "member", "suspend", bank, "--reason", " "
    )

    out = stack.regulator.json("member", "suspend", bank, "--reason", reason)
    assert out["reason_hash"] == "0x" + reason_hash(reason).hex()
    assert out["member"] == bank and out["block"] > head
    try:
        line = stack.bank.fails(3, "verify", gid)
        assert "member_suspended" in line and "is suspended" in line
        # the chain's own answer for the grant, from the next block on
        lc = LedgerClient(stack.rpc, stack.world.ledger_address)
        try:
            verdict = lc.check(bytes.fromhex(gid[2:]), bank, 0b01001)
        finally:
            lc.close()
        assert verdict.allowed is False and verdict.reason == Reason.GRANTEE_SUSPENDED
        before = set(tmp_path.iterdir())
        line = stack.bank.fails(3, "pull", gid, "--out", str(tmp_path / "s"))
        assert "member_suspended" in line
        assert set(tmp_path.iterdir()) == before
    finally:
        back = stack.regulator.json("member", "reinstate", bank, "--reason", "case closed")
    assert back["reason_hash"] == "0x" + reason_hash("case closed").hex()
    assert stack.bank.json("verify", gid)["allowed"] is True
    pulled = stack.bank.json("pull", gid, "--out", str(tmp_path / "after"))
    assert pulled["fields"] == {"name": "Li Wei", "income": "182000"}
